"""The content-addressed object store under ``settings.LOUPE_STORAGE_DIR``.

An object's key is derived from the SHA-256 of its bytes only (``ab/ab….dcm``: the
first two hex digits name one of 256 folders); no path is ever built from a tag value,
a file name or anything else a client sends. Keys of the two-level layout
(``ab/cd/abcd….dcm``) are read as well, a compatibility rule for stores written in it:
each row keeps the key its file was stored under.

Writes go to a temp file in the same file system, are fsync'ed, linked into place
(atomic on POSIX) and the folder is fsync'ed, so a crash leaves either the whole file or
nothing under its final name, and a file that ingest reported stored is still there
after a crash (temp files are swept by ``verify_storage``).

The 256 folders are made all at once, and made durable with one fsync of the store's
root, the first time an object finds its folder missing. Making them one by one as
objects arrive, as a lazily built tree does, costs every early object a ``mkdir`` and a
second directory fsync (the new folder's entry in its parent) on its way to the disk.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

# 256 folders: 400,000 objects each at 100 million, which ext4's hashed directories
# (and XFS's B-trees) look up and insert into in a few block reads.
FOLDER_DIGITS = 2
_KEY_RE = re.compile(r"^[0-9a-f]{2}/(?:[0-9a-f]{2}/)?[0-9a-f]{64}\.dcm$")
_KEY_GLOBS = ("??/*.dcm", "??/??/*.dcm")  # one-level keys, and the two-level ones still read


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def key_for(sha256: str) -> str:
    return f"{sha256[:FOLDER_DIGITS]}/{sha256}.dcm"


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


_tree_lock = threading.Lock()


def make_folders() -> None:
    """Make every folder of the layout that is missing, then fsync the store's root once
    (a new folder is durable once its entry in its parent is). Idempotent; run when an
    object finds its folder missing (the first object of a new store, or a folder
    someone removed)."""
    root = Path(settings.LOUPE_STORAGE_DIR)
    with _tree_lock:
        root.mkdir(parents=True, exist_ok=True)
        made = False
        for number in range(16**FOLDER_DIGITS):
            try:
                (root / f"{number:0{FOLDER_DIGITS}x}").mkdir()
                made = True
            except FileExistsError:
                pass
        if made:
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


class Pending:
    """An object being written: its bytes are in a temp file and a worker thread is
    fsync'ing it (:func:`begin_write`). ``finish`` puts it under its key durably;
    ``discard`` removes it. One of the two must be called."""

    def __init__(self, data: bytes) -> None:
        self.size = len(data)
        fd, name = tempfile.mkstemp(prefix="ingest-", suffix=".part", dir=settings.LOUPE_TEMP_DIR)
        self.temp_path = Path(name)
        self._fd: int | None = fd
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except BaseException:
            self._close()
            self.temp_path.unlink(missing_ok=True)
            raise
        self._synced = _syncers.submit(os.fsync, fd)

    def _wait_synced(self) -> None:
        try:
            self._synced.result()
        finally:
            self._close()

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def finish(self, sha256: str) -> Stored:
        """Once the fsync is done, link the file under the key of ``sha256`` (which
        must be the hash of the bytes) and fsync the folder, as :func:`commit` does."""
        try:
            self._wait_synced()
            created = commit(Staged(sha256, self.temp_path, self.size))
        except BaseException:
            self.temp_path.unlink(missing_ok=True)
            raise
        return Stored(sha256, self.size, created)

    def discard(self) -> None:
        try:
            self._wait_synced()
        except OSError:
            pass  # the bytes are not kept: a failed fsync does not matter any more
        finally:
            self.temp_path.unlink(missing_ok=True)


# fsync holds no lock Python needs: a worker thread waits for the disk while the request
# thread hashes and parses. Eight, as requests run on up to that many threads.
_syncers = ThreadPoolExecutor(max_workers=8, thread_name_prefix="loupe-fsync")


def begin_write(data: bytes) -> Pending:
    """Write ``data`` to a temp file in the store's file system and start its fsync on a
    worker thread; the caller hashes and validates meanwhile, then calls ``finish`` or
    ``discard`` (an OSError here or there: the disk refused, nothing is kept)."""
    return Pending(data)


def commit(staged: Staged) -> bool:
    """Put a staged file under its key, durably (the directory entry is fsync'ed).

    Returns True when this call created the file, False when it was there already (the
    same bytes stored before, or by a concurrent ingest). The file appears under its
    name atomically: it is hard-linked there, which fails if the name exists, so of two
    ingests of the same bytes exactly one reports that it created the file. A file of
    the wrong size under the name (a damaged store) is replaced by the staged one.
    """
    final = path_for(key_for(staged.sha256))
    created = True
    try:
        try:
            _link(staged.temp_path, final)
        except FileNotFoundError:
            if not staged.temp_path.exists():
                raise
            make_folders()
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
    return key_for(begin_write(data).finish(sha256_hex(data)).sha256)


def read(key: str) -> bytes:
    return path_for(key).read_bytes()


def delete(key: str) -> None:
    path_for(key).unlink(missing_ok=True)


def exists(key: str) -> bool:
    return path_for(key).exists()


def all_keys() -> list[str]:
    return keys_in(Path(settings.LOUPE_STORAGE_DIR))


def keys_in(root: Path) -> list[str]:
    """The keys of the objects stored under ``root`` (a store's folder), sorted."""
    return sorted(str(p.relative_to(root)) for pattern in _KEY_GLOBS for p in root.glob(pattern))
