"""Hypothesis strategies that make hostile DICOM objects out of real ones.

Two depths, both drawn from the same seeds:

* **bytes** (:func:`mutated_bytes`): flips, overwrites with random or boundary values
  (lengths of 0, 0xFFFF, 0xFFFFFFFF …), truncation, insertion, deletion, repetition and
  the splice of two files, aimed at the header, the start of Pixel Data (its length and
  item tags) or the codestream. This is what the Part 10 parser sees.
* **data set** (:func:`edited_object`): the seed read with pydicom, changed the way a
  broken modality would write it, and saved again: the Image Pixel module (Rows, Columns,
  Bits Allocated/Stored, High Bit, Pixel Representation, Samples per Pixel, Photometric
  Interpretation, Planar Configuration, Number of Frames), Rescale Slope/Intercept,
  Window Center/Width and VOI LUT Function, Modality LUT, VOI LUT and Palette Color LUT
  descriptors and data, functional groups, offset tables, the codestream of a frame, the
  transfer syntax in the meta, text values the index reads. Values are written as raw
  elements, so that what pydicom would refuse to write (``1A`` in an IS, ``nan`` in a
  DS, an odd length, three values where one belongs) reaches the reader all the same.

The bytes of large random payloads come from a NumPy generator seeded by one drawn
integer, so that Hypothesis keeps and shrinks a number, not megabytes.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from hypothesis import strategies as st
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import _read_file_meta_info, read_preamble
from pydicom.filewriter import write_file_meta_info
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import Tag
from pydicom.uid import UID

from tests.fuzz import corpus

Draw = Callable[[st.SearchStrategy[Any]], Any]

INTERESTING_32 = (
    0,
    1,
    2,
    0x7F,
    0x80,
    0xFF,
    0x100,
    0x7FFF,
    0x8000,
    0xFFFE,
    0xFFFF,
    0x10000,
    0x7FFFFFFF,
    0x80000000,
    0xFFFFFFFE,
    0xFFFFFFFF,
)
ITEM_TAG = b"\xfe\xff\x00\xe0"
SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0"
PIXEL_DATA_TAGS = (b"\xe0\x7f\x10\x00", b"\x7f\xe0\x00\x10")


def random_bytes(seed: int, size: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


def pixel_data_offset(data: bytes) -> int:
    """Where (7FE0,0010) Pixel Data starts (its last occurrence, after any icon), or the
    middle of the file where it is not found."""
    found = max(data.rfind(tag) for tag in PIXEL_DATA_TAGS)
    return found if found >= 0 else len(data) // 2


# ------------------------------------------------------------------------------ bytes


@st.composite
def byte_edit(draw: Draw, data: bytes, regions: Sequence[str] | None = None) -> bytes:
    """One edit of ``data`` at a drawn place."""
    if not data:
        return bytes(draw(st.binary(min_size=1, max_size=64)))
    size = len(data)
    pixels = min(pixel_data_offset(data), size - 1)
    bounds = {
        "header": (0, max(pixels, 1)),
        "preamble_and_meta": (0, min(size, 512)),
        "pixel_data_element": (pixels, min(pixels + 48, size)),
        "pixels": (pixels, size),
        "anywhere": (0, size),
    }
    region = draw(st.sampled_from(list(regions or bounds)))
    low, high = bounds[region]
    at = draw(st.integers(low, max(low, high - 1)))
    kind = draw(
        st.sampled_from(
            [
                "flip",
                "overwrite",
                "boundary_value",
                "noise",
                "truncate",
                "insert",
                "delete",
                "repeat",
                "item_tag",
            ]
        )
    )
    if kind == "flip":
        mask = draw(st.integers(1, 255))
        return data[:at] + bytes([data[at] ^ mask]) + data[at + 1 :]
    if kind == "overwrite":
        chunk = bytes(draw(st.binary(min_size=1, max_size=16)))
        return data[:at] + chunk + data[at + len(chunk) :]
    if kind == "boundary_value":
        width = draw(st.sampled_from([2, 4]))
        number = draw(st.sampled_from(INTERESTING_32)) & ((1 << (8 * width)) - 1)
        chunk = number.to_bytes(width, draw(st.sampled_from(["little", "big"])))
        return data[:at] + chunk + data[at + width :]
    if kind == "noise":
        count = draw(st.sampled_from([1, 2, 3, 4, 8, 16, 64, 256, 1024, 4096]))
        chunk = random_bytes(draw(st.integers(0, 2**32 - 1)), count)
        return data[:at] + chunk + data[at + count :]
    if kind == "truncate":
        return data[:at]
    if kind == "insert":
        chunk = bytes(draw(st.binary(min_size=1, max_size=64)))
        return data[:at] + chunk + data[at:]
    if kind == "delete":
        return data[:at] + data[at + draw(st.integers(1, 512)) :]
    if kind == "repeat":
        count = draw(st.integers(1, 256))
        return data[:at] + data[at : at + count] * draw(st.integers(2, 64)) + data[at + count :]
    # An item or sequence delimiter tag with a boundary length, where one does not belong.
    tag = draw(st.sampled_from([ITEM_TAG, SEQUENCE_DELIMITER]))
    length = draw(st.sampled_from(INTERESTING_32)).to_bytes(4, "little")
    return data[:at] + tag + length + data[at + 8 :]


@st.composite
def mutated_bytes(draw: Draw, seeds: Sequence[Path], max_edits: int = 4) -> bytes:
    """A seed's bytes after one to ``max_edits`` byte edits, sometimes spliced with another."""
    data = corpus.read(draw(st.sampled_from(seeds)))
    if draw(st.integers(0, 9)) == 0:
        other = corpus.read(draw(st.sampled_from(seeds)))
        data = data[: draw(st.integers(0, len(data)))] + other[draw(st.integers(0, len(other))) :]
    for _ in range(draw(st.integers(1, max_edits))):
        data = draw(byte_edit(data))
    return data


