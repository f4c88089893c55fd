"""Where objects come from: files, folders, zip archives and DICOMDIRs.

Each source yields :class:`Item` values: a display name and either the object's bytes
or the error that stopped it. Nothing here writes to disk, and no name from an archive
or a directory record is used to open anything outside the place it belongs to:

* zip members are read into memory, never extracted; a member whose name is absolute,
  holds ``..`` or a backslash is refused, as is one whose compression ratio or size
  passes the caps (zip bombs), checked on the declared sizes and again while reading;
* a DICOMDIR's (0004,1500) *Referenced File ID* components (PS3.10 §8.2, PS3.3 F.3.2.2)
  must be plain names; the resolved path must stay inside the DICOMDIR's folder.

Corrupt input ends as an item's error, never as an exception: an encrypted member, a
member whose header or compressed stream is broken, a record whose Referenced File ID
cannot be read. A deflated DICOMDIR (PS3.5 §A.5) is inflated under the object limit
before pydicom reads it (``viewer.dicom.io.check_inflated_size``).
"""

from __future__ import annotations

import lzma
import os
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pydicom
from pydicom.errors import BytesLengthException
from pydicom.multival import MultiValue

from viewer.dicom.io import check_inflated_size, is_dicomdir
from viewer.errors import InvalidArchive, TooLarge, ViewerError

_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    max_object_bytes: int
    zip_max_ratio: int
    zip_max_total_bytes: int


@dataclass(frozen=True)
class Item:
    """One object to ingest: its bytes, or why it could not be read (``error``)."""

    name: str
    data: bytes | None = None
    error: ViewerError | None = None
    path: Path | None = None  # set for a plain file: read lazily by the caller


def iter_paths(paths: list[Path], limits: Limits) -> Iterator[Item]:
    """Yield every object under ``paths``: files, folders (recursively), zips, DICOMDIRs."""
    for path in paths:
        if path.is_dir():
            for root, dirs, files in os.walk(path, followlinks=False):
                dirs.sort()
                for name in sorted(files):
                    yield from _iter_file(Path(root) / name, limits, in_folder=True)
        elif path.is_file():
            yield from _iter_file(path, limits, in_folder=False)
        else:
            yield Item(str(path), error=ViewerError("no such file or folder", code="not_found"))


def _iter_file(path: Path, limits: Limits, *, in_folder: bool) -> Iterator[Item]:
    if path.is_symlink():
        yield Item(str(path), error=ViewerError("symbolic links are not followed", code="symlink"))
        return
    if path.suffix.lower() == ".zip" or (not in_folder and zipfile.is_zipfile(path)):
        with open(path, "rb") as handle:
            yield from iter_zip(handle, str(path), limits)
        return
    if not in_folder and _is_dicomdir_file(path, limits):
        yield from iter_dicomdir(path, limits)
        return
    yield Item(str(path), path=path)


def _is_dicomdir_file(path: Path, limits: Limits) -> bool:
    if path.name.upper() != "DICOMDIR" and path.stat().st_size > 64 * 1024 * 1024:
        return False
    try:
        with open(path, "rb") as handle:
            check_inflated_size(handle, limits.max_object_bytes)
        dataset = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
    except Exception:  # not readable as DICOM (or a deflate bomb): the ingest will say why
        return False
    try:
        return is_dicomdir(dataset)
    except (ViewerError, *UNREADABLE_VALUE):  # a SOP Class UID that cannot be read: not one
        return False


def iter_zip(handle: IO[bytes], name: str, limits: Limits) -> Iterator[Item]:
    """Yield the members of a zip archive (read into memory, capped)."""
    try:
        archive = zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        yield Item(name, error=InvalidArchive(f"not a readable zip archive: {exc}", code="bad_zip"))
        return
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        declared_total = sum(m.file_size for m in members)
        if declared_total > limits.zip_max_total_bytes:
            yield Item(
                name,
                error=TooLarge(
                    f"the archive expands to {declared_total} bytes; the limit is "
                    f"{limits.zip_max_total_bytes}",
                    code="zip_too_large",
                ),
            )
            return
        for member in members:
            label = f"{name}!{member.filename}"
            problem = _unsafe_member_name(member.filename)
            if problem:
                yield Item(label, error=InvalidArchive(problem, code="unsafe_zip_entry"))
                continue
            try:
                yield Item(label, data=_read_member(archive, member, limits))
            except ViewerError as error:
                yield Item(label, error=error)
            except UNREADABLE_MEMBER as exc:
                yield Item(
                    label,
                    error=InvalidArchive(
                        f"cannot read this zip entry: {type(exc).__name__}: {str(exc)[:200]}",
                        code="bad_zip",
                    ),
                )


# What zipfile raises for a member whose bytes are corrupt: a bad local header or its
# offset (BadZipFile, ValueError for a negative seek, UnicodeDecodeError for a name that
# is not UTF-8 though flagged so), an unknown method (NotImplementedError), a corrupt
# deflate, bzip2 or LZMA stream (zlib.error, OSError, lzma.LZMAError), a cut (EOFError).
UNREADABLE_MEMBER = (
    zipfile.BadZipFile,
    OSError,
    EOFError,
    NotImplementedError,
    ValueError,
    zlib.error,
    lzma.LZMAError,
)


