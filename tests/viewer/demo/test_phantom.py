"""Tests for the synthetic CT torso phantom (viewer/demo/phantom.py). No Django needed."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from viewer.demo import phantom
from viewer.demo.phantom import DEFAULT_SPEC, PhantomSpec

# DICOM PS3.5 section 9.1: components of digits without leading zeros, separated by dots,
# at most 64 characters in total.
UID_RE = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")

SPEC: PhantomSpec = DEFAULT_SPEC


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("phantom_a")
    return out, phantom.write_phantom(out)


@pytest.fixture(scope="module")
def headers(written: tuple[Path, list[Path]]) -> dict[str, list[Dataset]]:
    """Headers (no pixels) of each study, sorted by InstanceNumber."""
    out, paths = written
    by_study: dict[str, list[Dataset]] = {}
    for path in paths:
        key = path.relative_to(out).parts[0]
        by_study.setdefault(key, []).append(pydicom.dcmread(path, stop_before_pixels=True))
    for datasets in by_study.values():
        datasets.sort(key=lambda ds: int(ds.InstanceNumber))
    return by_study


def _slice_path(written: tuple[Path, list[Path]], key: str, z_mm: float) -> Path:
    """Path of the file in study ``key`` whose ImagePositionPatient z is ``z_mm``."""
    out, paths = written
    k, _, _ = SPEC.index_of(0.0, 0.0, z_mm)
    path = out / key / f"CT{k + 1:04d}.dcm"  # layout documented by write_phantom
    assert path in paths
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    assert float(ds.ImagePositionPatient[2]) == pytest.approx(z_mm)
    return path


def _hu_image(path: Path) -> tuple[Dataset, npt.NDArray[np.float64]]:
    """Read a file back and apply the Modality LUT (PS3.3 C.11.1)."""
    ds = pydicom.dcmread(path)
    hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    return ds, hu


def _hu_from_file(ds: Dataset, hu: npt.NDArray[np.float64], x_mm: float, y_mm: float) -> float:
    """HU at patient (x, y) using only the file's own Image Plane attributes."""
    ipp = [float(v) for v in ds.ImagePositionPatient]
    row_spacing, col_spacing = (float(v) for v in ds.PixelSpacing)
    assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
    c = round((x_mm - ipp[0]) / col_spacing)
    r = round((y_mm - ipp[1]) / row_spacing)
    return float(hu[r, c])


# ---- geometry ----------------------------------------------------------------------------


def test_spec_geometry_constants() -> None:
    assert (SPEC.rows, SPEC.columns) == (512, 512)
    assert SPEC.num_slices >= 60
    assert SPEC.pixel_spacing == (0.7, 0.7)
    assert SPEC.x0_mm == pytest.approx(-(512 * 0.7) / 2 + 0.35)
    assert SPEC.y0_mm == pytest.approx(-(512 * 0.7) / 2 + 0.35)
    # The volume is centred on x = y = 0: first and last pixel centres are symmetric.
    assert SPEC.x_of_column(0) == pytest.approx(-SPEC.x_of_column(SPEC.columns - 1))
    assert SPEC.y_of_row(0) == pytest.approx(-SPEC.y_of_row(SPEC.rows - 1))
    assert SPEC.current.lesion_diameter_mm == 20.0
    assert SPEC.prior.lesion_diameter_mm == 14.0
    assert SPEC.lesion_center_mm[0] < 0  # patient right (LPS: +x is patient left)


def test_written_files_count_and_shape(
    written: tuple[Path, list[Path]], headers: dict[str, list[Dataset]]
) -> None:
    _, paths = written
    assert sorted(headers) == ["current", "prior"]
    assert len(paths) == 2 * SPEC.num_slices
    for datasets in headers.values():
        assert len(datasets) >= 60
        assert [int(ds.InstanceNumber) for ds in datasets] == list(range(1, len(datasets) + 1))
        for ds in datasets:
            assert (int(ds.Rows), int(ds.Columns)) == (512, 512)
            assert [float(v) for v in ds.PixelSpacing] == [0.7, 0.7]
            assert float(ds.SliceThickness) == 2.5
            assert int(ds.BitsAllocated) == 16
            assert int(ds.BitsStored) == 12
            assert int(ds.HighBit) == 11
            assert int(ds.PixelRepresentation) == 0
            assert ds.PhotometricInterpretation == "MONOCHROME2"
            assert float(ds.RescaleSlope) == 1.0
            assert float(ds.RescaleIntercept) == -1024.0