# ----------------------------------------------------------------------- data set level

US_VALUES = st.one_of(
    st.sampled_from(
        [
            0,
            1,
            2,
            3,
            4,
            5,
            7,
            8,
            9,
            11,
            12,
            15,
            16,
            17,
            24,
            31,
            32,
            33,
            63,
            64,
            65,
            127,
            128,
            255,
            256,
            257,
            511,
            512,
            513,
            4095,
            4096,
            32767,
            32768,
            65534,
            65535,
        ]
    ),
    st.integers(0, 65535),
)
NUMBER_TEXTS = st.one_of(
    st.sampled_from(
        [
            "0",
            "1",
            "-1",
            "2",
            "3",
            "10",
            "1000",
            "-1024",
            "65535",
            "65536",
            "2147483648",
            "99999999",
            "1e5",
            "1e308",
            "-1e308",
            "1e-320",
            "1E+300",
            "0.5",
            "-0.0",
            "+5",
            "NaN",
            "nan",
            "inf",
            "-inf",
            "Infinity",
            "1A",
            "",
            " ",
            "abc",
            "1.2.3",
            "--1",
            "0x10",
            "1_000",
            "١٢",
            "\x00",
        ]
    ),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda f: repr(f)[:16]),
    st.integers(-(2**63), 2**63).map(lambda i: str(i)[:16]),
    st.text(max_size=16),
)
PHOTOMETRICS = st.one_of(
    st.sampled_from(
        [
            "MONOCHROME1",
            "MONOCHROME2",
            "RGB",
            "PALETTE COLOR",
            "YBR_FULL",
            "YBR_FULL_422",
            "YBR_PARTIAL_420",
            "YBR_ICT",
            "YBR_RCT",
            "ARGB",
            "CMYK",
            "HSV",
            "XYB",
            "",
            "monochrome2",
            " MONOCHROME2",
            "MONOCHROME2\\RGB",
        ]
    ),
    st.text(max_size=16),
)
CHARACTER_SETS = st.sampled_from(
    [
        "ISO_IR 100",
        "ISO_IR 192",
        "ISO 2022 IR 87",
        "\\ISO 2022 IR 87",
        "GB18030",
        "ISO_IR 999",
        "ISO 2022 IR 13\\ISO 2022 IR 87",
        "utf-8",
        "",
        "\\\\",
        "ISO_IR 6",
    ]
)
NATIVE_SYNTAXES = [
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.1.99",
]
ENCAPSULATED_SYNTAXES = [
    "1.2.840.10008.1.2.5",  # RLE
    "1.2.840.10008.1.2.4.50",  # JPEG baseline
    "1.2.840.10008.1.2.4.51",  # JPEG extended
    "1.2.840.10008.1.2.4.57",  # JPEG lossless process 14
    "1.2.840.10008.1.2.4.70",  # JPEG lossless SV1
    "1.2.840.10008.1.2.4.80",  # JPEG-LS lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.90",  # J2K lossless
    "1.2.840.10008.1.2.4.91",  # J2K
    "1.2.840.10008.1.2.4.201",  # HTJ2K lossless
    "1.2.840.10008.1.2.4.203",  # HTJ2K
    "1.2.840.10008.1.2.4.100",  # MPEG2 (no decoder)
    "1.2.840.10008.1.2.999",  # unknown
]


