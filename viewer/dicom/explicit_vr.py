"""Explicit VR Little Endian Part 10 files, read element by element in one pass.

Nearly every object a modality sends is a Part 10 file (PS3.10 §7.1: preamble, ``DICM``,
File Meta Information) whose data set is Explicit VR Little Endian (PS3.5 §7.1.2, §A.2),
natively or with encapsulated Pixel Data (PS3.5 §A.4). For those, ``read_part10``
walks every element header once, nested sequences and encapsulated fragments included,
and builds the same pydicom data set that ``pydicom.dcmread`` builds (values stay raw
until used), at a fraction of the cost.

It is deliberately strict: it answers None, and the caller reads the file with pydicom
and its full checks instead, for anything it does not recognise as well formed: another
transfer syntax, an unknown or UN VR, a value or item that runs past its container, tags
out of order, an undefined length other than a sequence's or encapsulated Pixel Data's,
sequences nested deeper than ``MAX_DEPTH``, command or directory elements, or bytes left
over. So it never accepts what the full reading would refuse, and where it accepts, the
result is the one the full reading gives (tests/unit/test_explicit_vr.py compares both on
the whole test corpus).
"""

from __future__ import annotations

import io
import struct

from pydicom.charset import convert_encodings
from pydicom.dataelem import (
    DataElement,
    RawDataElement,
    convert_raw_data_element,
    empty_value_for_VR,
)
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.tag import BaseTag
from pydicom.uid import UID, AllTransferSyntaxes, ExplicitVRLittleEndian
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, VR

# Sequences deeper than this are left to the full reading, which refuses them beyond
# viewer.dicom.io.MAX_SEQUENCE_DEPTH (64); the top-level data set is depth 1.
MAX_DEPTH = 48

UNDEFINED = 0xFFFFFFFF
ITEM = 0xFFFEE000
ITEM_DELIMITER = 0xFFFEE00D
SEQUENCE_DELIMITER = 0xFFFEE0DD
PIXEL_DATA = 0x7FE00010
SPECIFIC_CHARACTER_SET = BaseTag(0x00080005)
DIRECTORY_RECORD_SEQUENCE = BaseTag(0x00041220)

_HEADER = struct.Struct("<HH2sH")
_ITEM_HEADER = struct.Struct("<II")  # tag as one little-endian word: (group << 16 | element)
_LONG = struct.Struct("<I")

# Every VR pydicom knows, except UN (its value may be read as another VR or as a
# sequence, which the full reading decides).
_KNOWN_VRS = {vr.value.encode("ascii"): vr.value for vr in VR if vr is not VR.UN}
_LONG_VRS = {vr.encode("ascii") for vr in EXPLICIT_VR_LENGTH_32}
_VR_SQ = b"SQ"

# Transfer syntaxes whose data set is Explicit VR Little Endian, as pydicom reads them:
# the native one and the encapsulated ones (not Deflated, which must be inflated first).
TRANSFER_SYNTAXES = frozenset(
    {str(ExplicitVRLittleEndian)}
    | {
        str(uid)
        for uid in AllTransferSyntaxes
        if UID(uid).is_encapsulated and not UID(uid).is_deflated
    }
)


_Elements = dict[BaseTag, DataElement | RawDataElement]
_TRANSFER_SYNTAX_UID = BaseTag(0x00020010)


class _NotSimple(Exception):
    """The file needs the full reading."""


def read_part10(data: bytes) -> FileDataset | None:
    """The data set of ``data``, with its File Meta Information as ``file_meta``, or
    None when the file is not a well-formed Explicit VR Little Endian Part 10 file."""
    if len(data) < 132 or data[128:132] != b"DICM":
        return None
    try:
        meta, position = _meta(data)
        syntax = meta.get(_TRANSFER_SYNTAX_UID)
        if not isinstance(syntax, RawDataElement) or _text(syntax.value) not in TRANSFER_SYNTAXES:
            return None
        elements: _Elements = {}
        _elements(data, position, len(data), depth=1, collect=elements, top_level=True)
    except (_NotSimple, struct.error):
        return None
    if not elements or DIRECTORY_RECORD_SEQUENCE in elements:
        return None
    file_meta = FileMetaDataset(meta)
    file_meta.set_original_encoding(False, True, "iso8859")
    dataset = Dataset(elements)
    encoding: str | list[str] = "iso8859"
    charset = elements.get(SPECIFIC_CHARACTER_SET)
    if isinstance(charset, RawDataElement):  # as pydicom's read_dataset decodes it
        encoding = convert_encodings(convert_raw_data_element(charset).value)
    dataset.set_original_encoding(False, True, encoding)
    result = FileDataset(io.BytesIO(data), dataset, data[:128], file_meta, False, True)
    result.set_original_encoding(False, True, dataset._character_set)
    return result


def _text(value: bytes | None) -> str:
    return (value or b"").decode("ascii", "replace").rstrip("\x00 ")


