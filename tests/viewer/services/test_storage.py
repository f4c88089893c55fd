"""viewer.services.storage: objects appear under their key whole, once, and durably."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from viewer.services import storage


def finish(data: bytes) -> storage.Stored:
    """What ingest does: write the temp file, then put it under the key of its hash."""
    return storage.begin_write(data).finish(hashlib.sha256(data).hexdigest())


def test_finish_puts_the_bytes_under_their_key_and_says_it_created_them(
    isolated_storage: Path,
) -> None:
    data = b"DICM object bytes" * 100
    pending = storage.begin_write(data)
    assert pending.temp_path.read_bytes() == data
    stored = pending.finish(hashlib.sha256(data).hexdigest())
    assert stored.created is True and stored.size == len(data)
    key = storage.key_for(stored.sha256)
    assert storage.read(key) == data
    assert not pending.temp_path.exists()
    assert storage.all_keys() == [key]


def test_a_discarded_write_leaves_nothing(isolated_storage: Path, settings: Any) -> None:
    pending = storage.begin_write(b"an object refused by validation")
    pending.discard()
    assert list(Path(settings.LOUPE_TEMP_DIR).iterdir()) == []
    assert storage.all_keys() == []


def test_a_second_write_of_the_same_bytes_keeps_the_file_and_reports_no_creation(
    isolated_storage: Path, settings: Any
) -> None:
    data = b"same bytes twice" * 100
    assert finish(data).created is True
    again = storage.begin_write(data)
    assert again.finish(hashlib.sha256(data).hexdigest()).created is False
    assert not again.temp_path.exists()
    assert list(Path(settings.LOUPE_TEMP_DIR).iterdir()) == []
    assert len(storage.all_keys()) == 1


def test_a_damaged_file_of_the_wrong_size_is_replaced_by_the_staged_bytes(
    isolated_storage: Path,
) -> None:
    data = b"the whole object" * 100
    key = storage.write(data)
    storage.path_for(key).write_bytes(data[:10])  # cut short on disk
    assert finish(data).created is False  # it was there, now it is whole
    assert storage.read(key) == data


def test_folders_are_made_on_first_use(isolated_storage: Path, settings: Any) -> None:
    root = Path(settings.LOUPE_STORAGE_DIR)
    assert list(root.iterdir()) == []
    key = storage.write(b"first object")
    assert storage.path_for(key).parent.parent == root
    folders = {p.name for p in root.iterdir() if p.is_dir()}
    assert folders == {f"{n:02x}" for n in range(256)}  # every folder at once
    second = storage.write(b"second object")
    assert {key, second} == set(storage.all_keys())


def test_a_missing_folder_is_made_again(isolated_storage: Path, settings: Any) -> None:
    data = b"an object whose folder was removed" * 10
    key = storage.write(data)
    storage.delete(key)
    storage.path_for(key).parent.rmdir()
    assert storage.write(data) == key
    assert storage.read(key) == data


def test_keys_of_the_earlier_two_level_layout_are_still_read(
    isolated_storage: Path, settings: Any
) -> None:
    data = b"stored before the layout changed" * 10
    sha = hashlib.sha256(data).hexdigest()
    old_key = f"{sha[0:2]}/{sha[2:4]}/{sha}.dcm"
    path = Path(settings.LOUPE_STORAGE_DIR) / old_key
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    assert storage.read(old_key) == data
    assert storage.all_keys() == [old_key]
    for bad in (
        f"{sha[:2]}/../{sha}.dcm",
        f"{sha[:3]}/{sha}.dcm",
        f"{sha[:2]}/{sha[2:5]}/{sha}.dcm",
    ):
        with pytest.raises(ValueError, match="not a storage key"):
            storage.path_for(bad)
