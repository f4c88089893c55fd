"""manage.py verify_storage flags a flipped byte, a lost file and an orphan."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from pydicom.data import get_testdata_file

from viewer.models import Instance
from viewer.services import ingest, storage, verification

pytestmark = pytest.mark.django_db


def verify(*args: str) -> str:
    out = io.StringIO()
    call_command("verify_storage", "--grace-seconds", "0", *args, stdout=out)
    return out.getvalue()


def stored(name: str) -> Instance:
    path = get_testdata_file(name)
    assert path is not None
    assert ingest.ingest_file(Path(str(path))).status == "stored"
    return Instance.objects.get(sha256=storage.sha256_hex(Path(str(path)).read_bytes()))


def test_healthy_archive_passes() -> None:
    stored("CT_small.dcm")
    report = verification.verify(grace_seconds=0)
    assert (report.checked, report.missing, report.corrupt, report.orphans) == (1, [], [], [])
    assert report.healthy
    verify()  # and the command exits 0


def test_one_flipped_byte_is_flagged() -> None:
    instance = stored("CT_small.dcm")
    path = storage.path_for(instance.storage_key)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    report = verification.verify(grace_seconds=0)
    assert report.corrupt == [instance.sop_instance_uid] and report.missing == []
    assert not report.healthy
    with pytest.raises(CommandError) as caught:
        verify()
    assert caught.value.returncode == 1


def test_missing_file_is_flagged_and_an_identical_resend_repairs_it() -> None:
    instance = stored("MR_small.dcm")
    storage.delete(instance.storage_key)
    with pytest.raises(CommandError):
        verify()
    path = get_testdata_file("MR_small.dcm")
    assert ingest.ingest_file(Path(str(path))).status == "duplicate"
    assert "0 missing, 0 corrupt" in verify()


def test_orphans_are_listed_and_swept_without_touching_rows() -> None:
    instance = stored("CT_small.dcm")
    orphan = storage.write(b"left behind by a crash")
    output = verify("--sweep")
    assert f"orphan file (no row): {orphan}" in output and "swept 1 file(s)" in output
    assert storage.all_keys() == [instance.storage_key]
