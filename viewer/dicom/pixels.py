"""The pixel pipeline: decode a frame, then the grayscale chain of PS3.3 C.11 / PS3.4 N.2.

For grayscale images the order of the standard is kept (PS3.4 N.2.1.1, Figure N.2-1):

    stored values -> Modality LUT (C.11.1) -> VOI LUT or window (C.11.2) -> Presentation
    LUT (C.11.6: MONOCHROME1 or INVERSE = inverted) -> 8-bit display values

Because stored values are integers from a bounded range, the whole chain is evaluated
once per distinct stored value into a 256-level lookup table, then applied to the frame
with one ``take``: the result is the same as evaluating each step on every pixel (the
steps are per-pixel functions), at a fraction of the cost. The Modality LUT and VOI LUT
Sequence steps call pydicom's own ``apply_modality_lut`` and ``apply_voi``, so their
mapping (first value mapped, clipping, signedness) is pydicom's; the windowing functions
LINEAR, LINEAR_EXACT and SIGMOID are written out below after PS3.3 C.11.2.1.2 and
C.11.2.1.3.

Colour images (RGB, YBR_* converted to RGB by pydicom, PALETTE COLOR through its LUTs,
PS3.3 C.7.6.3.1.5-6) are returned as 8-bit RGB; no VOI applies to them.

The header values these steps read come from the object, so they are checked before
pydicom sees them (:func:`lookup_table`, :func:`palette_module`, Rescale Slope and
Intercept as single finite numbers, attributes pydicom cannot convert): a value that
does not fit makes the frame unrenderable (:class:`~viewer.errors.UnrenderableFrame`,
422) with a message naming it, never an arbitrary exception out of pydicom or NumPy.

Array conventions: ``(row, column)`` indexing, row 0 at the top; RGB arrays are
``(rows, columns, 3)``.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import simplejpeg
from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, get_frame
from pydicom.errors import BytesLengthException
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi, pixel_array
from pydicom.tag import Tag
from pydicom.uid import UID, JPEGBaseline8Bit

from viewer.dicom.decoder_pool import DecoderFailed, DecoderPool
from viewer.dicom.index import window_presets
from viewer.dicom.values import frame_macro
from viewer.errors import UndecodableFrame, UnrenderableFrame, ViewerError

GREYSCALE = ("MONOCHROME1", "MONOCHROME2")
# Largest stored-value range evaluated as a lookup table (a 32-bit RT dose is not).
MAX_LUT_ENTRIES = 1 << 20

# Attributes of the pixel pipeline that enhanced multi-frame objects carry in functional
# groups (PS3.3 C.7.6.16.2.9 Pixel Value Transformation, C.7.6.16.2.10 Frame VOI LUT).
_GROUP_MACROS = ("PixelValueTransformationSequence", "FrameVOILUTSequence")
_PIPELINE_KEYWORDS = (
    "PhotometricInterpretation",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "SamplesPerPixel",
    "RescaleSlope",
    "RescaleIntercept",
    "RescaleType",
    "ModalityLUTSequence",
    "WindowCenter",
    "WindowWidth",
    "WindowCenterWidthExplanation",
    "VOILUTFunction",
    "VOILUTSequence",
    "PresentationLUTShape",
    "Modality",
)


@dataclass(frozen=True)
class Window:
    """A VOI window (PS3.3 C.11.2.1.2): centre and width in modality units."""

    center: float
    width: float
    function: str = "LINEAR"

    def __post_init__(self) -> None:
        if self.function not in ("LINEAR", "LINEAR_EXACT", "SIGMOID"):
            raise ViewerError(
                f"unknown VOI LUT function '{self.function}' (LINEAR, LINEAR_EXACT or SIGMOID)",
                code="bad_window",
            )
        if not (math.isfinite(self.center) and math.isfinite(self.width)):
            raise ViewerError("window centre and width must be finite numbers", code="bad_window")
        if self.function == "LINEAR" and self.width < 1:
            raise ViewerError("a LINEAR window needs a width of at least 1", code="bad_window")
        if self.width <= 0:
            raise ViewerError("a window needs a width above 0", code="bad_window")


def number_of_frames(dataset: Dataset) -> int:
    try:
        return max(int(dataset.get("NumberOfFrames") or 1), 1)
    except (TypeError, ValueError):
        return 1


def frame_size_bytes(dataset: Dataset) -> int:
    """Bytes one decoded frame needs (before any colour conversion)."""
    rows = int(dataset.get("Rows") or 0)
    columns = int(dataset.get("Columns") or 0)
    samples = int(dataset.get("SamplesPerPixel") or 1)
    bits = int(dataset.get("BitsAllocated") or 8)
    return rows * columns * samples * max(bits, 8) // 8


def decode_frame(
    dataset: Dataset, index: int, *, max_frame_bytes: int, decoders: DecoderPool | None
) -> npt.NDArray[np.generic]:
    """Decode frame ``index`` (0-based) to stored values; colour as RGB.

    This is the one boundary around the decoders, which are untrusted: the frame's size
    is checked against ``max_frame_bytes`` before anything is allocated; compressed
    frames (PS3.5 §8.2, §A.4) are decoded in ``decoders``, worker processes under CPU,
    memory and time limits (``viewer.dicom.decoder_pool``), or in this process where
    ``decoders`` is None; native frames are read here by pydicom and numpy. Whatever goes
    wrong — an exception, a Rust panic, a crashed or stuck worker, a decoder that answers
    with the wrong number of pixels — becomes :class:`UndecodableFrame` (422
    ``undecodable``) naming the frame and the transfer syntax.
    """
    if "PixelData" not in dataset:
        raise UnrenderableFrame("this object has no Pixel Data", code="no_pixel_data")
    frames = number_of_frames(dataset)
    if not 0 <= index < frames:
        raise UnrenderableFrame(
            f"frame {index + 1} does not exist (the object has {frames})", code="no_such_frame"
        )
    size = frame_size_bytes(dataset)
    if size > max_frame_bytes or size <= 0:
        raise UnrenderableFrame(
            f"one frame would need {size} bytes to decode; the limit is {max_frame_bytes}",
            code="frame_too_large",
        )
    syntax = UID(str(dataset.file_meta.TransferSyntaxUID))
    lasting = True
    try:
        if syntax.is_encapsulated:
            codestream = _codestream(dataset, index, frames)
            module = _pixel_module(dataset)
            if decoders is None:
                array = decode_codestream(codestream, module, str(syntax))
            else:
                array = decoders.call(decode_codestream, codestream, module, str(syntax))
        else:
            array = pixel_array(dataset, index=index)
        problem = _shape_problem(array, dataset)
    except DecoderFailed as failure:
        problem, lasting = failure.reason, failure.deterministic
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # decoders raise anything, panics included: the boundary
        problem = f"{type(exc).__name__}: {exc}"
    if problem:
        message = " ".join(problem.split())[:300]
        raise UndecodableFrame(
            f"frame {index + 1} cannot be decoded ({syntax.name}): {message}", lasting=lasting
        )
    return array


def _codestream(dataset: Dataset, index: int, frames: int) -> bytes:
    """Frame ``index``'s compressed bytes (its fragments joined, PS3.5 §A.4), found by
    the Basic or Extended Offset Table where there is one."""
    extended = None
    if "ExtendedOffsetTable" in dataset and "ExtendedOffsetTableLengths" in dataset:
        extended = (dataset.ExtendedOffsetTable, dataset.ExtendedOffsetTableLengths)
    return bytes(
        get_frame(dataset.PixelData, index, extended_offsets=extended, number_of_frames=frames)
    )


_PIXEL_MODULE = (
    "Rows",
    "Columns",
    "SamplesPerPixel",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "PlanarConfiguration",
)


def _pixel_module(dataset: Dataset) -> dict[str, Any]:
    """The Image Pixel module attributes (PS3.3 C.7.6.3) a decoder needs, as plain values."""
    module: dict[str, Any] = {
        keyword: int(dataset.data_element(keyword).value)  # type: ignore[union-attr]
        for keyword in _PIXEL_MODULE
        if dataset.get(keyword) is not None
    }
    module["PhotometricInterpretation"] = str(dataset.get("PhotometricInterpretation", "")).strip()
    return module


def decode_codestream(
    codestream: bytes, module: dict[str, Any], syntax: str
) -> npt.NDArray[np.generic]:
    """One compressed frame -> stored values (colour as RGB): the work a decoder process
    does. The frame is rebuilt as a one-frame data set so that pydicom picks the plugin
    and applies its corrections exactly as for the whole object."""
    if _turbo_decodable(module, UID(syntax)):
        decoded = simplejpeg.decode_jpeg(codestream, colorspace="GRAY")
        return np.asarray(decoded[..., 0])
    single = Dataset()
    single.file_meta = FileMetaDataset()
    single.file_meta.TransferSyntaxUID = UID(syntax)
    for keyword, found in module.items():
        setattr(single, keyword, found)
    single.NumberOfFrames = 1
    single.PixelData = encapsulate([codestream])
    single["PixelData"].VR = "OB"
    return pixel_array(single, index=0)


def _shape_problem(array: Any, dataset: Dataset) -> str:
    """What is wrong with a decoder's answer, or "" when it is Rows × Columns × Samples."""
    rows, columns = int(dataset.Rows), int(dataset.Columns)
    samples = int(dataset.get("SamplesPerPixel") or 1)
    if not isinstance(array, np.ndarray):
        return f"the decoder answered {type(array).__name__}, not pixels"
    expected: tuple[int, ...] = (rows, columns) if samples == 1 else (rows, columns, samples)
    if array.shape != expected:
        return (
            f"it decoded to {'×'.join(map(str, array.shape))} values, "
            f"the header says {'×'.join(map(str, expected))}"
        )
    if array.dtype.kind not in "uifb":
        return f"the decoder answered values of type {array.dtype}"
    return ""