def test_image_position_z_increases_by_slice_spacing(headers: dict[str, list[Dataset]]) -> None:
    for datasets in headers.values():
        positions = np.array([[float(v) for v in ds.ImagePositionPatient] for ds in datasets])
        assert np.allclose(positions[:, 0], SPEC.x0_mm)
        assert np.allclose(positions[:, 1], SPEC.y0_mm)
        assert positions[0, 2] == pytest.approx(SPEC.z0_mm)
        assert np.allclose(np.diff(positions[:, 2]), SPEC.slice_spacing_mm)
        locations = np.array([float(ds.SliceLocation) for ds in datasets])
        assert np.allclose(locations, positions[:, 2])


def test_part10_file_meta(written: tuple[Path, list[Path]]) -> None:
    _, paths = written
    raw = paths[0].read_bytes()
    assert raw[:128] == b"\0" * 128
    assert raw[128:132] == b"DICM"
    ds = pydicom.dcmread(paths[0], stop_before_pixels=True)
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ds.file_meta.MediaStorageSOPClassUID == CTImageStorage
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.SOPClassUID == CTImageStorage
    assert ds.file_meta.ImplementationClassUID


# ---- pixel values --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "x_mm", "y_mm", "expected"),
    [
        ("lesion centre", SPEC.lesion_center_mm[0], SPEC.lesion_center_mm[1], phantom.HU_LESION),
        ("right lung, away from lesion", -70.0, -60.0, phantom.HU_LUNG),
        ("left lung centre", 70.0, -10.0, phantom.HU_LUNG),
        ("vertebral body", 0.0, 60.0, phantom.HU_BONE),
        ("spinal canal", 0.0, 84.0, phantom.HU_SPINAL_CANAL),
        ("mediastinal soft tissue", 0.0, -60.0, phantom.HU_SOFT_TISSUE),
        ("subcutaneous fat", 0.0, -105.0, phantom.HU_FAT),
        ("air lateral to body", 170.0, 0.0, phantom.HU_AIR),
        ("air in image corner", SPEC.x0_mm, SPEC.y0_mm, phantom.HU_AIR),
    ],
)
def test_hu_read_back_matches_spec(
    written: tuple[Path, list[Path]], label: str, x_mm: float, y_mm: float, expected: int
) -> None:
    z = SPEC.lesion_center_mm[2]
    ds, hu = _hu_image(_slice_path(written, "current", z))
    assert _hu_from_file(ds, hu, x_mm, y_mm) == expected, label
    assert phantom.hu_at(SPEC, SPEC.current.lesion_diameter_mm, x_mm, y_mm, z) == expected
    assert ds.pixel_array.dtype == np.uint16
    assert int(ds.pixel_array.max()) <= 4095  # BitsStored 12


def test_hu_constants() -> None:
    assert (phantom.HU_AIR, phantom.HU_SOFT_TISSUE, phantom.HU_FAT) == (-1000, 40, -100)
    assert (phantom.HU_LUNG, phantom.HU_BONE, phantom.HU_LESION) == (-850, 700, 40)


def _lesion_run_mm(ds: Dataset, hu: npt.NDArray[np.float64]) -> float:
    """Length (mm) of the run of lesion-HU pixels through the lesion centre along a row."""
    cx, cy, _ = SPEC.lesion_center_mm
    ipp = [float(v) for v in ds.ImagePositionPatient]
    row_spacing, col_spacing = (float(v) for v in ds.PixelSpacing)
    r = round((cy - ipp[1]) / row_spacing)
    c = round((cx - ipp[0]) / col_spacing)
    row = hu[r]
    assert row[c] == phantom.HU_LESION
    left = c
    while row[left - 1] == phantom.HU_LESION:
        left -= 1
    right = c
    while row[right + 1] == phantom.HU_LESION:
        right += 1
    # The run is bounded by lung on both sides, not by other 40 HU tissue.
    assert row[left - 1] == phantom.HU_LUNG
    assert row[right + 1] == phantom.HU_LUNG
    return (right - left + 1) * col_spacing


@pytest.mark.parametrize(("key", "diameter"), [("current", 20.0), ("prior", 14.0)])
def test_lesion_diameter_on_centre_slice(
    written: tuple[Path, list[Path]], key: str, diameter: float
) -> None:
    ds, hu = _hu_image(_slice_path(written, key, SPEC.lesion_center_mm[2]))
    measured = _lesion_run_mm(ds, hu)
    assert abs(measured - diameter) <= SPEC.column_spacing_mm + 1e-9


