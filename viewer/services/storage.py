"""The content-addressed object store under ``settings.LOUPE_STORAGE_DIR``.

An object's key is derived from the SHA-256 of its bytes only (``ab/cd/abcd….dcm``); no
path is ever built from a tag value, a file name or anything else a client sends.
Writes go to a temp file in the same file system, are fsync'ed, linked into place
(atomic on POSIX) and the directory is fsync'ed (and so is the parent of a folder made
for it), so a crash leaves either the whole file or nothing under its final name, and a
file that ingest reported stored is still there after a crash (temp files are swept by
``verify_storage``).
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

_KEY_RE = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}\.dcm$")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def key_for(sha256: str) -> str:
    return f"{sha256[0:2]}/{sha256[2:4]}/{sha256}.dcm"


def path_for(key: str) -> Path:
    """The file of ``key``; refuses anything that is not a key this module made."""
    if not _KEY_RE.match(key):
        raise ValueError(f"not a storage key: {key!r}")
    return Path(settings.LOUPE_STORAGE_DIR) / key


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def prepare_folder(sha256: str) -> None:
    """Make the folder of the key of ``sha256`` exist durably before the object is linked
    there: if it is new, its entry in its parent is fsync'ed (ingest does this beside the
    temp file's fsync, so the two waits overlap)."""
    folder = path_for(key_for(sha256)).parent
    if _make_folder(folder):
        _fsync_dir(folder.parent)


def _make_folder(folder: Path) -> bool:
    """Create ``folder`` (``ab/cd`` under the store, ``ab`` included); True if ``cd`` is
    new, in which case the caller fsyncs ``ab``. The 256 ``ab`` folders are made and
    fsync'ed once, not one by one as objects arrive."""
    try:
        folder.mkdir()
    except FileExistsError:
        return False
    except FileNotFoundError:
        _make_top_folders(folder.parent.parent)
        try:
            folder.mkdir()
        except FileExistsError:
            return False
    return True


def _make_top_folders(root: Path) -> None:
    for first in range(256):
        (root / f"{first:02x}").mkdir(exist_ok=True)
    _fsync_dir(root)


@dataclass(frozen=True)
class Staged:
    """Bytes written durably to a temp file, with their hash, not yet under their key."""

    sha256: str
    temp_path: Path
    size: int


@dataclass(frozen=True)
class Stored:
    """Bytes durable under their key; ``created`` if this ingest put them there."""

    sha256: str
    size: int
    created: bool


def write_temp(data: bytes) -> Path:
    """Write ``data`` to a temp file in the store's file system and fsync it."""
    fd, temp_name = tempfile.mkstemp(prefix="ingest-", suffix=".part", dir=settings.LOUPE_TEMP_DIR)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return Path(temp_name)


def stage(data: bytes) -> Staged:
    return Staged(sha256_hex(data), write_temp(data), len(data))


def commit(staged: Staged) -> bool:
    """Put a staged file under its key, durably (the directory entry is fsync'ed).

    Returns True when this call created the file, False when it was there already (the
    same bytes stored before, or by a concurrent ingest). The file appears under its
    name atomically: it is hard-linked there, which fails if the name exists, so of two
    ingests of the same bytes exactly one reports that it created the file. A file of
    the wrong size under the name (a damaged store) is replaced by the staged one.
    """
    final = path_for(key_for(staged.sha256))
    created, new_folder = True, False
    try:
        try:
            _link(staged.temp_path, final)
        except FileNotFoundError:
            if not staged.temp_path.exists():
                raise
            new_folder = _make_folder(final.parent)
            _link(staged.temp_path, final)
    except FileExistsError:
        created = False
        if final.stat().st_size == staged.size:
            # Fsync'ed all the same: a concurrent ingest of the same bytes may have linked
            # it without having fsync'ed the folder yet (its data was fsync'ed before).
            staged.temp_path.unlink(missing_ok=True)
            _fsync_dir(final.parent)
            return False
        os.replace(staged.temp_path, final)
    else:
        staged.temp_path.unlink(missing_ok=True)  # gone already after a fallback rename
    _fsync_dir(final.parent)
    if new_folder:
        _fsync_dir(final.parent.parent)
    return created


def _link(source: Path, target: Path) -> None:
    """Hard-link ``source`` as ``target``; FileExistsError if ``target`` exists. On a file
    system without hard links, a rename that refuses an existing ``target`` (not atomic
    against a concurrent writer of the same bytes, which then both report a creation)."""
    try:
        os.link(source, target)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        if target.exists():
            raise FileExistsError(errno.EEXIST, "exists", str(target)) from None
        os.replace(source, target)
        return


def write(data: bytes) -> str:
    """Store ``data`` durably under its key and return the key."""
    staged = stage(data)
    commit(staged)
    return key_for(staged.sha256)


def read(key: str) -> bytes:
    return path_for(key).read_bytes()


def delete(key: str) -> None:
    path_for(key).unlink(missing_ok=True)


def exists(key: str) -> bool:
    return path_for(key).exists()


def all_keys() -> list[str]:
    root = Path(settings.LOUPE_STORAGE_DIR)
    return sorted(str(p.relative_to(root)) for p in root.glob("??/??/*.dcm"))
