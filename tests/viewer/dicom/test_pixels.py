"""viewer.dicom.pixels against pydicom and dcmtk on every decodable file of the corpus.

Reference for grayscale: pydicom's ``apply_modality_lut`` then ``apply_voi_lut`` (or
``apply_windowing`` with the window we chose where the header has none), scaled from
pydicom's output range to 0..255 with round-half-up, and inverted for MONOCHROME1 or
Presentation LUT Shape INVERSE. Loupe evaluates the same chain as a lookup table in
float64; the result is asserted *equal*, not within a tolerance: both round the same
float64 value. Against dcmtk's ``dcmj2pnm`` the tolerance is ±1 grey level, because
dcmtk computes its windows in its own floating-point order and rounding; dcmtk reads the
same decoded samples (a natively re-encoded copy for compressed inputs), since two JPEG
decoders may already differ by one.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
import simplejpeg
from PIL import Image
from pydicom.encaps import encapsulate
from pydicom.pixels import (
    apply_color_lut,
    apply_modality_lut,
    apply_voi_lut,
    apply_windowing,
    pixel_array,
)
from pydicom.uid import JPEGBaseline8Bit, RLELossless

from tests.undecodable import overrunning_rle_frame
from viewer.dicom import pixels as px
from viewer.dicom.decoder_pool import DecoderPool
from viewer.dicom.io import open_stored
from viewer.errors import UndecodableFrame, UnrenderableFrame

BIG = 1 << 31


def load(path: Path) -> pydicom.Dataset:
    return open_stored(path.read_bytes())


def pydicom_reference(
    stored: np.ndarray, view: pydicom.Dataset, voi: px.Window | int
) -> np.ndarray:
    values = apply_modality_lut(stored, view)
    if isinstance(voi, int):
        out = apply_voi_lut(values, view, voi).astype(np.float64)
        low, high = 0.0, float(2 ** int(view.VOILUTSequence[voi].LUTDescriptor[2]) - 1)
    else:
        window = pydicom.Dataset()
        for keyword in (
            "PhotometricInterpretation",
            "BitsStored",
            "PixelRepresentation",
            "RescaleSlope",
            "RescaleIntercept",
            "ModalityLUTSequence",
        ):
            if keyword in view:
                window.add(view.data_element(keyword))  # type: ignore[arg-type]
        window.WindowCenter, window.WindowWidth = voi.center, voi.width
        window.VOILUTFunction = voi.function
        out = apply_windowing(values.astype(np.float64), window, 0)
        bits = int(view.BitsStored)
        if view.get("ModalityLUTSequence"):
            low, high = 0.0, float(2 ** int(view.ModalityLUTSequence[0].LUTDescriptor[2]) - 1)
        elif int(view.PixelRepresentation) == 0:
            low, high = 0.0, float(2**bits - 1)
        else:
            low, high = float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)
        if "RescaleSlope" in view and "RescaleIntercept" in view:
            slope, intercept = float(view.RescaleSlope), float(view.RescaleIntercept)
            low, high = low * slope + intercept, high * slope + intercept
    reference = np.floor((out - low) / (high - low) * 255 + 0.5).clip(0, 255).astype(np.uint8)
    return 255 - reference if px.inverts(view) else reference


def greyscale_cases(manifest: list[dict[str, Any]]) -> list[tuple[str, int]]:
    cases: list[tuple[str, int]] = []
    for entry in manifest:
        if not entry["decodes"] or entry["samples_per_pixel"] != 1:
            continue
        if entry["photometric"] not in ("MONOCHROME1", "MONOCHROME2"):
            continue
        frames = entry["frames"] or 1
        cases.extend((entry["path"], f) for f in sorted({0, frames - 1}))
    return cases


def test_greyscale_output_equals_pydicom_on_every_decodable_file(
    manifest: list[dict[str, Any]], shared_dicom: Path, decoders: DecoderPool
) -> None:
    cases = greyscale_cases(manifest)
    assert len(cases) > 290
    kinds: set[tuple[str, bool]] = set()
    for path, frame in cases:
        dataset = load(shared_dicom / path)
        stored = px.decode_frame(dataset, frame, max_frame_bytes=BIG, decoders=decoders)
        view = px.frame_view(dataset, frame)
        ours, voi = px.greyscale_to_display(stored, view, px.GreyscaleRequest())
        expected = pydicom_reference(stored, view, voi)
        assert ours.shape == expected.shape, path
        assert np.array_equal(ours, expected), (
            f"{path} frame {frame}: max diff {np.abs(ours.astype(int) - expected).max()}"
        )
        kinds.add(("lut" if isinstance(voi, int) else voi.function, px.inverts(view)))
    # The corpus exercised windows, VOI LUTs and inversion.
    assert {("LINEAR", False), ("LINEAR", True), ("lut", False)} <= kinds


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
@pytest.mark.parametrize(
    ("center", "width"), [(40.0, 400.0), (-600.0, 1500.0), (0.0, 1.0), (1000.5, 2.5)]
)
def test_window_functions_equal_pydicom(
    shared_dicom: Path, function: str, center: float, width: float, decoders: DecoderPool
) -> None:
    if function == "LINEAR" and width < 1:
        pytest.skip("LINEAR needs width >= 1")
    dataset = load(sorted((shared_dicom / "ct-series").glob("*.dcm"))[40])
    stored = px.decode_frame(dataset, 0, max_frame_bytes=BIG, decoders=decoders)
    view = px.frame_view(dataset, 0)
    window = px.Window(center, width, function)
    ours, _ = px.greyscale_to_display(stored, view, px.GreyscaleRequest(window=window))
    assert np.array_equal(ours, pydicom_reference(stored, view, window))


def test_the_nine_encodings_of_one_mr_image_render_identically(
    shared_dicom: Path, decoders: DecoderPool
) -> None:
    files = sorted((shared_dicom / "compressed" / "siemens-mr-same-image").glob("*"))
    assert len(files) == 9
    images = []
    for path in files:
        dataset = load(path)
        stored = px.decode_frame(dataset, 0, max_frame_bytes=BIG, decoders=decoders)
        images.append(
            px.greyscale_to_display(stored, px.frame_view(dataset, 0), px.GreyscaleRequest())[0]
        )
    for path, image in zip(files[1:], images[1:], strict=True):
        assert np.array_equal(image, images[0]), path.name


def test_colour_images_match_pydicoms_rgb(
    manifest: list[dict[str, Any]], shared_dicom: Path, decoders: DecoderPool
) -> None:
    checked = 0
    for entry in manifest:
        if not entry["decodes"] or entry["photometric"] in ("MONOCHROME1", "MONOCHROME2", None):
            continue
        dataset = load(shared_dicom / entry["path"])
        view = px.frame_view(dataset, 0)
        ours = px.colour_to_display(
            px.decode_frame(dataset, 0, max_frame_bytes=BIG, decoders=decoders), view, dataset
        )
        reference = pixel_array(dataset, index=0)  # YBR -> RGB by pydicom (as_rgb)
        if entry["photometric"] == "PALETTE COLOR":
            reference = apply_color_lut(reference, dataset)
            if reference.dtype != np.uint8:
                reference = (reference >> 8).astype(np.uint8)
        elif reference.dtype != np.uint8:
            reference = (reference >> (int(dataset.BitsStored) - 8)).astype(np.uint8)
        assert ours.dtype == np.uint8 and ours.shape == (*reference.shape[:2], 3), entry["path"]
        assert np.array_equal(ours, reference), entry["path"]
        checked += 1
    assert checked >= 10  # RGB, YBR_FULL(_422), YBR_ICT, PALETTE COLOR, planar configuration 1


def test_monochrome1_is_inverted_and_presentation_inverse_is_not_applied_twice(
    shared_dicom: Path,
    decoders: DecoderPool,
) -> None:
    dataset = load(shared_dicom / "cr-monochrome1" / "966_fixed.dcm")
    view = px.frame_view(dataset, 0)
    assert (
        view.PhotometricInterpretation == "MONOCHROME1" and view.PresentationLUTShape == "INVERSE"
    )
    stored = px.decode_frame(dataset, 0, max_frame_bytes=BIG, decoders=decoders)
    low_value = int(stored.min())
    image, _ = px.greyscale_to_display(
        stored, view, px.GreyscaleRequest(window=px.Window(2048, 4096))
    )
    assert image[stored == low_value].min() >= 250  # lowest stored values show white


def test_a_frame_beyond_the_cap_is_refused_before_decoding(
    shared_dicom: Path, decoders: DecoderPool
) -> None:
    dataset = load(shared_dicom / "cr-monochrome1" / "Monochrome1-Jpeg.dcm")
    with pytest.raises(UnrenderableFrame) as caught:
        px.decode_frame(dataset, 0, max_frame_bytes=1024 * 1024, decoders=decoders)
    assert caught.value.code == "frame_too_large" and caught.value.status == 422


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("malformed/NM_WG04_JPLY_bad_SOS.dcm", "JPEG Extended"),
        ("malformed/NM_j2k_with_embedded_sequence_delimiter.dcm", "JPEG 2000"),
        ("malformed/jpeg_ts_but_raw_payload_genFile.dcm", "JPEG Baseline"),
        ("malformed/CR_WG04_RG2_JPLY_unfixed.dcm", "JPEG Extended"),
    ],
)
def test_corrupt_codestreams_raise_unrenderable_naming_the_syntax(
    shared_dicom: Path, path: str, words: str, decoders: DecoderPool
) -> None:
    dataset = load(shared_dicom / path)
    with pytest.raises(UnrenderableFrame) as caught:
        px.decode_frame(dataset, 0, max_frame_bytes=BIG, decoders=decoders)
    assert caught.value.status == 422 and caught.value.code == "undecodable"
    assert words in caught.value.message and "cannot be decoded" in caught.value.message


DCMTK_CASES = [
    ("ct-series", None, px.Window(40, 400)),
    ("ct-series", None, px.Window(-600, 1500)),
    ("mr-series", None, None),
    ("presets/CT_Siemens_2windows_explained.dcm", None, None),
    ("presets/MR_Siemens_2windows_overlay_icon.dcm", None, None),
    ("presets/RF_Siemens_ModalityLUTSequence.dcm", None, None),
    ("presets/mlut_18_ModalityLUTSequence.dcm", None, px.Window(2000, 3000)),
    ("presets/vlut_04_VOILUTSequence.dcm", 0, None),
    ("cr-monochrome1/Monochrome1-Jpeg.dcm", None, None),
    ("odd-cases/CR-MONO1-10-chest_no_preamble_no_meta", None, None),
]


@pytest.mark.skipif(shutil.which("dcmj2pnm") is None, reason="dcmtk's dcmj2pnm is not installed")
@pytest.mark.parametrize(("where", "voi_lut", "window"), DCMTK_CASES)
def test_equals_dcmtk_dcmj2pnm_within_one_grey_level(
    shared_dicom: Path,
    tmp_path: Path,
    where: str,
    voi_lut: int | None,
    window: px.Window | None,
    decoders: DecoderPool,
) -> None:
    target = shared_dicom / where
    path = sorted(target.iterdir())[len(list(target.iterdir())) // 2] if target.is_dir() else target
    dataset = load(path)
    if dataset.file_meta.TransferSyntaxUID.is_compressed:
        # Lossy JPEG decoders differ by ±1 (IJG's IDCT in dcmtk, libjpeg-turbo's here):
        # both sides read one natively re-encoded copy, so that the pipelines are compared.
        dataset.decompress()
        path = tmp_path / "native.dcm"
        dataset.save_as(path, enforce_file_format=True)
        dataset = load(path)
    stored = px.decode_frame(dataset, 0, max_frame_bytes=BIG, decoders=decoders)
    view = px.frame_view(dataset, 0)
    request = px.GreyscaleRequest(window=window, voi_lut=voi_lut)
    if window is None and voi_lut is None:
        window = px.header_window(view, 0)
        assert window is not None, "case needs a header window"
        request = px.GreyscaleRequest(window=window)
    ours, _ = px.greyscale_to_display(stored, view, request)
    if voi_lut is not None:
        voi_args = ["+Wl", str(voi_lut + 1)]
    else:
        assert window is not None
        voi_args = ["+Ww", str(window.center), str(window.width)]
    out = tmp_path / "dcmtk.png"
    subprocess.run(
        ["dcmj2pnm", "+on", "-O", *voi_args, str(path), str(out)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    theirs = np.asarray(Image.open(io.BytesIO(out.read_bytes())).convert("L"))
    assert theirs.shape == ours.shape
    difference = np.abs(theirs.astype(int) - ours.astype(int))
    assert difference.max() <= 1, (
        f"{path.name}: {int((difference > 1).sum())} pixels differ by more than 1"
    )


def encapsulated_object(syntax: str, frame: bytes, **pixel_module: Any) -> pydicom.Dataset:
    """A one-frame secondary capture with ``frame`` as its only fragment, built in code."""
    dataset = pydicom.Dataset()
    dataset.file_meta = pydicom.dataset.FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = pydicom.uid.UID(syntax)
    dataset.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    dataset.SOPInstanceUID = pydicom.uid.generate_uid()
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.SamplesPerPixel = 1
    dataset.PixelRepresentation = 0
    for keyword, found in pixel_module.items():
        setattr(dataset, keyword, found)
    dataset.PixelData = encapsulate([frame])
    dataset["PixelData"].VR = "OB"
    return dataset


@pytest.mark.parametrize("isolated", [True, False])
def test_an_rle_segment_that_runs_past_the_frame_is_undecodable_not_a_crash(
    decoders: DecoderPool, isolated: bool
) -> None:
    # 16-bit 1×1: two segments of one byte each; the second is a literal run of two bytes
    # (header byte 1 = "copy the next 2"), one more than the frame has room for.
    # pylibjpeg-rle panics on it (a Rust panic: a BaseException, not an Exception).
    dataset = encapsulated_object(
        RLELossless,
        overrunning_rle_frame(1, 1),
        Rows=1,
        Columns=1,
        BitsAllocated=16,
        BitsStored=16,
        HighBit=15,
    )
    with pytest.raises(UndecodableFrame) as caught:
        px.decode_frame(dataset, 0, max_frame_bytes=BIG, decoders=decoders if isolated else None)
    assert caught.value.status == 422 and caught.value.code == "undecodable"
    assert caught.value.lasting
    assert "frame 1 cannot be decoded (RLE Lossless)" in caught.value.message
    assert "PanicException" in caught.value.message


def test_a_decoder_answer_of_the_wrong_size_is_undecodable(decoders: DecoderPool) -> None:
    # A real 8×8 JPEG codestream under a header that says 16 rows.
    codestream = simplejpeg.encode_jpeg(
        np.full((8, 8, 1), 100, dtype=np.uint8), quality=90, colorspace="GRAY"
    )
    dataset = encapsulated_object(
        JPEGBaseline8Bit, codestream, Rows=16, Columns=8, BitsAllocated=8, BitsStored=8, HighBit=7
    )
    with pytest.raises(UndecodableFrame) as caught:
        px.decode_frame(dataset, 0, max_frame_bytes=BIG, decoders=decoders)
    assert "decoded to 8×8 values, the header says 16×8" in caught.value.message
    dataset.Rows = 8
    decoded = px.decode_frame(dataset, 0, max_frame_bytes=BIG, decoders=decoders)
    assert decoded.shape == (8, 8) and abs(int(decoded.mean()) - 100) <= 1


# --- hostile pipeline attributes ---------------------------------------------------------
# Each image is built here: a 4 × 4 MONOCHROME2 frame of stored values 0..15.


def small_image(little_endian: bool = True) -> pydicom.Dataset:
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian

    dataset = pydicom.Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = (
        ExplicitVRLittleEndian if little_endian else ExplicitVRBigEndian
    )
    dataset.set_original_encoding(False, little_endian)
    dataset.Rows = dataset.Columns = 4
    dataset.SamplesPerPixel = 1
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, 12, 11
    dataset.PixelRepresentation = 0
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.PixelData = np.arange(16, dtype="<u2" if little_endian else ">u2").tobytes()
    return dataset


def put_raw(dataset: pydicom.Dataset, tag: int, vr: str, payload: bytes) -> None:
    """An element exactly as a broken writer would leave it (pydicom would not write it)."""
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    implicit, little = dataset.original_encoding
    dataset[tag] = RawDataElement(
        Tag(tag), vr, len(payload), payload, 0, bool(implicit), bool(little)
    )


def render(dataset: pydicom.Dataset, request: px.GreyscaleRequest | None = None) -> np.ndarray:
    stored = px.decode_frame(dataset, 0, max_frame_bytes=BIG, decoders=None)
    view = px.frame_view(dataset, 0)
    if not px.is_greyscale(view):
        return px.colour_to_display(stored, view, dataset)
    return px.greyscale_to_display(stored, view, request or px.GreyscaleRequest())[0]


def lut_item(descriptor: list[int], data: bytes | list[int] | None) -> pydicom.Dataset:
    item = pydicom.Dataset()
    item.add_new(0x00283002, "US", descriptor)
    if isinstance(data, bytes):
        item.add_new(0x00283006, "OW", data)
    elif data is not None:
        item.add_new(0x00283006, "US", data)
    return item


def refused(dataset: pydicom.Dataset, code: str, request: px.GreyscaleRequest | None = None) -> str:
    with pytest.raises(UnrenderableFrame) as caught:
        render(dataset, request)
    assert caught.value.code == code, caught.value.message
    return caught.value.message


@pytest.mark.parametrize(
    ("descriptor", "data", "words"),
    [
        ([16, 0], list(range(16)), "LUT Descriptor"),  # pydicom: IndexError
        ([16, 0, 16], None, "no (0028,3006) LUT Data"),  # pydicom: KeyError
        ([32, 0, 16], list(range(16)), "holds 16 values"),  # pydicom: struct.error
        ([16, 0, 16], bytes(range(30)), "holds 30 bytes"),  # pydicom: struct.error
        ([16, 0, 0], list(range(16)), "0 bits"),  # pydicom: 'uint0' TypeError
    ],
    ids=["two-values", "no-data", "short-list", "short-ow", "zero-bits"],
)
def test_a_modality_lut_that_does_not_fit_its_descriptor_is_refused(
    descriptor: list[int], data: bytes | list[int] | None, words: str
) -> None:
    dataset = small_image()
    dataset.ModalityLUTSequence = [lut_item(descriptor, data)]
    assert words in refused(dataset, "bad_lut")


def test_a_modality_lut_of_12_bit_entries_is_applied() -> None:
    """PS3.3 C.11.1.1.1 allows 8 to 16 bits per entry; pydicom's own function knows 8 and 16."""
    dataset = small_image()
    table = [4095 - 200 * i for i in range(16)]
    dataset.ModalityLUTSequence = [lut_item([16, 0, 12], table)]
    view = px.frame_view(dataset, 0)
    assert px.modality_values(np.arange(16, dtype=np.uint16), view).tolist() == table