# What pydicom raises for a record's value it cannot convert: an unknown VR (a corrupt
# explicit VR), a value whose length does not fit its VR, a number that is not one.
UNREADABLE_VALUE = (ValueError, NotImplementedError, OverflowError, BytesLengthException)


def _unsafe_member_name(filename: str) -> str | None:
    parts = filename.replace("\\", "/").split("/")
    if "\\" in filename or filename.startswith("/") or ".." in parts or "\x00" in filename:
        return (
            "zip entry name is absolute or climbs out of the archive ('..', '/', '\\'); "
            "refused (zip slip)"
        )
    if len(parts[0]) == 2 and parts[0][1] == ":":
        return "zip entry name carries a drive letter; refused (zip slip)"
    return None


def _read_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, limits: Limits) -> bytes:
    if member.flag_bits & 0x1:  # APPNOTE 4.4.4 bit 0: encrypted; zipfile would ask for a password
        raise InvalidArchive(
            "zip entry is encrypted; Loupe imports unencrypted archives only",
            code="encrypted_zip_entry",
        )
    cap = min(limits.max_object_bytes, member.file_size)
    if member.file_size > limits.max_object_bytes:
        raise TooLarge(
            f"zip entry expands to {member.file_size} bytes; the object limit is "
            f"{limits.max_object_bytes}",
            code="object_too_large",
        )
    if member.compress_size and member.file_size / member.compress_size > limits.zip_max_ratio:
        raise TooLarge(
            f"zip entry is compressed {member.file_size // max(member.compress_size, 1)}:1; "
            f"the limit is {limits.zip_max_ratio}:1 (zip bomb?)",
            code="zip_ratio",
        )
    chunks: list[bytes] = []
    total = 0
    with archive.open(member) as stream:
        while True:
            chunk = stream.read(_CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > cap or (
                member.compress_size and total / member.compress_size > limits.zip_max_ratio
            ):
                raise TooLarge(
                    "zip entry expands beyond its declared size or the ratio cap (zip bomb?)",
                    code="zip_ratio",
                )
            chunks.append(chunk)
    return b"".join(chunks)


_SAFE_COMPONENT: Callable[[str], bool] = lambda part: (  # noqa: E731
    bool(part) and part not in (".", "..") and all(c.isalnum() or c in "_-." for c in part)
)


def iter_dicomdir(path: Path, limits: Limits) -> Iterator[Item]:
    """Yield the files a DICOMDIR references, each confined to the DICOMDIR's folder."""
    root = path.parent.resolve()
    try:
        with open(path, "rb") as handle:
            check_inflated_size(handle, limits.max_object_bytes)
        dicomdir = pydicom.dcmread(path, force=True)
        records = list(dicomdir.get("DirectoryRecordSequence") or [])
    except ViewerError as error:
        yield Item(str(path), error=error)
        return
    except Exception as exc:
        yield Item(
            str(path), error=InvalidArchive(f"cannot read the DICOMDIR: {exc}", code="bad_dicomdir")
        )
        return
    seen: set[Path] = set()
    for number, record in enumerate(records, start=1):
        try:
            file_id = record.get("ReferencedFileID")
        except UNREADABLE_VALUE as exc:
            yield Item(
                f"{path}:record {number}",
                error=InvalidArchive(
                    f"directory record {number}'s (0004,1500) Referenced File ID cannot be "
                    f"read: {type(exc).__name__}: {str(exc)[:160]}",
                    code="bad_dicomdir",
                ),
            )
            continue
        if not file_id:
            continue
        if isinstance(file_id, str):
            parts = [file_id]
        elif isinstance(file_id, (list, MultiValue)) and all(isinstance(p, str) for p in file_id):
            parts = [str(p) for p in file_id]
        else:
            parts = []  # bytes or numbers (a corrupt VR): no file name
        label = f"{path}:{'/'.join(parts) or f'record {number}'}"
        if not parts or not all(_SAFE_COMPONENT(p) for p in parts):
            yield Item(
                label,
                error=InvalidArchive(
                    "Referenced File ID has a component that is not a plain file name "
                    "(PS3.10 §8.2); refused",
                    code="unsafe_file_id",
                ),
            )
            continue
        target = root.joinpath(*parts)
        resolved = target.resolve()
        if not resolved.is_relative_to(root):
            yield Item(
                label,
                error=InvalidArchive(
                    "Referenced File ID points outside the DICOMDIR's folder", code="unsafe_file_id"
                ),
            )
            continue
        if resolved in seen:
            continue
        seen.add(resolved)
        if not resolved.is_file():
            yield Item(
                label,
                error=ViewerError("the DICOMDIR lists a file that is not there", code="not_found"),
            )
            continue
        yield Item(label, path=resolved)