def _meta(data: bytes) -> tuple[_Elements, int]:
    """The group 0002 elements after ``DICM`` and the position after them."""
    meta: _Elements = {}
    position, end, previous = 132, len(data), -1
    while position + 8 <= end:
        group, element, vr, length = _HEADER.unpack_from(data, position)
        if group != 2:
            break
        tag = group << 16 | element
        if tag <= previous:
            raise _NotSimple
        position = _element(data, position, end, tag, vr, length, meta, depth=1)
        previous = tag
    if not meta:
        raise _NotSimple
    return meta, position


def _elements(
    data: bytes,
    position: int,
    end: int,
    *,
    depth: int,
    collect: _Elements | None,
    top_level: bool = False,
) -> int:
    """Read the elements from ``position`` to ``end``, or, when ``end`` is -1 (an item of
    undefined length), through the Item Delimitation Item; return the position after.
    The elements are stored in ``collect`` when it is given."""
    limit = end if end >= 0 else len(data)
    previous = -1
    while True:
        if position == end:
            return position
        if position + 8 > limit:
            raise _NotSimple
        group, element, vr, length = _HEADER.unpack_from(data, position)
        tag = group << 16 | element
        if tag == ITEM_DELIMITER and end < 0:
            if data[position + 4 : position + 8] != b"\x00\x00\x00\x00":
                raise _NotSimple
            return position + 8
        if tag <= previous or group == 0xFFFE or (top_level and group <= 2):
            raise _NotSimple
        position = _element(
            data, position, limit, tag, vr, length, collect, depth=depth, top_level=top_level
        )
        previous = tag


def _element(
    data: bytes,
    position: int,
    end: int,
    tag: int,
    vr: bytes,
    length: int,
    collect: _Elements | None,
    *,
    depth: int,
    top_level: bool = False,
) -> int:
    """Read the element whose header starts at ``position`` (it must end by ``end``);
    return the position after it."""
    name = _KNOWN_VRS.get(vr)
    if name is None:
        raise _NotSimple
    if vr in _LONG_VRS:
        if position + 12 > end:
            raise _NotSimple
        (length,) = _LONG.unpack_from(data, position + 8)
        start = position + 12
    else:
        start = position + 8
    if length == UNDEFINED:
        if vr == _VR_SQ:
            stop = _sequence_items(data, start, -1, depth + 1)
            value_end = stop - 8  # the Sequence Delimitation Item is not part of the value
        elif tag == PIXEL_DATA and top_level and vr in (b"OB", b"OW"):
            value_end = _fragments(data, start, end)
            stop = value_end + 8
        else:
            raise _NotSimple
        if stop > end:
            raise _NotSimple
        if collect is not None:
            collect[BaseTag(tag)] = RawDataElement(
                BaseTag(tag), name, UNDEFINED, data[start:value_end], start, False, True
            )
        return stop
    stop = start + length
    if stop > end:
        raise _NotSimple
    if vr == _VR_SQ and length:
        _sequence_items(data, start, stop, depth + 1)
    if collect is not None:
        value = data[start:stop] if length else empty_value_for_VR(name, raw=True)
        collect[BaseTag(tag)] = RawDataElement(
            BaseTag(tag),
            name,
            length,
            value,  # type: ignore[arg-type]  # an empty value is b"" or None, as pydicom reads it
            start,
            False,
            True,
        )
    return stop


def _sequence_items(data: bytes, position: int, end: int, depth: int) -> int:
    """Walk the items of a sequence value (PS3.5 §7.5) from ``position`` to ``end``, or
    through its Sequence Delimitation Item when ``end`` is -1; return the position after."""
    if depth > MAX_DEPTH:
        raise _NotSimple
    limit = end if end >= 0 else len(data)
    while True:
        if position == end:
            return position
        if position + 8 > limit:
            raise _NotSimple
        tag, length = _ITEM_HEADER.unpack_from(data, position)
        tag = (tag & 0xFFFF) << 16 | tag >> 16
        if tag == SEQUENCE_DELIMITER and end < 0:
            if length != 0:
                raise _NotSimple
            return position + 8
        if tag != ITEM:
            raise _NotSimple
        start = position + 8
        if length == UNDEFINED:
            position = _elements(data, start, -1, depth=depth, collect=None)
            if position > limit:
                raise _NotSimple
        elif start + length > limit:
            raise _NotSimple
        else:
            position = _elements(data, start, start + length, depth=depth, collect=None)


def _fragments(data: bytes, position: int, end: int) -> int:
    """Walk encapsulated Pixel Data (PS3.5 §A.4): items of defined length (the Basic
    Offset Table, then the fragments) up to a Sequence Delimitation Item; return where
    that delimiter starts."""
    while True:
        if position + 8 > end:
            raise _NotSimple
        tag, length = _ITEM_HEADER.unpack_from(data, position)
        tag = (tag & 0xFFFF) << 16 | tag >> 16
        if tag == SEQUENCE_DELIMITER:
            if length != 0:
                raise _NotSimple
            return position
        if tag != ITEM or length == UNDEFINED or position + 8 + length > end:
            raise _NotSimple
        position += 8 + length