@pytest.mark.parametrize("little_endian", [True, False], ids=["little", "big"])
def test_ow_lut_data_is_read_in_the_byte_order_of_the_data_set_whatever_its_syntax(
    little_endian: bool,
) -> None:
    """pydicom asks the transfer syntax for the byte order of OW LUT Data, and has none for
    a syntax it does not know (AttributeError); the data set's own encoding says it."""
    dataset = small_image(little_endian)
    table = np.arange(100, 116, dtype="<u2" if little_endian else ">u2")
    dataset.ModalityLUTSequence = [lut_item([16, 0, 16], table.tobytes())]
    dataset.VOILUTSequence = [
        lut_item([256, 100, 16], (np.arange(256) * 200).astype(table.dtype).tobytes())
    ]
    dataset.file_meta.TransferSyntaxUID = pydicom.uid.UID(
        "1.2.3.4.5"
    )  # private, unknown to pydicom
    view = px.frame_view(dataset, 0)
    assert px.modality_values(np.arange(16, dtype=np.uint16), view).tolist() == list(
        range(100, 116)
    )
    image, voi = px.greyscale_to_display(
        np.arange(16, dtype=np.uint16), view, px.GreyscaleRequest()
    )
    assert voi == 0 and image.tolist() == np.floor(np.arange(16) * 200 / 65535 * 255 + 0.5).tolist()