def _vr(tag: int) -> str:
    try:
        vr = str(dictionary_VR(tag))
    except KeyError:
        return "UN"
    return {"US or SS": "US", "OB or OW": "OW", "US or OW": "OW", "US or SS or OW": "US"}.get(
        vr, vr.split(" ")[0]
    )


def _encoding(dataset: Dataset) -> tuple[bool, bool]:
    implicit, little = dataset.original_encoding
    return (bool(implicit) if implicit is not None else False), (
        bool(little) if little is not None else True
    )


def put_raw(dataset: Dataset, keyword: str | int, payload: bytes, vr: str | None = None) -> None:
    """Set an element to exactly ``payload`` (written as it is, in the data set's encoding)."""
    tag = Tag(keyword)
    implicit, little = _encoding(dataset)
    dataset[tag] = RawDataElement(tag, vr or _vr(tag), len(payload), payload, 0, implicit, little)


def put_text(dataset: Dataset, keyword: str, values: Sequence[str], pad: bool = True) -> None:
    payload = "\\".join(values).encode("utf-8", "surrogatepass")
    if pad and len(payload) % 2:
        payload += b"\x00" if _vr(Tag(keyword)) == "UI" else b" "
    put_raw(dataset, keyword, payload)


def put_numbers(dataset: Dataset, keyword: str, numbers: Sequence[int], code: str = "H") -> None:
    _, little = _encoding(dataset)
    put_raw(dataset, keyword, struct.pack(("<" if little else ">") + code * len(numbers), *numbers))


PIXEL_MODULE = (
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "SamplesPerPixel",
    "PlanarConfiguration",
)


def _original_int(dataset: Dataset, keyword: str) -> int:
    try:
        return int(dataset.get(keyword) or 0)
    except (TypeError, ValueError):
        return 0


def edit_pixel_module(draw: Draw, dataset: Dataset) -> None:
    keyword = draw(st.sampled_from(PIXEL_MODULE))
    original = _original_int(dataset, keyword)
    near = st.integers(max(original - 3, 0), min(original + 3, 65535))
    number = draw(st.one_of(US_VALUES, near))
    shape = draw(st.sampled_from(["one", "one", "one", "two", "odd_length", "empty"]))
    if shape == "one":
        put_numbers(dataset, keyword, [number])
    elif shape == "two":
        put_numbers(dataset, keyword, [number, draw(US_VALUES)])
    elif shape == "odd_length":
        put_raw(dataset, keyword, bytes([number & 0xFF]))
    else:
        put_raw(dataset, keyword, b"")


def edit_photometric(draw: Draw, dataset: Dataset) -> None:
    put_text(dataset, "PhotometricInterpretation", [draw(PHOTOMETRICS)])


def edit_number_of_frames(draw: Draw, dataset: Dataset) -> None:
    frames = draw(
        st.one_of(
            st.sampled_from(["0", "1", "2", "3", "10", "97", "1000", "2147483647"]), NUMBER_TEXTS
        )
    )
    put_text(dataset, "NumberOfFrames", [frames])


def edit_rescale(draw: Draw, dataset: Dataset) -> None:
    for keyword in draw(
        st.lists(st.sampled_from(["RescaleSlope", "RescaleIntercept"]), min_size=1, max_size=2)
    ):
        put_text(dataset, keyword, draw(st.lists(NUMBER_TEXTS, min_size=1, max_size=2)))
    if draw(st.booleans()):
        put_text(dataset, "RescaleType", [draw(st.sampled_from(["HU", "US", "OD", "", "x" * 20]))])


