"""Read and validate one DICOM object: the one place that turns bad bytes into a typed error.

Accepted input (PS3.10 §7): a Part 10 file (128-byte preamble, ``DICM``, File Meta
Information, data set) or a bare data set with no preamble and no meta, as older
modalities and some archives write them; for the latter the transfer syntax is whatever
pydicom's reader detected (implicit or explicit VR little endian), recorded as if it had
been in the meta.

What makes an object storable (each failure raises :class:`~viewer.errors.InvalidDicom`
or :class:`~viewer.errors.TooLarge` with a message naming the problem):

* it parses completely, nested sequences included, and no element declares more bytes
  than the file holds (pydicom silently shortens such values);
* (0008,0016) SOP Class UID, (0008,0018) SOP Instance UID, (0020,000D) Study Instance UID
  and (0020,000E) Series Instance UID are present and valid per PS3.5 §9.1;
* it is not a DICOMDIR (a directory of files, not an instance: import the set instead);
* where it has (7FE0,0010) Pixel Data, the Image Pixel module (PS3.3 C.7.6.3) is
  consistent: Rows, Columns, Samples per Pixel, Bits Allocated and Number of Frames are
  valid integers, native pixel data holds at least Rows × Columns × Samples × Frames ×
  Bits Allocated / 8 bytes, and encapsulated pixel data (PS3.5 §A.4) has at least one
  fragment per frame; one decoded frame must also fit the frame cap.

A Deflated Explicit VR Little Endian object (PS3.5 §A.5) is inflated here, counting and
discarding, before pydicom inflates it whole: one that inflates to more than the object
limit (a deflate bomb) is refused with TooLarge ``inflated_too_large``
(:func:`check_inflated_size`).

Decoding the compressed pixel data is not done here: ingest checks it next, through the
decoder boundary (``viewer.services.decoding.check_before_storing``, which runs the
untrusted native decoders in worker processes).
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO

import pydicom
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import parse_basic_offsets, parse_fragments
from pydicom.filereader import _read_file_meta_info, read_preamble
from pydicom.tag import BaseTag
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MediaStorageDirectoryStorage,
)

from viewer.dicom.uids import uid_problem
from viewer.dicom.values import value
from viewer.errors import InvalidDicom, TooLarge, ViewerError

UNDEFINED_LENGTH = 0xFFFFFFFF
MAX_SEQUENCE_DEPTH = 64
_INFLATE_CHUNK = 1024 * 1024
META_SCAN_BYTES = 64 * 1024
# Values longer than this are read from the bytes only when used: native Pixel Data is
# validated by its length alone, so ingest never copies it out of the received bytes.
DEFER_BYTES = 64 * 1024
PIXEL_DATA = 0x7FE00010

IDENTIFYING_UIDS = (
    ("SOPClassUID", "(0008,0016) SOP Class UID"),
    ("SOPInstanceUID", "(0008,0018) SOP Instance UID"),
    ("StudyInstanceUID", "(0020,000D) Study Instance UID"),
    ("SeriesInstanceUID", "(0020,000E) Series Instance UID"),
)


@dataclass(frozen=True)
class ParsedObject:
    """A dataset that passed validation, with what was learnt about its encoding."""

    dataset: Dataset
    transfer_syntax_uid: str
    has_preamble: bool
    number_of_frames: int


def read_object(data: bytes, *, max_bytes: int, max_frame_bytes: int) -> ParsedObject:
    """Parse and validate ``data``; raise a ViewerError naming the first problem found."""
    if len(data) == 0:
        raise InvalidDicom("the file is empty", code="empty_file")
    if len(data) > max_bytes:
        raise TooLarge(
            f"the object is {len(data)} bytes; the limit is {max_bytes} bytes",
            code="object_too_large",
        )
    has_preamble = len(data) >= 132 and data[128:132] == b"DICM"
    if not has_preamble and not _looks_like_bare_dataset(data):
        raise InvalidDicom(
            "not a DICOM file: no 'DICM' prefix after a 128-byte preamble (PS3.10 §7.1) "
            "and no data set at byte 0",
            code="not_dicom",
        )
    dataset = _parse(data, max_inflated_bytes=max_bytes, defer_size=DEFER_BYTES)
    _check_declared_lengths(dataset, len(data))
    _convert_all(dataset)
    transfer_syntax = _transfer_syntax(dataset, has_preamble)
    if is_dicomdir(dataset):
        raise InvalidDicom(
            "this is a DICOMDIR (Media Storage Directory), not an instance: "
            "import the folder or the DICOMDIR path to load the files it lists",
            code="dicomdir",
        )
    if len(dataset) == 0:
        raise InvalidDicom(
            "the file has File Meta Information but no data set after it (cut short?)",
            code="truncated",
        )
    _check_identifying_uids(dataset)
    frames = _check_pixel_data(dataset, transfer_syntax, max_frame_bytes)
    return ParsedObject(
        dataset=dataset,
        transfer_syntax_uid=str(transfer_syntax),
        has_preamble=has_preamble,
        number_of_frames=frames,
    )


def is_dicomdir(dataset: Dataset) -> bool:
    """True for a PS3.10 Media Storage Directory (DICOMDIR) rather than an instance."""
    meta = getattr(dataset, "file_meta", None)
    media_class = value(meta, "MediaStorageSOPClassUID") if meta is not None else None
    return (
        media_class == MediaStorageDirectoryStorage
        or value(dataset, "SOPClassUID") == MediaStorageDirectoryStorage
        or "DirectoryRecordSequence" in dataset
    )


def _looks_like_bare_dataset(data: bytes) -> bool:
    """A data set without preamble starts with a tag of group 0x0002..0x0008 (either endian)."""
    if len(data) < 8:
        return False
    group_le = int.from_bytes(data[0:2], "little")
    group_be = int.from_bytes(data[0:2], "big")
    return 0x0002 <= group_le <= 0x0008 or 0x0002 <= group_be <= 0x0008


def check_inflated_size(stream: BinaryIO, max_bytes: int) -> None:
    """Where the File Meta Information of the object in ``stream`` (read from its start)
    names Deflated Explicit VR Little Endian (PS3.5 §A.5), inflate the rest in pieces,
    keeping none of it, and refuse it once it passes ``max_bytes``: pydicom inflates a
    deflated data set whole, in memory, as it reads it. Bytes that do not start with a
    File Meta Information are left for the parser to judge."""
    read_preamble(stream, True)
    # pydicom's own reader of the meta, as dcmread calls it (no public one takes a stream).
    meta = _read_file_meta_info(stream)
    if meta.get("TransferSyntaxUID") != DeflatedExplicitVRLittleEndian:
        return
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    try:
        while not inflater.eof:
            pending = inflater.unconsumed_tail or stream.read(_INFLATE_CHUNK)
            inflated = inflater.decompress(pending, _INFLATE_CHUNK)
            total += len(inflated)
            if total > max_bytes:
                raise TooLarge(
                    f"the deflated data set inflates to more than {max_bytes} bytes, the "
                    "object limit (a deflate bomb?)",
                    code="inflated_too_large",
                )
            if not pending and not inflated:
                break  # the stream ended before the deflate end: the parser reports it
    except zlib.error as exc:
        raise InvalidDicom(
            f"the deflated data set (PS3.5 §A.5) cannot be inflated: {exc}", code="unparseable"
        ) from None


def _parse(
    data: bytes, *, max_inflated_bytes: int | None = None, defer_size: int | None = None
) -> Dataset:
    """``defer_size``: values longer than this are read only when used (pydicom's
    deferred read, from ``data`` held by the data set): ingest leaves native Pixel Data
    unread, its length being checked from its header (``_check_declared_lengths``)."""
    try:
        if _may_be_deflated(data):
            # Offsets in an inflated stream are not offsets in ``data``: nothing deferred.
            defer_size = None
            if max_inflated_bytes is not None:
                check_inflated_size(io.BytesIO(data), max_inflated_bytes)
        return pydicom.dcmread(io.BytesIO(data), force=True, defer_size=defer_size)
    except ViewerError:
        raise
    except RecursionError:
        raise InvalidDicom(
            "the data set nests sequences too deeply to be read", code="nesting_too_deep"
        ) from None
    except Exception as exc:  # pydicom raises many types for bad bytes; this is the boundary.
        raise InvalidDicom(
            f"the data set cannot be parsed: {type(exc).__name__}: {_short(exc)}",
            code="unparseable",
        ) from None


def _convert_all(dataset: Dataset) -> None:
    """Read every sequence now, to a bounded depth, so that a recursion bomb or a broken
    item surfaces at ingest rather than in a later request. Other values stay raw until
    used (converting all of them costs more than the rest of ingest together)."""
    try:
        _convert_sequences(dataset, depth=1)
    except RecursionError:
        raise InvalidDicom(
            "the data set nests sequences too deeply to be read", code="nesting_too_deep"
        ) from None
    except ViewerError:
        raise
    except Exception as exc:
        raise InvalidDicom(
            f"a sequence in the data set cannot be parsed: {type(exc).__name__}: {_short(exc)}",
            code="unparseable",
        ) from None


def _convert_sequences(dataset: Dataset, depth: int) -> None:
    if depth > MAX_SEQUENCE_DEPTH:
        raise InvalidDicom(
            f"the data set nests sequences more than {MAX_SEQUENCE_DEPTH} levels deep",
            code="nesting_too_deep",
        )
    # Dataset.values() gives the elements as stored, raw or converted, without the
    # per-element lookup of get_item(); only sequences (and UN, which may be one) are
    # converted, through dataset[tag].
    for raw in list(dataset.values()):
        if isinstance(raw, RawDataElement):
            vr = raw.VR or dictionary_VR_or_none(raw.tag)
            if vr not in ("SQ", "UN"):
                continue
        element = dataset[raw.tag]
        if element.VR == "SQ":
            for item in element.value:
                _convert_sequences(item, depth + 1)


def dictionary_VR_or_none(tag: int) -> str | None:
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return None


def _check_declared_lengths(dataset: Dataset, size: int) -> None:
    """Refuse an element whose declared length runs past the end of the file.

    pydicom reads what is there and keeps a shortened value, so a 2 GB declared length
    or a file cut in the middle of Pixel Data would otherwise pass as a smaller value.
    """
    for raw in dataset.values():
        if not isinstance(raw, RawDataElement):
            continue
        length = raw.length
        if length == UNDEFINED_LENGTH:
            continue
        if raw.value is None:  # deferred (or empty): its bytes must lie inside the file
            present = max(0, min(length, size - raw.value_tell)) if length else 0
        else:
            present = len(raw.value)
        if present < length:
            raise InvalidDicom(
                f"element {_tag(raw.tag)} declares {length} bytes but the file ends after "
                f"{present} of them (truncated or corrupt; file is {size} bytes)",
                code="truncated",
            )


def _transfer_syntax(dataset: Dataset, has_preamble: bool) -> UID:
    meta = getattr(dataset, "file_meta", None)
    declared = value(meta, "TransferSyntaxUID") if meta is not None else None
    if declared:
        problem = uid_problem(declared)
        if problem:
            raise InvalidDicom(f"(0002,0010) Transfer Syntax UID {problem}", code="invalid_uid")
        return UID(str(declared))
    if has_preamble or (meta is not None and len(meta) > 0):
        raise InvalidDicom(
            "the File Meta Information has no (0002,0010) Transfer Syntax UID (PS3.10 §7.1), "
            "so the pixel data cannot be interpreted",
            code="missing_transfer_syntax",
        )
    implicit, little = dataset.original_encoding
    if little is False:
        syntax = ExplicitVRBigEndian
    elif implicit is False:
        syntax = ExplicitVRLittleEndian
    else:
        syntax = ImplicitVRLittleEndian
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = syntax
    return syntax


def _check_identifying_uids(dataset: Dataset) -> None:
    for keyword, label in IDENTIFYING_UIDS:
        problem = uid_problem(value(dataset, keyword))
        if problem:
            code = "missing_uid" if problem == "is missing" else "invalid_uid"
            raise InvalidDicom(f"{label} {problem}", code=code)


def _int_attribute(dataset: Dataset, keyword: str, label: str, default: int | None) -> int:
    found: Any = value(dataset, keyword, default)
    if found is None or found == "":
        if default is None:
            raise InvalidDicom(
                f"{label} is missing but Pixel Data is present", code="bad_pixel_module"
            )
        return default
    try:
        number = int(found)
    except (TypeError, ValueError):
        raise InvalidDicom(
            f"{label} '{_short(found)}' is not an integer", code="bad_pixel_module"
        ) from None
    if number < 1:
        raise InvalidDicom(f"{label} is {number}; it must be at least 1", code="bad_pixel_module")
    return number


def _check_pixel_data(dataset: Dataset, syntax: UID, max_frame_bytes: int) -> int:
    """Validate the Image Pixel module against the pixel data; return the frame count."""
    frames_value = value(dataset, "NumberOfFrames")
    if "PixelData" not in dataset:
        if frames_value not in (None, ""):
            return _int_attribute(dataset, "NumberOfFrames", "(0028,0008) Number of Frames", 1)
        return 0
    rows = _int_attribute(dataset, "Rows", "(0028,0010) Rows", None)
    columns = _int_attribute(dataset, "Columns", "(0028,0011) Columns", None)
    samples = _int_attribute(dataset, "SamplesPerPixel", "(0028,0002) Samples per Pixel", 1)
    bits = _int_attribute(dataset, "BitsAllocated", "(0028,0100) Bits Allocated", None)
    frames = _int_attribute(dataset, "NumberOfFrames", "(0028,0008) Number of Frames", 1)
    if bits not in (1, 8, 16, 32, 64):
        raise InvalidDicom(
            f"(0028,0100) Bits Allocated is {bits}; PS3.5 §8.1.1 allows 1 or a multiple of 8 "
            "up to 64",
            code="bad_pixel_module",
        )
    if samples not in (1, 3, 4):
        raise InvalidDicom(
            f"(0028,0002) Samples per Pixel is {samples}; expected 1 or 3", code="bad_pixel_module"
        )
    frame_bits = rows * columns * samples * bits
    frame_bytes = (frame_bits + 7) // 8
    if frame_bytes > max_frame_bytes:
        raise TooLarge(
            f"one frame of {rows} × {columns} × {samples} samples at {bits} bits needs "
            f"{frame_bytes} bytes; the limit is {max_frame_bytes}",
            code="frame_too_large",
        )
    if syntax.is_encapsulated:
        pixel_data = dataset.PixelData or b""  # an empty element reads as None
        fragments = _count_fragments(pixel_data) if pixel_data else 0
        if fragments < frames:
            raise InvalidDicom(
                f"encapsulated Pixel Data has {fragments} fragment(s) for {frames} frame(s) "
                "(PS3.5 §A.4 needs at least one per frame)",
                code="pixel_data_mismatch",
            )
        return frames
    expected = (frame_bits * frames + 7) // 8
    actual = _value_length(dataset, PIXEL_DATA)
    if actual < expected:
        raise InvalidDicom(
            f"Pixel Data holds {actual} bytes but {rows} rows × {columns} columns × "
            f"{samples} samples × {frames} frame(s) × {bits} bits need {expected}",
            code="pixel_data_mismatch",
        )
    return frames


def _value_length(dataset: Dataset, tag: int) -> int:
    """The length of an element's value, from its header when it is still raw (a
    deferred value is not read for this; its presence in the file was checked)."""
    raw = dataset._dict.get(BaseTag(tag))
    if isinstance(raw, RawDataElement) and raw.length != UNDEFINED_LENGTH:
        return int(raw.length) if raw.value is None else len(raw.value)
    found = dataset[tag].value
    return len(found) if found else 0


def _may_be_deflated(data: bytes) -> bool:
    """False only when the File Meta Information (PS3.10 §7.1) is known to end within
    the first META_SCAN_BYTES, by its (0002,0000) group length right after ``DICM``,
    and the Deflated Explicit VR Little Endian UID is not among those bytes: the full
    check of ``check_inflated_size`` is then skipped."""
    if data[128:132] != b"DICM" or data[132:138] != b"\x02\x00\x00\x00UL":
        return True
    meta_end = 144 + int.from_bytes(data[140:144], "little")
    if meta_end > META_SCAN_BYTES:
        return True
    return DeflatedExplicitVRLittleEndian.encode() in data[:meta_end]


def _count_fragments(pixel_data: bytes) -> int:
    try:
        buffer = io.BytesIO(pixel_data)
        parse_basic_offsets(buffer)  # moves past the Basic Offset Table item
        count, _ = parse_fragments(buffer)
        return count
    except Exception as exc:  # malformed item tags: pydicom raises ValueError and friends.
        raise InvalidDicom(
            f"encapsulated Pixel Data is malformed: {_short(exc)}", code="pixel_data_mismatch"
        ) from None


def _tag(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _short(value: object, limit: int = 160) -> str:
    text = str(value).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def open_stored(data: bytes) -> Dataset:
    """Open an object that ingest accepted (so it parses), with its transfer syntax set.

    Bare data sets (no meta) get the transfer syntax pydicom detected, exactly as at
    ingest, so that the pixel decoders know how to read them.
    """
    dataset = _parse(data)
    _transfer_syntax(dataset, len(data) >= 132 and data[128:132] == b"DICM")
    return dataset