@pytest.mark.parametrize(
    ("descriptor", "words"),
    [([256, 0, 0], "0 bits"), ([256], "LUT Descriptor"), ([256, 0, 40], "40 bits")],
    ids=["zero-bits", "one-value", "forty-bits"],  # pydicom: NotImplementedError, TypeError
)
def test_a_voi_lut_whose_descriptor_is_unusable_is_refused(
    descriptor: list[int], words: str
) -> None:
    dataset = small_image()
    dataset.VOILUTSequence = [lut_item(descriptor, list(range(256)))]
    assert words in refused(dataset, "bad_lut")


@pytest.mark.parametrize(
    "slope", [b"abc ", b"1\\2 ", b"nan ", b"inf "], ids=["text", "two-values", "nan", "inf"]
)
def test_a_rescale_slope_that_is_not_one_finite_number_is_refused(slope: bytes) -> None:
    """pydicom multiplies by whatever it holds: a str (UFuncNoLoopError), two values (a
    broadcast ValueError), NaN."""
    dataset = small_image()
    put_raw(dataset, 0x00281053, "DS", slope)  # Rescale Slope
    dataset.RescaleIntercept = "-1024"
    assert "(0028,1053) RescaleSlope" in refused(dataset, "bad_modality_lut")


def test_an_empty_rescale_intercept_is_no_rescale() -> None:
    """pydicom adds None (TypeError); an empty Type 1 value says nothing, as no rescale."""
    dataset = small_image()
    dataset.RescaleSlope = "2"
    put_raw(dataset, 0x00281052, "DS", b"")  # Rescale Intercept, zero length
    view = px.frame_view(dataset, 0)
    assert px.modality_values(np.arange(4, dtype=np.uint16), view).tolist() == [0, 1, 2, 3]