def edit_window(draw: Draw, dataset: Dataset) -> None:
    count = draw(st.integers(1, 4))
    put_text(dataset, "WindowCenter", draw(st.lists(NUMBER_TEXTS, min_size=1, max_size=count)))
    put_text(dataset, "WindowWidth", draw(st.lists(NUMBER_TEXTS, min_size=1, max_size=count)))
    if draw(st.booleans()):
        put_text(
            dataset,
            "VOILUTFunction",
            [draw(st.sampled_from(["LINEAR", "LINEAR_EXACT", "SIGMOID", "linear", "", "CUBIC"]))],
        )
    if draw(st.booleans()):
        put_text(
            dataset,
            "WindowCenterWidthExplanation",
            draw(st.lists(st.text(max_size=20), min_size=0, max_size=5)),
        )


def edit_presentation(draw: Draw, dataset: Dataset) -> None:
    shape = draw(
        st.sampled_from(["INVERSE", "IDENTITY", "inverse", "", "LOG", "INVERSE\\IDENTITY"])
    )
    put_text(dataset, "PresentationLUTShape", [shape])


def _lut_item(draw: Draw, *, voi: bool) -> Dataset:
    """A Modality or VOI LUT Sequence item (PS3.3 C.11.1, C.11.2) with a drawn descriptor
    (entries, first mapped value, bits) and LUT Data that may not fit it."""
    entries = draw(st.sampled_from([0, 1, 2, 3, 255, 256, 4096, 65535]) | st.integers(0, 65535))
    first = draw(st.sampled_from([0, 1, 1024, 32768, 65535]) | st.integers(0, 65535))
    bits = draw(st.sampled_from([0, 1, 7, 8, 10, 12, 15, 16, 17, 32, 255, 65535]))
    descriptor = [entries, first, bits]
    shape = draw(st.sampled_from(["fits", "fits", "short", "long", "empty", "odd", "bytes"]))
    real = entries or 65536
    size = {
        "fits": 2 * real,
        "short": max(2 * real - 2 * draw(st.integers(1, 64)), 0),
        "long": 2 * real + 2 * draw(st.integers(1, 64)),
        "empty": 0,
        "odd": 2 * real + 1,
        "bytes": real,
    }[shape]
    item = Dataset()
    if draw(st.integers(0, 9)) == 0:  # the wrong number of descriptor values
        descriptor = descriptor[: draw(st.integers(0, 2))] or [0]
    item.add_new(0x00283002, "US", descriptor)  # LUT Descriptor
    if draw(st.integers(0, 9)):
        item.add_new(0x00283006, "OW", random_bytes(draw(st.integers(0, 2**32 - 1)), size))
    if voi:
        item.add_new(0x00283003, "LO", draw(st.sampled_from(["", "LUT", "x" * 80])))
    else:
        item.add_new(0x00283004, "LO", draw(st.sampled_from(["HU", "US", "OD", ""])))
    return item


def edit_modality_lut(draw: Draw, dataset: Dataset) -> None:
    dataset.ModalityLUTSequence = DicomSequence(
        [_lut_item(draw, voi=False) for _ in range(draw(st.integers(1, 2)))]
    )
    if draw(st.booleans()):
        for keyword in ("RescaleSlope", "RescaleIntercept"):
            if keyword in dataset:
                del dataset[keyword]


def edit_voi_lut(draw: Draw, dataset: Dataset) -> None:
    dataset.VOILUTSequence = DicomSequence(
        [_lut_item(draw, voi=True) for _ in range(draw(st.integers(1, 3)))]
    )
    if draw(st.booleans()):
        for keyword in ("WindowCenter", "WindowWidth"):
            if keyword in dataset:
                del dataset[keyword]


