"""The content-addressed object store under ``settings.LOUPE_STORAGE_DIR``.

An object's key is derived from the SHA-256 of its bytes only (``ab/cd/abcd….dcm``); no
path is ever built from a tag value, a file name or anything else a client sends.
Writes go to a temp file in the same file system, are fsync'ed, renamed into place
(atomic on POSIX) and the directory is fsync'ed, so a crash leaves either the whole file
or nothing under its final name (temp files are swept by ``verify_storage``).
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class Staged:
    """Bytes written durably to a temp file, with their hash, not yet under their key."""

    sha256: str
    temp_path: Path
    size: int


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


def commit(staged: Staged) -> str:
    """Move a staged file under its key (atomic rename, directory fsync'ed); return the key."""
    key = key_for(staged.sha256)
    final = path_for(key)
    if final.exists() and final.stat().st_size == staged.size:
        staged.temp_path.unlink(missing_ok=True)
        return key
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged.temp_path, final)
    _fsync_dir(final.parent)
    return key


def discard(staged: Staged) -> None:
    staged.temp_path.unlink(missing_ok=True)


def write(data: bytes) -> str:
    """Store ``data`` durably under its key and return the key."""
    return commit(stage(data))


def read(key: str) -> bytes:
    return path_for(key).read_bytes()


def delete(key: str) -> None:
    path_for(key).unlink(missing_ok=True)


def exists(key: str) -> bool:
    return path_for(key).exists()


def all_keys() -> list[str]:
    root = Path(settings.LOUPE_STORAGE_DIR)
    return sorted(str(p.relative_to(root)) for p in root.glob("??/??/*.dcm"))