def test_a_pipeline_attribute_of_the_wrong_length_makes_the_frame_unrenderable() -> None:
    """A one-byte US (High Bit) raises pydicom's BytesLengthException, a bare Exception."""
    dataset = small_image()
    put_raw(dataset, 0x00280102, "US", b"\x0b")
    with pytest.raises(UnrenderableFrame) as caught:
        px.frame_view(dataset, 0)
    assert caught.value.code == "unreadable_attribute"
    assert "(0028,0102) HighBit" in caught.value.message


def palette_image() -> pydicom.Dataset:
    dataset = small_image()
    dataset.PhotometricInterpretation = "PALETTE COLOR"
    dataset.BitsStored, dataset.HighBit = 16, 15
    return dataset


def test_palette_color_without_its_lookup_tables_is_refused() -> None:
    """pydicom: ValueError 'No suitable Palette Color Lookup Table Module found'."""
    assert "Descriptor" in refused(palette_image(), "bad_palette")


def put_segmented_palette(dataset: pydicom.Dataset, words: list[int], entries: int) -> None:
    for number, colour in enumerate(("Red", "Green", "Blue")):
        setattr(dataset, f"{colour}PaletteColorLookupTableDescriptor", [entries, 0, 16])
        put_raw(dataset, 0x00281221 + number, "OW", np.asarray(words, dtype="<u2").tobytes())