def _segmented_palette(draw: Draw) -> bytes:
    """Segmented Palette Color LUT Data (PS3.3 C.7.9.2): discrete (0), linear (1) and
    indirect (2) segments with drawn lengths and offsets, or plain noise."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    words: list[int] = []
    for _ in range(draw(st.integers(0, 6))):
        opcode = int(rng.choice([0, 1, 2, 3]))
        length = int(rng.choice([0, 1, 2, 255, 256, 65535, int(rng.integers(0, 65536))]))
        if opcode == 0:
            words += [0, length] + [int(v) for v in rng.integers(0, 65536, min(length, 300))]
        elif opcode == 1:
            words += [1, length, int(rng.integers(0, 65536))]
        elif opcode == 2:
            words += [2, length, int(rng.integers(0, 65536)), int(rng.integers(0, 65536))]
        else:
            words += [int(v) for v in rng.integers(0, 65536, int(rng.integers(1, 8)))]
    return struct.pack(f"<{len(words)}H", *words)


def edit_palette(draw: Draw, dataset: Dataset) -> None:
    """PALETTE COLOR (PS3.3 C.7.6.3.1.5-6): descriptors and LUT Data, plain or segmented."""
    put_text(dataset, "PhotometricInterpretation", ["PALETTE COLOR"])
    if draw(st.booleans()):
        put_numbers(dataset, "SamplesPerPixel", [1])
    segmented = draw(st.integers(0, 3)) == 0
    for colour in ("Red", "Green", "Blue"):
        entries = draw(st.sampled_from([0, 1, 2, 255, 256, 4096, 65535]) | US_VALUES)
        first = draw(st.sampled_from([0, 1, 128, 65535]) | US_VALUES)
        bits = draw(st.sampled_from([8, 16, 16, 0, 1, 12, 32, 65535]))
        put_numbers(dataset, f"{colour}PaletteColorLookupTableDescriptor", [entries, first, bits])
        if segmented:
            data = _segmented_palette(draw)
            put_raw(dataset, f"Segmented{colour}PaletteColorLookupTableData", data, "OW")
            keyword = f"{colour}PaletteColorLookupTableData"
            if keyword in dataset:
                del dataset[keyword]
        else:
            real = entries or 65536
            size = draw(st.sampled_from([2 * real, real, 2 * real - 2, 2 * real + 2, 0, 1]))
            data = random_bytes(draw(st.integers(0, 2**32 - 1)), max(size, 0))
            put_raw(dataset, f"{colour}PaletteColorLookupTableData", data, "OW")


def edit_delete(draw: Draw, dataset: Dataset) -> None:
    keyword = draw(
        st.sampled_from(
            (
                *PIXEL_MODULE,
                "PhotometricInterpretation",
                "NumberOfFrames",
                "PixelData",
                "RescaleSlope",
                "WindowWidth",
                "SOPInstanceUID",
                "StudyInstanceUID",
                "SpecificCharacterSet",
            )
        )
    )
    if keyword in dataset:
        del dataset[keyword]


def _codestream_edit(draw: Draw, codestream: bytes) -> bytes:
    regions = ["start", "anywhere"]
    region = draw(st.sampled_from(regions))
    if region == "start" and codestream:
        head = codestream[: min(len(codestream), 512)]
        return bytes(draw(byte_edit(head, ["anywhere"]))) + codestream[len(head) :]
    return bytes(draw(byte_edit(codestream, ["anywhere"])))


def edit_pixel_data(draw: Draw, dataset: Dataset) -> None:
    """The codestream of one frame (encapsulated, PS3.5 §A.4) or the native values."""
    if "PixelData" not in dataset:
        return
    meta = getattr(dataset, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    data = bytes(dataset.PixelData)
    if syntax is not None and UID(str(syntax)).is_encapsulated:
        try:
            frames = list(generate_frames(data, number_of_frames=max(_frames(dataset), 1)))
        except Exception:  # already broken: edit the bytes as they are
            frames = []
        if frames:
            index = draw(st.integers(0, len(frames) - 1))
            operation = draw(
                st.sampled_from(["edit", "edit", "edit", "split", "drop", "empty", "duplicate"])
            )
            per_frame = 1
            if operation == "edit":
                for _ in range(draw(st.integers(1, 3))):
                    frames[index] = _codestream_edit(draw, frames[index])
            elif operation == "split":
                per_frame = draw(st.integers(2, 5))
            elif operation == "drop":
                del frames[index]
            elif operation == "empty":
                frames[index] = b""
            else:
                frames.insert(index, frames[index])
            frames = [f + b"\x00" * (len(f) % 2) for f in frames]
            if frames and all(frames):
                try:
                    dataset.PixelData = encapsulate(
                        frames, fragments_per_frame=per_frame, has_bot=draw(st.booleans())
                    )
                except ValueError:
                    pass
                return
        dataset.PixelData = bytes(draw(byte_edit(data, ["anywhere"]))) if data else b""
        return
    operation = draw(st.sampled_from(["edit", "truncate", "extend", "odd"]))
    if operation == "edit":
        data = bytes(draw(byte_edit(data, ["anywhere"]))) if data else data
    elif operation == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif operation == "extend":
        data += random_bytes(draw(st.integers(0, 2**32 - 1)), draw(st.integers(1, 70000)))
    else:
        data = data[:-1] if len(data) % 2 == 0 and data else data
    vr = getattr(dataset.get_item(0x7FE00010), "VR", None) or "OW"
    put_raw(dataset, "PixelData", data, vr if vr in ("OB", "OW") else "OW")


def _frames(dataset: Dataset) -> int:
    try:
        return int(dataset.get("NumberOfFrames") or 1)
    except (TypeError, ValueError):
        return 1


def edit_offset_tables(draw: Draw, dataset: Dataset) -> None:
    """(7FE0,0001) Extended Offset Table and (7FE0,0002) its lengths (PS3.3 C.7.6.3.1.8)."""
    count = draw(st.integers(0, 4))
    offsets = [draw(st.sampled_from([0, 1, 8, 2**31, 2**63, 2**64 - 1]) | st.integers(0, 2**20))]
    offsets += [draw(st.integers(0, 2**64 - 1)) for _ in range(count)]
    lengths = [draw(st.integers(0, 2**64 - 1)) for _ in range(draw(st.integers(0, 5)))]
    put_raw(dataset, 0x7FE00001, struct.pack(f"<{len(offsets)}Q", *offsets), "OV")
    put_raw(dataset, 0x7FE00002, struct.pack(f"<{len(lengths)}Q", *lengths), "OV")


def edit_functional_groups(draw: Draw, dataset: Dataset) -> None:
    """Shared or per-frame Pixel Value Transformation and Frame VOI LUT items
    (PS3.3 C.7.6.16.2.9-10) with drawn values."""
    group = Dataset()
    numbers = st.sampled_from([0.0, 1.0, -1.0, 1e-300, 1e300, 0.5, -1024.0, 4096.0, 1e15])
    if draw(st.booleans()):
        transform = Dataset()
        transform.RescaleSlope = draw(numbers)
        transform.RescaleIntercept = draw(numbers)
        group.PixelValueTransformationSequence = DicomSequence([transform])
    voi = Dataset()
    voi.WindowCenter = [draw(numbers) for _ in range(draw(st.integers(1, 3)))]
    voi.WindowWidth = [draw(numbers) for _ in range(draw(st.integers(0, 3)))]
    voi.VOILUTFunction = draw(st.sampled_from(["LINEAR", "SIGMOID", "LINEAR_EXACT", "BOGUS"]))
    group.FrameVOILUTSequence = DicomSequence([voi])
    keyword = draw(
        st.sampled_from(["SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"])
    )
    setattr(dataset, keyword, DicomSequence([group] * draw(st.integers(0, 3))))


def edit_text(draw: Draw, dataset: Dataset) -> None:
    """What the index reads: names, IDs, dates, times, geometry, character set."""
    keyword = draw(
        st.sampled_from(
            [
                "PatientName",
                "PatientID",
                "IssuerOfPatientID",
                "StudyDate",
                "StudyTime",
                "SeriesDate",
                "SeriesTime",
                "PatientBirthDate",
                "StudyDescription",
                "Modality",
                "SeriesNumber",
                "InstanceNumber",
                "AccessionNumber",
                "PixelSpacing",
                "ImagerPixelSpacing",
                "ImagePositionPatient",
                "ImageOrientationPatient",
                "SliceLocation",
                "SliceThickness",
                "FrameTime",
                "SpecificCharacterSet",
                "FrameOfReferenceUID",
                "StudyInstanceUID",
                "SeriesInstanceUID",
                "SOPInstanceUID",
            ]
        )
    )
    if keyword == "SpecificCharacterSet":
        put_text(dataset, keyword, [draw(CHARACTER_SETS)])
        return
    if draw(st.booleans()):
        put_text(dataset, keyword, draw(st.lists(NUMBER_TEXTS, min_size=0, max_size=7)))
    else:
        raw = bytes(draw(st.binary(max_size=80)))
        put_raw(dataset, keyword, raw + (b" " if len(raw) % 2 and draw(st.booleans()) else b""))


def edit_ultrasound_regions(draw: Draw, dataset: Dataset) -> None:
    region = Dataset()
    region.PhysicalUnitsXDirection = draw(st.sampled_from([0, 3, 4]))
    region.PhysicalUnitsYDirection = draw(st.sampled_from([0, 3, 4]))
    region.PhysicalDeltaX = draw(st.sampled_from([0.0, 0.01, -0.01, 1e300, 1e-300]))
    region.PhysicalDeltaY = draw(st.sampled_from([0.0, 0.01, -0.01, 1e300]))
    dataset.SequenceOfUltrasoundRegions = DicomSequence([region] * draw(st.integers(1, 2)))


EDITS: dict[str, Callable[[Draw, Dataset], None]] = {
    "pixel_module": edit_pixel_module,
    "photometric": edit_photometric,
    "number_of_frames": edit_number_of_frames,
    "rescale": edit_rescale,
    "window": edit_window,
    "presentation_lut_shape": edit_presentation,
    "modality_lut": edit_modality_lut,
    "voi_lut": edit_voi_lut,
    "palette": edit_palette,
    "delete": edit_delete,
    "pixel_data": edit_pixel_data,
    "offset_tables": edit_offset_tables,
    "functional_groups": edit_functional_groups,
    "text": edit_text,
    "ultrasound_regions": edit_ultrasound_regions,
}
PIXEL_EDITS = [name for name in EDITS if name not in ("text", "ultrasound_regions")]


def _relabel(data: bytes, syntax: str) -> bytes | None:
    """The same data set bytes under a File Meta Information that names ``syntax``."""
    stream = io.BytesIO(data)
    try:
        if read_preamble(stream, False) is None:
            return None
        meta = _read_file_meta_info(stream)
    except Exception:
        return None
    rest = data[stream.tell() :]
    meta.TransferSyntaxUID = UID(syntax)
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, False
    write_file_meta_info(out, meta, enforce_standard=False)
    return data[:132] + out.getvalue() + rest


def save(dataset: Dataset) -> bytes | None:
    """The data set written as it was read (preamble, meta, encoding), or None where
    pydicom cannot write what the edits made."""
    out = io.BytesIO()
    try:
        dataset.save_as(out)
    except Exception:
        return None
    return out.getvalue()


@st.composite
def edited_object(
    draw: Draw,
    seeds: Sequence[Path],
    edits: Sequence[str] | None = None,
    max_edits: int = 4,
    then_bytes: bool = True,
) -> bytes:
    """A seed read with pydicom, changed by one to ``max_edits`` data-set edits, saved
    again; sometimes relabelled with another transfer syntax or byte-edited after."""
    original = corpus.read(draw(st.sampled_from(seeds)))
    try:
        dataset = pydicom.dcmread(io.BytesIO(original), force=True)
    except Exception:
        return bytes(draw(byte_edit(original)))
    names = list(edits or EDITS)
    for _ in range(draw(st.integers(1, max_edits))):
        name = draw(st.sampled_from(names))
        try:
            EDITS[name](draw, dataset)
        except Exception:  # noqa: S112  # pydicom will not read this seed's value to edit it
            continue
    data = save(dataset) or original
    choice = draw(st.integers(0, 9))
    if choice == 0:
        relabelled = _relabel(data, draw(st.sampled_from(NATIVE_SYNTAXES + ENCAPSULATED_SYNTAXES)))
        data = relabelled or data
    elif choice == 1 and then_bytes:
        data = bytes(draw(byte_edit(data)))
    return data


def hostile_object(seeds: Sequence[Path], pixel_only: bool = False) -> st.SearchStrategy[bytes]:
    """Either depth: a third byte edits, two thirds data-set edits (which reach further,
    where ``pixel_only`` asks for the pixel pipeline's attributes only)."""
    edited = edited_object(seeds, edits=PIXEL_EDITS if pixel_only else None)
    return st.one_of(mutated_bytes(seeds), edited, edited)