def _turbo_decodable(module: Mapping[str, Any], syntax: UID) -> bool:
    """8-bit grey JPEG Baseline (1.2.840.10008.1.2.4.50): libjpeg-turbo decodes it about
    four times faster than the plugin pydicom picks. Two conforming JPEG decoders may
    differ by one grey level (their IDCTs), which PS3.5 §8.2.1 lossy coding allows."""
    return (
        syntax == JPEGBaseline8Bit
        and int(module.get("SamplesPerPixel") or 1) == 1
        and int(module.get("BitsAllocated") or 0) == 8
    )


def frame_view(dataset: Dataset, index: int) -> Dataset:
    """The pipeline attributes that apply to frame ``index``, as one flat data set.

    Top-level attributes first, then each functional-group macro of the frame
    (``values.frame_macro``: the frame's own, else the shared one; PS3.3 C.7.6.16).
    """
    view = Dataset()
    view.file_meta = dataset.file_meta
    view.set_original_encoding(*dataset.original_encoding)  # LUT Data (OW) is in this byte order
    for keyword in _PIPELINE_KEYWORDS:
        if keyword in dataset:
            view[keyword] = _readable(dataset, keyword)
    for macro in _GROUP_MACROS:
        item = frame_macro(dataset, macro, index, read=_readable_value)
        if item is not None:
            for tag in item.keys():
                element = _readable(item, tag)
                if element.keyword:
                    view[element.tag] = element
    return view