def test_a_segmented_palette_whose_indirect_segment_points_to_itself_is_refused() -> None:
    """An indirect segment (PS3.3 C.7.9.2.3) replaying itself sends pydicom's expansion into
    unbounded recursion."""
    dataset = palette_image()
    put_segmented_palette(dataset, [0, 1, 5, 2, 1, 3, 0], entries=16)
    assert "indirect segment" in refused(dataset, "bad_palette")


def test_a_segmented_palette_that_expands_far_past_its_entries_is_refused_at_once() -> None:
    """A thousand linear segments of 65535 entries: pydicom builds a list of 65 million."""
    dataset = palette_image()
    put_segmented_palette(dataset, [0, 1, 0] + [1, 65535, 65535, 1, 65535, 0] * 500, entries=16)
    assert "expand past 16 entries" in refused(dataset, "bad_palette")


def test_a_segmented_palette_with_an_empty_linear_segment_expands() -> None:
    """A linear segment of length 0 divides by zero in pydicom; it adds no entry."""
    dataset = palette_image()
    put_segmented_palette(dataset, [0, 1, 0, 1, 0, 9, 1, 15, 65535], entries=16)
    rgb = render(dataset)
    assert rgb.shape == (4, 4, 3) and rgb[0, 0].tolist() == [0, 0, 0]
    assert rgb[3, 3].tolist() == [255, 255, 255]


