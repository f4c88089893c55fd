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