# What pydicom raises for a value it cannot convert (a number that is not one, a binary
# value whose length is not a multiple of its VR's size, an unknown VR).
_UNREADABLE = (ValueError, OverflowError, NotImplementedError, struct.error, BytesLengthException)


def _readable(dataset: Dataset, key: str | int) -> DataElement:
    """The element ``key`` of ``dataset``, converted; one pydicom cannot convert makes the
    frame unrenderable (422), naming the attribute."""
    try:
        return dataset[key]
    except _UNREADABLE as exc:
        raise UnrenderableFrame(
            f"{_label(key)} cannot be read: {type(exc).__name__}: {' '.join(str(exc).split())[:160]}",
            code="unreadable_attribute",
        ) from None


def _readable_value(dataset: Dataset, keyword: str) -> Any:
    return _readable(dataset, keyword).value if keyword in dataset else None


def _label(key: str | int) -> str:
    tag = Tag(key)
    return f"({tag.group:04X},{tag.element:04X}) {keyword_for_tag(tag) or 'private'}"


def is_greyscale(view: Dataset) -> bool:
    return str(view.get("PhotometricInterpretation", "")).strip() in GREYSCALE


def inverts(view: Dataset) -> bool:
    """MONOCHROME1 shows low values bright (PS3.3 C.7.6.3.1.2); a Presentation LUT Shape of
    INVERSE (C.11.6.1.2) asks for the same single inversion (DX pairs the two, C.8.11.6)."""
    return (
        str(view.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1"
        or str(view.get("PresentationLUTShape", "")).strip().upper() == "INVERSE"
    )


def header_window(view: Dataset, index: int = 0) -> Window | None:
    """Preset ``index`` of the header (Window Center/Width, PS3.3 C.11.2.1.2), if usable."""
    windows = [p for p in window_presets(view) if p["kind"] == "window"]
    if not 0 <= index < len(windows):
        return None
    preset = windows[index]
    function = str(preset["function"]).upper()
    try:
        return Window(preset["center"], preset["width"], function)
    except ViewerError:
        return None


def modality_values(stored: npt.NDArray[np.generic], view: Dataset) -> npt.NDArray[np.generic]:
    """Modality LUT (PS3.3 C.11.1): the Modality LUT Sequence (through pydicom's
    ``apply_modality_lut``, given the LUT checked by :func:`lookup_table`) or Rescale
    Slope/Intercept (C.11.1.1.2: slope × stored value + intercept, in float64)."""
    sequence = _readable_value(view, "ModalityLUTSequence")
    if sequence:
        lut = lookup_table(sequence[0], "Modality LUT", _little_endian(view))
        # In int64: pydicom subtracts the first value mapped from the stored values, which
        # NumPy refuses where that value does not fit their type (1024 from uint8).
        module = lut.as_module("ModalityLUTSequence")
        return np.asarray(apply_modality_lut(_wide(stored), module))
    rescale = _rescale(view)
    if rescale is None:
        return stored
    slope, intercept = rescale
    values = stored.astype(np.float64) * slope
    values += intercept
    return values


def _wide(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Integer values as int64 (the same values; any LUT's first value fits), others as
    they are."""
    if np.issubdtype(values.dtype, np.integer) and values.dtype != np.int64:
        return values.astype(np.int64)
    return values


def _rescale(view: Dataset) -> tuple[float, float] | None:
    """(0028,1053) Rescale Slope and (0028,1052) Rescale Intercept, where both have a value;
    each must be one finite number."""
    found = [_readable_value(view, k) for k in ("RescaleSlope", "RescaleIntercept")]
    if any(v is None or v == "" for v in found):
        return None
    numbers = []
    for keyword, raw in zip(("RescaleSlope", "RescaleIntercept"), found, strict=True):
        try:
            number = float(raw)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            raise UnrenderableFrame(
                f"{_label(keyword)} is '{str(raw)[:40]}', not one finite number (PS3.3 C.11.1.1.2)",
                code="bad_modality_lut",
            )
        numbers.append(number)
    return numbers[0], numbers[1]


def _little_endian(view: Dataset) -> bool:
    """The byte order the data set was read in (OW LUT Data is in it)."""
    little = view.original_encoding[1]
    return True if little is None else bool(little)


@dataclass(frozen=True)
class LookupTable:
    """A Modality or VOI LUT (PS3.3 C.11.1.1.1, C.11.2.1.1): ``entries`` values for the
    inputs from ``first`` on, each of ``bits`` bits as the LUT Descriptor says."""

    entries: int
    first: int
    bits: int
    data: npt.NDArray[np.int64]

    def as_module(self, keyword: str) -> Dataset:
        """A data set holding only this LUT in sequence ``keyword``, as pydicom's
        ``apply_modality_lut`` and ``apply_voi`` read it: LUT Data as little-endian OW,
        a depth they accept (8 or 16; the values are unchanged)."""
        item = Dataset()
        depth = 8 if self.bits == 8 and int(self.data.max(initial=0)) < 256 else 16
        item.add_new(0x00283002, "SL", [self.entries, self.first, depth])
        item.add_new(0x00283006, "OW", self.data.astype("<u2").tobytes())
        module = Dataset()
        module.set_original_encoding(False, True)
        module[keyword] = DataElement(keyword, "SQ", [item])
        return module


def lookup_table(item: Dataset, label: str, little_endian: bool) -> LookupTable:
    """The LUT of a Modality or VOI LUT Sequence item, checked: (0028,3002) LUT Descriptor
    has three values (entries, 0 meaning 65536; first stored value mapped; bits per
    entry, 8 to 16), and (0028,3006) LUT Data holds exactly that many 16-bit entries
    (OW in the data set's byte order, or US values). Anything else is refused with
    UnrenderableFrame (422 ``bad_lut``) saying what is wrong."""
    descriptor = _readable_value(item, "LUTDescriptor")
    values = list(descriptor) if isinstance(descriptor, (list, tuple, MultiValue)) else [descriptor]
    if len(values) != 3 or not all(isinstance(v, int) for v in values):
        raise UnrenderableFrame(
            f"the {label}'s (0028,3002) LUT Descriptor is {values!r:.60}; PS3.3 C.11.1.1.1 "
            "needs three numbers (entries, first value mapped, bits per entry)",
            code="bad_lut",
        )
    entries, first, bits = values[0] or 65536, values[1], values[2]
    if not 8 <= bits <= 16:
        raise UnrenderableFrame(
            f"the {label}'s entries have {bits} bits; PS3.3 C.11.1.1.1 allows 8 to 16",
            code="bad_lut",
        )
    if "LUTData" not in item:
        raise UnrenderableFrame(f"the {label} has no (0028,3006) LUT Data", code="bad_lut")
    element = _readable(item, "LUTData")
    raw = element.value
    if isinstance(raw, bytes):
        data = np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<u2" if little_endian else ">u2")
    else:
        data = np.asarray(list(raw) if isinstance(raw, (list, MultiValue)) else [raw])
        if data.dtype.kind not in "iu" or (data.size and (data.min() < 0 or data.max() > 65535)):
            raise UnrenderableFrame(f"the {label}'s LUT Data are not 16-bit values", code="bad_lut")
    if data.size != entries or (isinstance(raw, bytes) and len(raw) != 2 * entries):
        raise UnrenderableFrame(
            f"the {label}'s LUT Data holds {len(raw) if isinstance(raw, bytes) else data.size} "
            f"{'bytes' if isinstance(raw, bytes) else 'values'}; its descriptor says "
            f"{entries} entries of 16 bits",
            code="bad_lut",
        )
    return LookupTable(entries, first, bits, data.astype(np.int64))


def default_window(values: npt.NDArray[np.generic]) -> Window:
    """Where the header has no VOI: the frame's full range of modality values."""
    low, high = float(np.min(values)), float(np.max(values))
    return Window(center=(low + high + 1) / 2, width=max(high - low + 1, 1.0), function="LINEAR")


def window_unit(values: npt.NDArray[Any], window: Window) -> npt.NDArray[np.float64]:
    """Window ``values`` to [0, 1] with the function of PS3.3 C.11.2.1.2 / C.11.2.1.3."""
    x = values.astype(np.float64, copy=False)
    c, w = window.center, window.width
    if window.function == "SIGMOID":
        with np.errstate(over="ignore"):  # exp overflow -> inf -> 0, the right limit
            return np.asarray(1.0 / (1.0 + np.exp(-4.0 * (x - c) / w)))
    if window.function == "LINEAR":
        c, w = c - 0.5, w - 1.0
    if w == 0:  # LINEAR with width 1: a threshold at the centre
        return np.asarray((x > c).astype(np.float64))
    # Below c - w/2 -> 0, above c + w/2 -> 1, linear in between (the clip is the same).
    return np.asarray(np.clip((x - c) / w + 0.5, 0.0, 1.0))


def to_byte(unit: npt.NDArray[np.floating]) -> npt.NDArray[np.uint8]:
    """[0, 1] -> 0..255, rounding half up."""
    return np.asarray(np.floor(unit * 255.0 + 0.5), dtype=np.uint8)


def _voi_lut_unit(
    values: npt.NDArray[np.generic], view: Dataset, lut_index: int
) -> npt.NDArray[np.float64]:
    """VOI LUT Sequence item ``lut_index`` (PS3.3 C.11.2.1.1) through pydicom, scaled to [0, 1]
    by the LUT's output depth (third value of its LUT Descriptor)."""
    sequence = _readable_value(view, "VOILUTSequence") or []
    if not 0 <= lut_index < len(sequence):
        raise ViewerError(
            f"VOI LUT {lut_index + 1} does not exist in this object", code="bad_window"
        )
    lut = lookup_table(sequence[lut_index], f"VOI LUT {lut_index + 1}", _little_endian(view))
    bits = lut.bits
    module = lut.as_module("VOILUTSequence")
    out = apply_voi(_wide(np.asarray(values)), module, 0).astype(np.float64)
    top = float(2**bits - 1)
    if out.max(initial=0) > top:  # descriptors that understate the depth exist in the wild
        top = float(2 ** math.ceil(math.log2(out.max() + 1)) - 1)
    return np.asarray(np.clip(out / top, 0.0, 1.0))


@dataclass(frozen=True)
class GreyscaleRequest:
    """What the caller wants: an explicit window, a header preset, or a VOI LUT."""

    window: Window | None = None
    preset: int | None = None
    voi_lut: int | None = None


def resolve_voi(
    view: Dataset, request: GreyscaleRequest, values: npt.NDArray[np.generic]
) -> Window | int:
    """The window (or VOI LUT index) that applies: explicit, preset, LUT, header, default."""
    if request.window is not None:
        return request.window
    if request.voi_lut is not None:
        return request.voi_lut
    if request.preset is not None:
        found = header_window(view, request.preset)
        if found is None:
            raise ViewerError(
                f"preset {request.preset + 1} does not exist in this object", code="bad_window"
            )
        return found
    # The header's own default: a VOI LUT Sequence first (as pydicom's apply_voi_lut and
    # most modalities that send both intend), else the first window, else the full range.
    if view.get("VOILUTSequence"):
        return 0
    found = header_window(view, 0)
    if found is not None:
        return found
    return default_window(values)


def frame_voi(
    view: Dataset,
    request: GreyscaleRequest,
    stored: npt.NDArray[np.generic],
    known_range: tuple[int, int] | None = None,
) -> GreyscaleRequest:
    """The VOI that applies to a whole frame, as an explicit request (a window, or a VOI
    LUT index): :func:`resolve_voi` over the frame's lowest and highest modality values,
    so that every tile and every size of the frame is windowed alike."""
    found = known_range or value_range(stored)
    extremes = np.array(
        found if found is not None else [stored.min(), stored.max()], dtype=stored.dtype
    )
    voi = resolve_voi(view, request, modality_values(extremes, view))
    if isinstance(voi, Window):
        return GreyscaleRequest(window=voi)
    return GreyscaleRequest(voi_lut=voi)


def value_range(stored: npt.NDArray[np.generic]) -> tuple[int, int] | None:
    """The lowest and highest stored value of an integer frame (None for floats)."""
    if not np.issubdtype(stored.dtype, np.integer):
        return None
    return int(stored.min()), int(stored.max())


def greyscale_to_display(
    stored: npt.NDArray[np.generic],
    view: Dataset,
    request: GreyscaleRequest,
    known_range: tuple[int, int] | None = None,
) -> tuple[npt.NDArray[np.uint8], Window | int]:
    """Stored values -> 8-bit display values through the whole grayscale chain.

    ``known_range`` (a range that covers every value of ``stored``, e.g. the whole frame's
    for a tile) saves scanning the array for it. Returns the image and the VOI that was
    applied (a Window, or a VOI LUT index).
    """
    found = known_range or value_range(stored)
    integral = found is not None
    low, high = found if found is not None else (0, 0)
    # The table is indexed in int64: a 64-bit unsigned frame above 2**63 is evaluated per pixel.
    if integral and high - low < MAX_LUT_ENTRIES and high < 2**63:
        domain = np.arange(low, high + 1, dtype=np.int64)
        domain_values = modality_values(domain.astype(stored.dtype), view)
        voi = resolve_voi(view, request, domain_values)
        unit = (
            window_unit(domain_values, voi)
            if isinstance(voi, Window)
            else _voi_lut_unit(domain_values, view, voi)
        )
        lut = to_byte(unit)
        if inverts(view):
            lut = np.asarray(255 - lut, dtype=np.uint8)
        index = cast(
            npt.NDArray[np.integer[Any]], stored if low == 0 else stored.astype(np.int64) - low
        )
        return np.take(lut, index), voi
    values = modality_values(stored, view)
    voi = resolve_voi(view, request, values)
    unit = window_unit(values, voi) if isinstance(voi, Window) else _voi_lut_unit(values, view, voi)
    image = to_byte(unit)
    if inverts(view):
        image = np.asarray(255 - image, dtype=np.uint8)
    return image, voi


def colour_to_display(
    array: npt.NDArray[np.generic], view: Dataset, dataset: Dataset
) -> npt.NDArray[np.uint8]:
    """RGB (YBR already converted by pydicom) or PALETTE COLOR -> 8-bit RGB.

    Palette LUTs of 16 bits (PS3.3 C.7.6.3.1.5) and RGB samples of more than 8 bits are
    reduced to their 8 most significant bits.
    """
    photometric = str(view.get("PhotometricInterpretation", "")).strip()
    if photometric == "PALETTE COLOR":
        if array.ndim != 2 or not np.issubdtype(array.dtype, np.integer):
            raise UnrenderableFrame(
                "PALETTE COLOR needs one integer sample per pixel (PS3.3 C.7.6.3.1.2)",
                code="bad_palette",
            )
        array = apply_color_lut(array, palette_module(dataset))
        shift = 8 if array.dtype.itemsize > 1 else 0
    else:
        shift = max(int(view.get("BitsStored") or 8) - 8, 0)
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    if shift:
        array = np.right_shift(array.astype(np.uint32), shift)
    return np.asarray(array[..., :3], dtype=np.uint8)


_PALETTE_COLOURS = ("Red", "Green", "Blue")
# Segments an expansion may go through before it is refused: a palette has at most 65536
# entries, so more segments than this can only be a loop or a bomb of empty segments.
_MAX_PALETTE_SEGMENTS = 4 * 65536


def palette_module(dataset: Dataset) -> Dataset:
    """The Palette Color Lookup Table module of ``dataset`` (PS3.3 C.7.6.3.1.5-6, C.7.9),
    checked and expanded, as a data set pydicom's ``apply_color_lut`` maps through: the
    Red, Green and Blue descriptors' three values (the Red one's entries and first value
    apply, as in pydicom), 8 or 16 bits per entry, and LUT Data holding as many entries
    as the descriptor says, either plain (OW, in the data set's byte order) or segmented
    (C.7.9.2; indirect segments are followed one level deep). Anything else is refused
    with UnrenderableFrame (422 ``bad_palette``) saying what is wrong."""
    little = _little_endian(dataset)
    red = _palette_descriptor(dataset, "Red")
    entries, first, bits = red
    tables = [_palette_table(dataset, colour, entries, bits, little) for colour in _PALETTE_COLOURS]
    depth = 8 if all(t.dtype == np.uint8 for t in tables) else 16
    module = Dataset()
    module.set_original_encoding(False, True)
    for colour, table in zip(_PALETTE_COLOURS, tables, strict=True):
        module[f"{colour}PaletteColorLookupTableDescriptor"] = DataElement(
            f"{colour}PaletteColorLookupTableDescriptor", "SL", [entries % 65536, first, depth]
        )
        module[f"{colour}PaletteColorLookupTableData"] = DataElement(
            f"{colour}PaletteColorLookupTableData",
            "OW",
            table.astype("<u1" if depth == 8 else "<u2").tobytes(),
        )
    return module


def _palette_descriptor(dataset: Dataset, colour: str) -> tuple[int, int, int]:
    keyword = f"{colour}PaletteColorLookupTableDescriptor"
    found = _readable_value(dataset, keyword)
    values = list(found) if isinstance(found, (list, tuple, MultiValue)) else [found]
    if len(values) != 3 or not all(isinstance(v, int) for v in values):
        raise UnrenderableFrame(
            f"{_label(keyword)} is {values!r:.60}; PS3.3 C.7.6.3.1.5 needs three numbers "
            "(entries, first value mapped, bits per entry)",
            code="bad_palette",
        )
    entries, first, bits = values
    if bits not in (8, 16):
        raise UnrenderableFrame(
            f"{_label(keyword)} gives {bits} bits per entry; PS3.3 C.7.6.3.1.5 allows 8 or 16",
            code="bad_palette",
        )
    return entries or 65536, first, bits


def _palette_table(
    dataset: Dataset, colour: str, entries: int, bits: int, little: bool
) -> npt.NDArray[np.unsignedinteger[Any]]:
    """One colour's LUT, ``entries`` values long: plain data of 8- or 16-bit entries (the
    depth follows from its length, as pydicom reads it) or the segmented data expanded."""
    plain = f"{colour}PaletteColorLookupTableData"
    segmented = f"Segmented{colour}PaletteColorLookupTableData"
    if plain in dataset:
        data = _readable_value(dataset, plain) or b""
        if not isinstance(data, bytes) or len(data) not in (entries, 2 * entries):
            raise UnrenderableFrame(
                f"{_label(plain)} holds {len(data) if isinstance(data, bytes) else '?'} bytes "
                f"for {entries} entries (PS3.3 C.7.6.3.1.6 needs one or two bytes per entry)",
                code="bad_palette",
            )
        if len(data) == entries:
            return np.frombuffer(data, dtype=np.uint8)
        return np.frombuffer(data, dtype="<u2" if little else ">u2").astype(np.uint16)
    if segmented not in dataset:
        raise UnrenderableFrame(
            f"PALETTE COLOR without {_label(plain)} or {_label(segmented)}", code="bad_palette"
        )
    data = _readable_value(dataset, segmented) or b""
    if not isinstance(data, bytes):
        raise UnrenderableFrame(f"{_label(segmented)} is not binary data", code="bad_palette")
    size = bits // 8
    words = np.frombuffer(
        data[: len(data) // size * size], dtype="u1" if size == 1 else ("<u2" if little else ">u2")
    ).tolist()
    expanded = _expand_segments(words, size == 1, little, entries, _label(segmented))
    if len(expanded) < entries or max(expanded, default=0) >= 1 << bits:
        raise UnrenderableFrame(
            f"{_label(segmented)} expands to {len(expanded)} entries"
            + (f" with values above {bits} bits" if len(expanded) >= entries else "")
            + f"; the descriptor says {entries} of {bits} bits",
            code="bad_palette",
        )
    return np.asarray(expanded[:entries], dtype=np.uint8 if bits == 8 else np.uint16)


def _expand_segments(
    words: list[int], bytewise: bool, little: bool, limit: int, label: str
) -> list[int]:
    """Segmented LUT Data (PS3.3 C.7.9.2) -> its entries, as pydicom's expansion reads
    them: discrete (0: length, values), linear (1: length, end value, from the previous
    entry) and indirect (2: a count of segments and their 32-bit offset, in words, into
    the data) segments. At most ``limit`` entries and _MAX_PALETTE_SEGMENTS segments."""
    lut: list[int] = []
    steps = 0

    def refuse(problem: str) -> UnrenderableFrame:
        return UnrenderableFrame(f"{label}: {problem} (PS3.3 C.7.9.2)", code="bad_palette")

    def expand(offset: int, count: int | None, nested: bool) -> None:
        nonlocal steps
        done = 0
        while offset + 1 < len(words) and (count is None or done < count):
            steps += 1
            if steps > _MAX_PALETTE_SEGMENTS or len(lut) > limit:
                raise refuse(f"the segments expand past {limit} entries")
            opcode, length = words[offset], words[offset + 1]
            offset += 2
            if opcode == 0:
                lut.extend(words[offset : offset + length])
                offset += length
            elif opcode == 1:
                if not lut or offset >= len(words):
                    raise refuse("a linear segment has no value to start from or end at")
                start, end = lut[-1], words[offset]
                offset += 1
                if start == end or length == 0:
                    lut.extend([end] * length)
                else:
                    step = (end - start) / length
                    lut.extend(int(v) for v in np.around(np.linspace(start + step, end, length)))
            elif opcode == 2:
                if nested or not lut:
                    raise refuse("an indirect segment comes first or points to another")
                if bytewise:
                    order = [3, 2, 1, 0] if little else [2, 3, 0, 1]
                    b = [words[offset + i] if offset + i < len(words) else 0 for i in order]
                    target = (b[0] << 8 | b[1]) << 16 | (b[2] << 8 | b[3])
                    offset += 4
                else:
                    high = words[offset + 1] if offset + 1 < len(words) else 0
                    target = high << 16 | (words[offset] if offset < len(words) else 0)
                    offset += 2
                expand(target, length, True)
            else:
                raise refuse(f"unknown segment type {opcode}")
            done += 1

    expand(0, None, False)
    return lut