def test_a_plain_palette_whose_data_does_not_fit_its_descriptor_is_refused() -> None:
    dataset = palette_image()
    for number, colour in enumerate(("Red", "Green", "Blue")):
        setattr(dataset, f"{colour}PaletteColorLookupTableDescriptor", [16, 0, 16])
        put_raw(dataset, 0x00281201 + number, "OW", b"\x00" * 30)
    assert "30 bytes for 16 entries" in refused(dataset, "bad_palette")


def test_a_64_bit_frame_of_values_above_2_63_is_displayed() -> None:
    """A narrow range of unsigned 64-bit values beyond int64 (the lookup-table domain is
    built in int64) is windowed pixel by pixel."""
    dataset = small_image()
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 64, 64, 63
    dataset.PixelData = (np.arange(16, dtype="<u8") + np.uint64(2**64 - 16)).tobytes()
    image = render(dataset)
    assert image.shape == (4, 4) and image.dtype == np.uint8  # float64 cannot tell them apart


def test_a_modality_lut_whose_first_value_does_not_fit_the_stored_type_is_applied() -> None:
    """8-bit stored values and a LUT from 1024 on: pydicom's subtraction in uint8 made
    NumPy raise OverflowError; every value
    below the first is mapped to the first entry (PS3.3 C.11.1.1.1)."""
    dataset = small_image()
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 8, 8, 7
    dataset.PixelData = np.arange(16, dtype=np.uint8).tobytes()
    dataset.ModalityLUTSequence = [lut_item([4, 1024, 16], [7, 8, 9, 10])]
    view = px.frame_view(dataset, 0)
    stored = px.decode_frame(dataset, 0, max_frame_bytes=BIG, decoders=None)
    assert px.modality_values(stored, view).tolist() == [[7] * 4] * 4
    assert render(dataset).shape == (4, 4)