def test_prior_and_current_differ_only_in_lesion() -> None:
    current = phantom.build_volume(SPEC, SPEC.current.lesion_diameter_mm)
    prior = phantom.build_volume(SPEC, SPEC.prior.lesion_diameter_mm)
    assert current.shape == (SPEC.num_slices, SPEC.rows, SPEC.columns)
    assert current.dtype == np.int16
    diff = current != prior
    shell = phantom.lesion_mask(SPEC, 20.0) & ~phantom.lesion_mask(SPEC, 14.0)
    assert np.array_equal(diff, shell)
    assert np.all(current[diff] == phantom.HU_LESION)
    assert np.all(prior[diff] == phantom.HU_LUNG)


def test_lesion_voxel_count_close_to_sphere_volume() -> None:
    voxel_mm3 = SPEC.row_spacing_mm * SPEC.column_spacing_mm * SPEC.slice_spacing_mm
    for diameter in (20.0, 14.0):
        count = phantom.lesion_voxel_count(SPEC, diameter)
        sphere_mm3 = 4.0 / 3.0 * np.pi * (diameter / 2.0) ** 3
        assert count * voxel_mm3 == pytest.approx(sphere_mm3, rel=0.05)
    no_lesion = phantom.build_volume(SPEC, 0.0)
    for diameter in (20.0, 14.0):
        volume = phantom.build_volume(SPEC, diameter)
        changed = volume != no_lesion
        assert int(changed.sum()) == phantom.lesion_voxel_count(SPEC, diameter)
        assert np.all(volume[changed] == phantom.HU_LESION)
        assert np.all(no_lesion[changed] == phantom.HU_LUNG)  # the nodule lies wholly in lung


def test_hu_at_agrees_with_volume_at_voxel_centres() -> None:
    diameter = SPEC.current.lesion_diameter_mm
    volume = phantom.build_volume(SPEC, diameter)
    rng = np.random.default_rng(1234)
    k_lesion, r_lesion, c_lesion = SPEC.index_of(*SPEC.lesion_center_mm)
    samples = [
        (int(rng.integers(SPEC.num_slices)), int(rng.integers(SPEC.rows)), int(rng.integers(512)))
        for _ in range(300)
    ]
    # Plus a dense patch around the lesion boundary where mistakes would show.
    samples += [
        (k, r, c)
        for k in range(k_lesion - 5, k_lesion + 6)
        for r in range(r_lesion - 16, r_lesion + 17, 4)
        for c in range(c_lesion - 16, c_lesion + 17, 2)
    ]
    for k, r, c in samples:
        x, y, z = SPEC.x_of_column(c), SPEC.y_of_row(r), SPEC.z_of_slice(k)
        assert phantom.hu_at(SPEC, diameter, x, y, z) == volume[k, r, c], (k, r, c)


# ---- studies, dates, UIDs ------------------------------------------------------------------


def test_prior_is_exactly_one_year_earlier(headers: dict[str, list[Dataset]]) -> None:
    current = dt.datetime.strptime(headers["current"][0].StudyDate, "%Y%m%d").date()
    prior = dt.datetime.strptime(headers["prior"][0].StudyDate, "%Y%m%d").date()
    assert prior == current.replace(year=current.year - 1)
    assert (current.isoformat(), prior.isoformat()) == ("2026-03-15", "2025-03-15")


def test_same_patient_different_studies(headers: dict[str, list[Dataset]]) -> None:
    cur, pri = headers["current"], headers["prior"]
    assert {ds.PatientID for ds in cur + pri} == {"LOUPE-DEMO-001"}
    assert {ds.IssuerOfPatientID for ds in cur + pri} == {"LOUPE"}
    assert {str(ds.PatientName) for ds in cur + pri} == {"PHANTOM^TORSO"}
    for attr in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        cur_values = {getattr(ds, attr) for ds in cur}
        pri_values = {getattr(ds, attr) for ds in pri}
        assert len(cur_values) == 1, attr
        assert len(pri_values) == 1, attr
        assert cur_values != pri_values, attr
    assert cur[0].AccessionNumber != pri[0].AccessionNumber
    assert cur[0].StudyDescription == "CT CHEST WITH CONTRAST"
    assert pri[0].StudyDescription == "CT CHEST"
    sop_uids = [ds.SOPInstanceUID for ds in cur + pri]
    assert len(set(sop_uids)) == len(sop_uids)


