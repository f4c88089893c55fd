"""The pixel pipeline: decode a frame, then the grayscale chain of PS3.3 C.11 / PS3.4 N.2.

For grayscale images the order of the standard is kept (PS3.4 N.2.1.1, Figure N.2-1):

    stored values -> Modality LUT (C.11.1) -> VOI LUT or window (C.11.2) -> Presentation
    LUT (C.11.6: MONOCHROME1 or INVERSE = inverted) -> 8-bit display values

Because stored values are integers from a bounded range, the whole chain is evaluated
once per distinct stored value into a 256-level lookup table, then applied to the frame
with one ``take``: the result is the same as evaluating each step on every pixel (the
steps are per-pixel functions), at a fraction of the cost. The Modality LUT and VOI LUT
Sequence steps call pydicom's own ``apply_modality_lut`` and ``apply_voi``, so their
quirks (LUT descriptors, signedness) are pydicom's; the windowing functions LINEAR,
LINEAR_EXACT and SIGMOID are written out below after PS3.3 C.11.2.1.2 and C.11.2.1.3.

Colour images (RGB, YBR_* converted to RGB by pydicom, PALETTE COLOR through its LUTs,
PS3.3 C.7.6.3.1.5-6) are returned as 8-bit RGB; no VOI applies to them.

Array conventions: ``(row, column)`` indexing, row 0 at the top; RGB arrays are
``(rows, columns, 3)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import simplejpeg
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, get_frame
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi, pixel_array
from pydicom.uid import UID, JPEGBaseline8Bit

from viewer.dicom.decoder_pool import DecoderFailed, DecoderPool
from viewer.dicom.index import window_presets
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

    Top-level attributes first, then the shared functional groups, then the frame's own
    (PS3.3 C.7.6.16: per-frame values override shared ones).
    """
    view = Dataset()
    view.file_meta = dataset.file_meta  # LUT Data (OW) needs the transfer syntax's endianness
    view.set_original_encoding(*dataset.original_encoding)
    for keyword in _PIPELINE_KEYWORDS:
        if keyword in dataset:
            setattr(view, keyword, dataset.data_element(keyword).value)  # type: ignore[union-attr]
    groups = [dataset.get("SharedFunctionalGroupsSequence")]
    per_frame = dataset.get("PerFrameFunctionalGroupsSequence")
    if per_frame and index < len(per_frame):
        groups.append([per_frame[index]])
    for group in groups:
        if not group:
            continue
        for macro in _GROUP_MACROS:
            items = group[0].get(macro)
            if items:
                for element in items[0]:
                    setattr(view, element.keyword, element.value)
    return view


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
    """Modality LUT (PS3.3 C.11.1): Rescale Slope/Intercept or the Modality LUT Sequence."""
    return np.asarray(apply_modality_lut(stored, view))


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
    sequence = view.get("VOILUTSequence") or []
    if not 0 <= lut_index < len(sequence):
        raise ViewerError(
            f"VOI LUT {lut_index + 1} does not exist in this object", code="bad_window"
        )
    item = sequence[lut_index]
    bits = int(item.LUTDescriptor[2]) or 16
    single = Dataset()
    single.VOILUTSequence = [item]
    out = apply_voi(np.asarray(values), single, 0).astype(np.float64)
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
    if integral and high - low < MAX_LUT_ENTRIES:
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
        array = apply_color_lut(array, dataset)
        shift = 8 if array.dtype.itemsize > 1 else 0
    else:
        shift = max(int(view.get("BitsStored") or 8) - 8, 0)
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    if shift:
        array = np.right_shift(array.astype(np.uint32), shift)
    return np.asarray(array[..., :3], dtype=np.uint8)
