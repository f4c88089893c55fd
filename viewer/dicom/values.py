"""Attribute values of a pydicom data set, read the way pydicom reads them, for less.

``value(dataset, keyword)`` answers what ``dataset.get(keyword)`` answers. For an element
still in raw form with an explicit VR among ``SIMPLE_VRS`` (text, numbers, dates, times,
UIDs, person names), the value is decoded by pydicom's own ``convert_value`` with the data
set's character set (PS3.5 §6.1), exactly as pydicom decodes it on first access, without
the bookkeeping that access does for every element (a DataElement object, the VR
corrections for sequences and ambiguous VRs, which these VRs never need). The element is
left raw. Anything else, or a value pydicom would complain about, is read the usual way.

A binary value whose length is not a multiple of its VR's size (a US of 1 byte, an FL of
6) cannot be read at all: pydicom raises ``BytesLengthException``; nor can an IS of ``inf``
or ``1e400`` (OverflowError). Both are turned into :class:`~viewer.errors.InvalidDicom`
(400 ``unparseable``) naming the attribute. Other values pydicom cannot convert raise its
own ValueError, which ingest reports as 400 ``unparseable`` too.

Ingest reads some forty attributes of every object (``viewer.dicom.index``); this halves
what that costs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import BytesLengthException
from pydicom.tag import BaseTag
from pydicom.values import convert_value

from viewer.errors import InvalidDicom

SIMPLE_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "PN", "SH", "SL"}
    | {"SS", "ST", "TM", "UC", "UI", "UL", "UR", "US", "UT"}
)
SPECIFIC_CHARACTER_SET = BaseTag(0x00080005)

_tags: dict[str, BaseTag | None] = {}


def value(dataset: Dataset, keyword: str, default: Any = None) -> Any:
    """``dataset.get(keyword, default)`` for a DICOM keyword."""
    try:
        tag = _tags[keyword]
    except KeyError:
        number = tag_for_keyword(keyword)
        tag = _tags[keyword] = BaseTag(number) if number is not None else None
    if tag is None:
        return dataset.get(keyword, default)
    element = dataset.get_item(tag)
    if element is None:
        return default
    if (
        isinstance(element, RawDataElement)
        and element.VR in SIMPLE_VRS
        and element.value is not None
        and tag != SPECIFIC_CHARACTER_SET
    ):
        encoding = dataset.original_character_set
        if encoding:
            try:
                return convert_value(element.VR, element, encoding)
            except Exception:  # noqa: S110  # pydicom's own access decides (UN, warning or error)
                pass
    try:
        return dataset[tag].value
    except BytesLengthException:
        length = getattr(element, "length", "?")
        raise InvalidDicom(
            f"({tag.group:04X},{tag.element:04X}) {keyword} holds {length} bytes, which is not "
            f"a whole number of {element.VR or 'binary'} values (PS3.5 §6.2)",
            code="unparseable",
        ) from None
    except OverflowError:
        raise InvalidDicom(
            f"({tag.group:04X},{tag.element:04X}) {keyword} holds a number beyond any "
            f"integer or float, such as 'inf' in an IS (PS3.5 §6.2)",
            code="unparseable",
        ) from None


def frame_macro(
    dataset: Dataset,
    macro: str,
    frame: int = 0,
    *,
    read: Callable[[Dataset, str], Any] = value,
) -> Dataset | None:
    """The item of functional-group macro ``macro`` (e.g. ``PixelMeasuresSequence``) that
    applies to frame ``frame`` (0-based) of an enhanced multi-frame object (PS3.3
    C.7.6.16): the frame's own Per-Frame Functional Groups item where it holds the macro,
    else the Shared Functional Groups item; None where neither does. ``read`` reads a
    sequence (``value`` by default; a caller may pass one with its own errors)."""
    groups = []
    per_frame = read(dataset, "PerFrameFunctionalGroupsSequence")
    if per_frame and 0 <= frame < len(per_frame):
        groups.append(per_frame[frame])
    shared = read(dataset, "SharedFunctionalGroupsSequence")
    if shared:
        groups.append(shared[0])
    for group in groups:
        items = read(group, macro)
        if items:
            return items[0]
    return None