def test_realistic_headers(headers: dict[str, list[Dataset]]) -> None:
    ds = headers["current"][0]
    assert ds.Modality == "CT"
    assert ds.BodyPartExamined == "CHEST"
    assert ds.PatientPosition == "HFS"
    assert ds.SpecificCharacterSet == "ISO_IR 100"
    assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "AXIAL"]
    assert ds.Manufacturer == "Loupe phantom"
    assert [float(v) for v in ds.WindowCenter] == [40, -600, 400]
    assert [float(v) for v in ds.WindowWidth] == [400, 1500, 1800]
    assert list(ds.WindowCenterWidthExplanation) == ["SOFT_TISSUE", "LUNG", "BONE"]
    assert ds.PatientSex in ("M", "F", "O")
    assert len(ds.PatientBirthDate) == 8
    assert ds.StudyID == "CT26001"
    assert ds.SeriesDescription
    assert int(ds.SeriesNumber) > 0
    assert ds.ReferringPhysicianName
    assert ds.AccessionNumber
    assert float(ds.KVP) > 0


def test_uids_are_valid_ps3_5(headers: dict[str, list[Dataset]]) -> None:
    uids: set[str] = set()
    for ds in headers["current"] + headers["prior"]:
        for attr in (
            "SOPInstanceUID",
            "SOPClassUID",
            "StudyInstanceUID",
            "SeriesInstanceUID",
            "FrameOfReferenceUID",
        ):
            uids.add(str(getattr(ds, attr)))
        meta = ds.file_meta
        for attr in (
            "MediaStorageSOPClassUID",
            "MediaStorageSOPInstanceUID",
            "TransferSyntaxUID",
            "ImplementationClassUID",
        ):
            uids.add(str(getattr(meta, attr)))
    assert len(uids) > 2 * SPEC.num_slices
    for uid in uids:
        assert len(uid) <= 64, uid
        assert UID_RE.match(uid), uid


def test_uids_depend_on_spec() -> None:
    other = PhantomSpec(num_slices=4)
    a = next(phantom.study_datasets(SPEC, SPEC.current, volume=None))
    b = next(phantom.study_datasets(other, other.current, volume=None))
    assert a.StudyInstanceUID != b.StudyInstanceUID
    assert a.SOPInstanceUID != b.SOPInstanceUID


# ---- determinism and ground truth ----------------------------------------------------------


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_regeneration_is_byte_identical(written: tuple[Path, list[Path]], tmp_path: Path) -> None:
    first_dir, _ = written
    second_paths = phantom.write_phantom(tmp_path)
    assert len(second_paths) == 2 * SPEC.num_slices
    first, second = _digests(first_dir), _digests(tmp_path)
    assert phantom.GROUND_TRUTH_FILENAME in first
    assert len(first) == 2 * SPEC.num_slices + 1
    assert first == second


def test_ground_truth_json(written: tuple[Path, list[Path]]) -> None:
    out, paths = written
    truth = json.loads((out / phantom.GROUND_TRUTH_FILENAME).read_text(encoding="utf-8"))
    assert truth["spec"]["rows"] == 512
    assert truth["spec"]["lesion_center_mm"] == list(SPEC.lesion_center_mm)
    studies = {s["key"]: s for s in truth["studies"]}
    assert studies["current"]["lesion_diameter_mm"] == 20.0
    assert studies["prior"]["lesion_diameter_mm"] == 14.0
    assert studies["current"]["lesion_voxel_count"] == phantom.lesion_voxel_count(SPEC, 20.0)
    first = pydicom.dcmread(paths[0], stop_before_pixels=True)
    assert studies["current"]["study_instance_uid"] == first.StudyInstanceUID
    assert studies["current"]["sop_instance_uids"][0] == first.SOPInstanceUID


def test_phantom_studies_yields_current_then_prior() -> None:
    spec = PhantomSpec(num_slices=3)
    datasets = list(phantom.phantom_studies(spec))
    assert len(datasets) == 6
    assert [ds.StudyDate for ds in datasets] == ["20260315"] * 3 + ["20250315"] * 3
    assert [int(ds.InstanceNumber) for ds in datasets] == [1, 2, 3, 1, 2, 3]
