"""Synthetic CT torso phantom written as real DICOM CT Image Storage datasets.

The phantom serves two purposes: demo data for the viewer, and *ground truth* for tests.
Every number that matters (geometry, HU values, lesion centre and diameters, dates) is
written down in :class:`PhantomSpec` / :class:`StudySpec` and in module-level constants,
so a test can predict the value of any voxel without looking at the generated pixels
(see :func:`hu_at`). There is no noise: the voxel values are exactly the HU values
listed below.

Conventions (all of them are also what the DICOM headers say):

* Patient coordinate system is DICOM LPS, in millimetres: +x toward the patient's
  left, +y toward the patient's posterior, +z toward the patient's head.
  Patient position is HFS (head first supine).
* Arrays are indexed ``[slice, row, column]`` (``volume[k, r, c]``). Row index ``r``
  grows downward on screen, column index ``c`` grows to the right.
* ImageOrientationPatient is ``1\\0\\0\\0\\1\\0`` (DICOM PS3.3 C.7.6.2, Image Plane
  Module): moving along a row (increasing column ``c``) goes toward +x (patient left,
  i.e. the image's right side shows the patient's left); moving down a column
  (increasing row ``r``) goes toward +y (posterior, so anterior is at the top).
* Pixel ``(r, c) = (0, 0)`` is the top-left pixel of the image, the first pixel
  transmitted. Per PS3.3 C.7.6.2.1.1, ImagePositionPatient is the *centre* of that
  pixel, not its outer corner.
* PixelSpacing is ``row spacing \\ column spacing`` (PS3.3 C.7.6.2.1.1 / 10.7.1.3):
  the first value is the distance between centres of adjacent *rows* (along y), the
  second the distance between centres of adjacent *columns* (along x).
* Hence the centre of voxel ``(k, r, c)`` is at::

      x = x0 + c * column_spacing
      y = y0 + r * row_spacing
      z = z0 + k * slice_spacing

  with ``x0 = -(columns * column_spacing) / 2 + column_spacing / 2`` (same for y), which
  centres the image on x = y = 0. Slice ``k`` has InstanceNumber ``k + 1`` and
  ImagePositionPatient ``(x0, y0, z0 + k * slice_spacing)``; z increases with k.
* Modality LUT (PS3.3 C.11.1): ``HU = stored * RescaleSlope + RescaleIntercept`` with
  slope 1 and intercept -1024. Stored values are unsigned 16-bit (BitsStored 12,
  HighBit 11, PixelRepresentation 0) clipped to 0..4095, i.e. HU -1024..3071.

Anatomy (painted in this order, later structures overwrite earlier ones). All structures
except the lesion are prisms: their cross-section is the same on every slice.

1. Air, -1000 HU, everywhere.
2. Body: ellipse centred at (0, 0), semi-axes 160 mm (x) by 110 mm (y), soft tissue
   40 HU.
3. Subcutaneous fat, -100 HU: the part of the body ellipse outside the concentric
   ellipse whose semi-axes are 10 mm shorter (150 mm by 100 mm); a ring exactly 10 mm
   thick on the x and y axes.
4. Lungs, -850 HU: ellipses centred at (-70, -10) (patient right) and (70, -10)
   (patient left), semi-axes 55 mm (x) by 70 mm (y).
5. Vertebral body, 700 HU: disc of radius 15 mm centred at (0, 60) (posterior midline).
6. Neural arch, 700 HU: disc of radius 11 mm centred at (0, 84).
7. Spinal canal, 10 HU: disc of radius 7 mm centred at (0, 84), inside the neural arch.
8. Lesion (solid nodule), 40 HU: a sphere centred at (-70, -14, 20) mm in the right
   lung; diameter 20 mm in the current study, 14 mm in the prior study.

"Inside" always means ``<=`` (a voxel whose centre lies exactly on a boundary belongs to
the structure). The lesion centre lies on a pixel *edge* in x and y and on a slice centre
in z, so no voxel centre falls exactly on the lesion surface for the two diameters used.

Two studies of the same patient are generated: the current one (2026-03-15, lesion 20 mm)
and a prior one exactly one year earlier (2025-03-15, lesion 14 mm); everything else is
identical.

UIDs are UUID-derived UIDs (PS3.5 section B.2, root ``2.25``) built from name-based
(version 5, SHA-1) UUIDs of a fixed namespace and a name that includes a fingerprint of
the spec, so regenerating gives the same UIDs and byte-identical files, while a
different spec gives different UIDs.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import json
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian

__all__ = [
    "BITS_ALLOCATED",
    "BITS_STORED",
    "COLUMNS",
    "COLUMN_SPACING_MM",
    "CURRENT_LESION_DIAMETER_MM",
    "DEFAULT_SPEC",
    "GROUND_TRUTH_FILENAME",
    "HIGH_BIT",
    "HU_AIR",
    "HU_BONE",
    "HU_FAT",
    "HU_LESION",
    "HU_LUNG",
    "HU_SOFT_TISSUE",
    "HU_SPINAL_CANAL",
    "LESION_CENTER_MM",
    "NUM_SLICES",
    "PATIENT_ID",
    "PATIENT_NAME",
    "PRIOR_LESION_DIAMETER_MM",
    "RESCALE_INTERCEPT",
    "RESCALE_SLOPE",
    "ROWS",
    "ROW_SPACING_MM",
    "SLICE_SPACING_MM",
    "SLICE_THICKNESS_MM",
    "Z0_MM",
    "PhantomSpec",
    "StudySpec",
    "build_volume",
    "ground_truth",
    "hu_at",
    "lesion_mask",
    "lesion_voxel_count",
    "phantom_studies",
    "study_datasets",
    "write_phantom",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
HUArray = npt.NDArray[np.int16]

# --------------------------------------------------------------------------------------
# Ground-truth constants
# --------------------------------------------------------------------------------------

ROWS = 512
COLUMNS = 512
ROW_SPACING_MM = 0.7  # PixelSpacing[0]: between adjacent rows (along y)
COLUMN_SPACING_MM = 0.7  # PixelSpacing[1]: between adjacent columns (along x)
NUM_SLICES = 64
SLICE_THICKNESS_MM = 2.5
SLICE_SPACING_MM = 2.5
Z0_MM = -80.0  # z of slice 0 (InstanceNumber 1); slices span -80.0 .. +77.5 mm

RESCALE_SLOPE = 1
RESCALE_INTERCEPT = -1024
BITS_ALLOCATED = 16
BITS_STORED = 12
HIGH_BIT = 11
STORED_MIN = 0
STORED_MAX = (1 << BITS_STORED) - 1  # 4095

HU_AIR = -1000
HU_SOFT_TISSUE = 40
HU_FAT = -100
HU_LUNG = -850
HU_BONE = 700
HU_SPINAL_CANAL = 10
HU_LESION = 40

LESION_CENTER_MM = (-70.0, -14.0, 20.0)  # (x, y, z) LPS, right lung, on slice k = 40
CURRENT_LESION_DIAMETER_MM = 20.0
PRIOR_LESION_DIAMETER_MM = 14.0

PATIENT_NAME = "PHANTOM^TORSO"
PATIENT_ID = "LOUPE-DEMO-001"
ISSUER_OF_PATIENT_ID = "LOUPE"
GROUND_TRUTH_FILENAME = "ground_truth.json"

#: Fixed namespace of all phantom UIDs (a version-5 UUID, itself deterministic).
UID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:loupe:demo:ct-torso-phantom")
IMPLEMENTATION_VERSION_NAME = "LOUPE_PHANTOM_1"

WINDOW_CENTERS = (40, -600, 400)
WINDOW_WIDTHS = (400, 1500, 1800)
WINDOW_EXPLANATIONS = ("SOFT_TISSUE", "LUNG", "BONE")


# --------------------------------------------------------------------------------------
# Spec
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudySpec:
    """Study-level facts of one of the two phantom studies."""

    key: str  # "current" or "prior"; also the sub-directory written by write_phantom
    study_date: str  # DICOM DA, YYYYMMDD
    study_time: str  # DICOM TM, HHMMSS
    accession_number: str
    study_id: str
    study_description: str
    series_description: str
    series_number: int
    lesion_diameter_mm: float
    contrast_agent: str  # empty when no contrast was given

    @property
    def date(self) -> dt.date:
        """StudyDate as a :class:`datetime.date`."""
        return dt.datetime.strptime(self.study_date, "%Y%m%d").date()


CURRENT_STUDY = StudySpec(
    key="current",
    study_date="20260315",
    study_time="101500",
    accession_number="LPH26031501",
    study_id="CT26001",
    study_description="CT CHEST WITH CONTRAST",
    series_description="AXIAL 2.5MM",
    series_number=2,
    lesion_diameter_mm=CURRENT_LESION_DIAMETER_MM,
    contrast_agent="IODINATED CONTRAST",
)

PRIOR_STUDY = StudySpec(
    key="prior",
    study_date="20250315",
    study_time="093000",
    accession_number="LPH25031501",
    study_id="CT25001",
    study_description="CT CHEST",
    series_description="AXIAL 2.5MM",
    series_number=2,
    lesion_diameter_mm=PRIOR_LESION_DIAMETER_MM,
    contrast_agent="",
)


@dataclass(frozen=True)
class PhantomSpec:
    """Everything that defines the phantom; the single source of ground truth.

    Lengths are millimetres in the DICOM patient coordinate system (LPS); 2-D centres are
    ``(x, y)`` and the lesion centre is ``(x, y, z)``. Semi-axes are ``(along x, along
    y)``. See the module docstring for the voxel-to-patient mapping.
    """

    # Geometry (PS3.3 C.7.6.2 Image Plane)
    rows: int = ROWS
    columns: int = COLUMNS
    row_spacing_mm: float = ROW_SPACING_MM
    column_spacing_mm: float = COLUMN_SPACING_MM
    num_slices: int = NUM_SLICES
    slice_thickness_mm: float = SLICE_THICKNESS_MM
    slice_spacing_mm: float = SLICE_SPACING_MM
    z0_mm: float = Z0_MM

    # Pixel encoding (PS3.3 C.7.6.3 Image Pixel, C.11.1 Modality LUT)
    rescale_slope: int = RESCALE_SLOPE
    rescale_intercept: int = RESCALE_INTERCEPT
    bits_allocated: int = BITS_ALLOCATED
    bits_stored: int = BITS_STORED
    high_bit: int = HIGH_BIT

    # Anatomy
    hu_air: int = HU_AIR
    body_center_mm: tuple[float, float] = (0.0, 0.0)
    body_semi_axes_mm: tuple[float, float] = (160.0, 110.0)
    hu_soft_tissue: int = HU_SOFT_TISSUE
    fat_thickness_mm: float = 10.0
    hu_fat: int = HU_FAT
    lung_centers_mm: tuple[tuple[float, float], ...] = ((-70.0, -10.0), (70.0, -10.0))
    lung_semi_axes_mm: tuple[float, float] = (55.0, 70.0)
    hu_lung: int = HU_LUNG
    vertebral_body_center_mm: tuple[float, float] = (0.0, 60.0)
    vertebral_body_radius_mm: float = 15.0
    neural_arch_center_mm: tuple[float, float] = (0.0, 84.0)
    neural_arch_radius_mm: float = 11.0
    hu_bone: int = HU_BONE
    spinal_canal_center_mm: tuple[float, float] = (0.0, 84.0)
    spinal_canal_radius_mm: float = 7.0
    hu_spinal_canal: int = HU_SPINAL_CANAL
    lesion_center_mm: tuple[float, float, float] = LESION_CENTER_MM
    hu_lesion: int = HU_LESION

    # Patient and studies (current first, then prior)
    patient_name: str = PATIENT_NAME
    patient_id: str = PATIENT_ID
    issuer_of_patient_id: str = ISSUER_OF_PATIENT_ID
    patient_birth_date: str = "19600704"
    patient_sex: str = "F"
    referring_physician_name: str = "REFERRER^DEMO"
    kvp: int = 120
    studies: tuple[StudySpec, ...] = field(default=(CURRENT_STUDY, PRIOR_STUDY))

    # ---- derived geometry ------------------------------------------------------------

    @property
    def x0_mm(self) -> float:
        """x of the centre of column 0 (ImagePositionPatient[0])."""
        return _centre_of_first(self.columns, self.column_spacing_mm)

    @property
    def y0_mm(self) -> float:
        """y of the centre of row 0 (ImagePositionPatient[1])."""
        return _centre_of_first(self.rows, self.row_spacing_mm)

    @property
    def pixel_spacing(self) -> tuple[float, float]:
        """DICOM PixelSpacing order: (row spacing, column spacing)."""
        return (self.row_spacing_mm, self.column_spacing_mm)

    @property
    def current(self) -> StudySpec:
        return self.studies[0]

    @property
    def prior(self) -> StudySpec:
        return self.studies[1]

    def x_of_column(self, c: int) -> float:
        """Patient x (mm) of the centre of column ``c``."""
        return self.x0_mm + c * self.column_spacing_mm

    def y_of_row(self, r: int) -> float:
        """Patient y (mm) of the centre of row ``r``."""
        return self.y0_mm + r * self.row_spacing_mm

    def z_of_slice(self, k: int) -> float:
        """Patient z (mm) of slice ``k`` (0-based; InstanceNumber is ``k + 1``)."""
        return self.z0_mm + k * self.slice_spacing_mm

    def image_position(self, k: int) -> tuple[float, float, float]:
        """ImagePositionPatient of slice ``k``: centre of its pixel (0, 0)."""
        return (self.x0_mm, self.y0_mm, self.z_of_slice(k))

    def column_xs(self) -> FloatArray:
        """x (mm) of every column centre, shape ``(columns,)``."""
        return self.x0_mm + np.arange(self.columns, dtype=np.float64) * self.column_spacing_mm

    def row_ys(self) -> FloatArray:
        """y (mm) of every row centre, shape ``(rows,)``."""
        return self.y0_mm + np.arange(self.rows, dtype=np.float64) * self.row_spacing_mm

    def index_of(self, x_mm: float, y_mm: float, z_mm: float) -> tuple[int, int, int]:
        """Nearest voxel ``(k, r, c)`` to a patient point (not clamped to the volume)."""
        c = int(np.floor((x_mm - self.x0_mm) / self.column_spacing_mm + 0.5))
        r = int(np.floor((y_mm - self.y0_mm) / self.row_spacing_mm + 0.5))
        k = int(np.floor((z_mm - self.z0_mm) / self.slice_spacing_mm + 0.5))
        return (k, r, c)

    def fingerprint(self) -> str:
        """Stable SHA-256 of the spec; part of every UID so distinct specs never share UIDs."""
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


DEFAULT_SPEC = PhantomSpec()


def _centre_of_first(count: int, spacing: float) -> float:
    # Rounded so the float used in computations equals the DS string in the header.
    return round(-(count * spacing) / 2.0 + spacing / 2.0, 6) + 0.0


# --------------------------------------------------------------------------------------
# Anatomy (shared by build_volume and hu_at so both give bit-identical answers)
# --------------------------------------------------------------------------------------


def _inside_ellipse(
    x: FloatArray,
    y: FloatArray,
    center: tuple[float, float],
    semi_axes: tuple[float, float],
) -> BoolArray:
    u = (x - center[0]) / semi_axes[0]
    v = (y - center[1]) / semi_axes[1]
    return np.asarray(u * u + v * v <= 1.0)


def _inside_disc(
    x: FloatArray, y: FloatArray, center: tuple[float, float], radius: float
) -> BoolArray:
    return _inside_ellipse(x, y, center, (radius, radius))


def _background_hu(spec: PhantomSpec, x: FloatArray, y: FloatArray) -> HUArray:
    """HU of the z-invariant anatomy at broadcastable x (..., 1, cols) and y (rows, 1)."""
    x, y = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(y, np.float64))
    hu = np.full(x.shape, spec.hu_air, dtype=np.int16)
    body = _inside_ellipse(x, y, spec.body_center_mm, spec.body_semi_axes_mm)
    hu[body] = spec.hu_soft_tissue
    inner_axes = (
        spec.body_semi_axes_mm[0] - spec.fat_thickness_mm,
        spec.body_semi_axes_mm[1] - spec.fat_thickness_mm,
    )
    hu[body & ~_inside_ellipse(x, y, spec.body_center_mm, inner_axes)] = spec.hu_fat
    for centre in spec.lung_centers_mm:
        hu[_inside_ellipse(x, y, centre, spec.lung_semi_axes_mm)] = spec.hu_lung
    hu[_inside_disc(x, y, spec.vertebral_body_center_mm, spec.vertebral_body_radius_mm)] = (
        spec.hu_bone
    )
    hu[_inside_disc(x, y, spec.neural_arch_center_mm, spec.neural_arch_radius_mm)] = spec.hu_bone
    hu[_inside_disc(x, y, spec.spinal_canal_center_mm, spec.spinal_canal_radius_mm)] = (
        spec.hu_spinal_canal
    )
    return hu


def _lesion_slice_mask(
    spec: PhantomSpec, lesion_diameter_mm: float, x: FloatArray, y: FloatArray, z: float
) -> BoolArray | None:
    """Lesion cross-section at plane ``z``; ``None`` when the plane misses the sphere."""
    r = lesion_diameter_mm / 2.0
    r2 = r * r
    cx, cy, cz = spec.lesion_center_mm
    dz = z - cz
    dz2 = dz * dz
    if lesion_diameter_mm <= 0 or dz2 > r2:
        return None
    dx = np.asarray(x, np.float64) - cx
    dy = np.asarray(y, np.float64) - cy
    return np.asarray((dx * dx + dy * dy) + dz2 <= r2)


def build_volume(spec: PhantomSpec, lesion_diameter_mm: float) -> HUArray:
    """Noiseless HU volume, int16, shape ``(num_slices, rows, columns)`` = ``[k, r, c]``.

    Voxel ``[k, r, c]`` holds the HU at the voxel centre
    ``(x_of_column(c), y_of_row(r), z_of_slice(k))`` (point sampling, no partial volume),
    exactly what :func:`hu_at` returns for that point.
    """
    xs = spec.column_xs()[np.newaxis, :]
    ys = spec.row_ys()[:, np.newaxis]
    background = _background_hu(spec, xs, ys)  # z-invariant: computed once
    volume = np.empty((spec.num_slices, spec.rows, spec.columns), dtype=np.int16)
    volume[:] = background
    for k in range(spec.num_slices):
        mask = _lesion_slice_mask(spec, lesion_diameter_mm, xs, ys, spec.z_of_slice(k))
        if mask is not None:
            volume[k][mask] = spec.hu_lesion
    return volume


def lesion_mask(spec: PhantomSpec, lesion_diameter_mm: float) -> BoolArray:
    """Boolean ``[k, r, c]`` mask of voxels whose centre is inside the lesion sphere."""
    xs = spec.column_xs()[np.newaxis, :]
    ys = spec.row_ys()[:, np.newaxis]
    mask = np.zeros((spec.num_slices, spec.rows, spec.columns), dtype=np.bool_)
    for k in range(spec.num_slices):
        m = _lesion_slice_mask(spec, lesion_diameter_mm, xs, ys, spec.z_of_slice(k))
        if m is not None:
            mask[k] = m
    return mask


def lesion_voxel_count(spec: PhantomSpec, lesion_diameter_mm: float) -> int:
    """Number of voxels whose centre lies inside the lesion sphere."""
    return int(lesion_mask(spec, lesion_diameter_mm).sum())


def hu_at(
    spec: PhantomSpec, lesion_diameter_mm: float, x_mm: float, y_mm: float, z_mm: float
) -> int:
    """Noiseless ground-truth HU at patient point ``(x, y, z)`` mm (LPS), analytically.

    Valid for any point (the anatomy is z-invariant except for the lesion). At voxel
    centres it equals the corresponding voxel of :func:`build_volume` bit for bit, since
    both evaluate the same expressions in float64.
    """
    x = np.full((1, 1), x_mm, dtype=np.float64)
    y = np.full((1, 1), y_mm, dtype=np.float64)
    hu = _background_hu(spec, x, y)
    mask = _lesion_slice_mask(spec, lesion_diameter_mm, x, y, float(z_mm))
    if mask is not None:
        hu[mask] = spec.hu_lesion
    return int(hu[0, 0])


def hu_to_stored(spec: PhantomSpec, hu: npt.ArrayLike) -> npt.NDArray[np.uint16]:
    """Invert the Modality LUT (PS3.3 C.11.1) and clip to the BitsStored range."""
    stored = np.rint((np.asarray(hu, np.float64) - spec.rescale_intercept) / spec.rescale_slope)
    return np.clip(stored, 0, (1 << spec.bits_stored) - 1).astype(np.uint16)


# --------------------------------------------------------------------------------------
# UIDs
# --------------------------------------------------------------------------------------


def _uid(*parts: str) -> UID:
    """Deterministic UUID-derived UID ``2.25.<uuid as decimal>`` (PS3.5 B.2), <= 44 chars.

    The name is the JSON encoding of ``parts`` so that part boundaries are unambiguous.
    A version-5 UUID always has non-zero high bits, so the integer has no leading zero.
    """
    name = json.dumps(list(parts), separators=(",", ":"))
    return UID(f"2.25.{uuid.uuid5(UID_NAMESPACE, name).int}")


IMPLEMENTATION_CLASS_UID = _uid("implementation-class", IMPLEMENTATION_VERSION_NAME)


def _study_uids(spec: PhantomSpec, study: StudySpec) -> dict[str, UID]:
    fp = spec.fingerprint()
    return {
        "study_instance_uid": _uid(fp, study.key, "study"),
        "series_instance_uid": _uid(fp, study.key, "series", str(study.series_number)),
        "frame_of_reference_uid": _uid(fp, study.key, "frame-of-reference"),
    }


def _sop_instance_uid(spec: PhantomSpec, study: StudySpec, k: int) -> UID:
    return _uid(spec.fingerprint(), study.key, "image", str(study.series_number), str(k))


# --------------------------------------------------------------------------------------
# DICOM datasets
# --------------------------------------------------------------------------------------


def _ds(value: float) -> str:
    """Format a number as a DICOM DS string (<= 16 chars, no trailing zeros, no -0)."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _age(birth: str, on: str) -> str:
    b = dt.datetime.strptime(birth, "%Y%m%d").date()
    d = dt.datetime.strptime(on, "%Y%m%d").date()
    years = d.year - b.year - ((d.month, d.day) < (b.month, b.day))
    return f"{years:03d}Y"


def study_datasets(
    spec: PhantomSpec, study: StudySpec, volume: HUArray | None = None
) -> Iterator[Dataset]:
    """Yield the CT Image Storage datasets of one study, slice 0 (lowest z) first.

    ``volume`` may be passed to avoid rebuilding it; it must be
    ``build_volume(spec, study.lesion_diameter_mm)``.
    """
    if volume is None:
        volume = build_volume(spec, study.lesion_diameter_mm)
    uids = _study_uids(spec, study)
    stored = hu_to_stored(spec, volume)
    for k in range(spec.num_slices):
        sop_uid = _sop_instance_uid(spec, study, k)

        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
        meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME

        ds = Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = sop_uid
        ds.StudyDate = study.study_date
        ds.SeriesDate = study.study_date
        ds.AcquisitionDate = study.study_date
        ds.ContentDate = study.study_date
        ds.StudyTime = study.study_time
        ds.SeriesTime = study.study_time
        ds.AcquisitionTime = study.study_time
        ds.ContentTime = study.study_time
        ds.AccessionNumber = study.accession_number
        issuer = Dataset()
        issuer.LocalNamespaceEntityID = spec.issuer_of_patient_id
        ds.IssuerOfAccessionNumberSequence = DicomSequence([issuer])
        ds.Modality = "CT"
        ds.Manufacturer = "Loupe phantom"
        ds.InstitutionName = "Loupe Demo Hospital"
        ds.ReferringPhysicianName = spec.referring_physician_name
        ds.StationName = "PHANTOM"
        ds.StudyDescription = study.study_description
        ds.SeriesDescription = study.series_description
        ds.ManufacturerModelName = "Synthetic torso"

        ds.PatientName = spec.patient_name
        ds.PatientID = spec.patient_id
        ds.IssuerOfPatientID = spec.issuer_of_patient_id
        ds.PatientBirthDate = spec.patient_birth_date
        ds.PatientSex = spec.patient_sex
        ds.PatientAge = _age(spec.patient_birth_date, study.study_date)

        if study.contrast_agent:
            ds.ContrastBolusAgent = study.contrast_agent
        ds.BodyPartExamined = "CHEST"
        ds.SliceThickness = _ds(spec.slice_thickness_mm)
        ds.KVP = _ds(spec.kvp)
        ds.SoftwareVersions = IMPLEMENTATION_VERSION_NAME
        ds.ProtocolName = study.study_description
        ds.ReconstructionDiameter = _ds(spec.columns * spec.column_spacing_mm)
        ds.ConvolutionKernel = "STANDARD"
        ds.PatientPosition = "HFS"

        ds.StudyInstanceUID = uids["study_instance_uid"]
        ds.SeriesInstanceUID = uids["series_instance_uid"]
        ds.StudyID = study.study_id
        ds.SeriesNumber = study.series_number
        ds.AcquisitionNumber = 1
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [_ds(v) for v in spec.image_position(k)]
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.FrameOfReferenceUID = uids["frame_of_reference_uid"]
        ds.PositionReferenceIndicator = ""
        ds.SliceLocation = _ds(spec.z_of_slice(k))

        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = spec.rows
        ds.Columns = spec.columns
        ds.PixelSpacing = [_ds(v) for v in spec.pixel_spacing]
        ds.BitsAllocated = spec.bits_allocated
        ds.BitsStored = spec.bits_stored
        ds.HighBit = spec.high_bit
        ds.PixelRepresentation = 0
        ds.WindowCenter = [_ds(v) for v in WINDOW_CENTERS]
        ds.WindowWidth = [_ds(v) for v in WINDOW_WIDTHS]
        ds.RescaleIntercept = _ds(spec.rescale_intercept)
        ds.RescaleSlope = _ds(spec.rescale_slope)
        ds.RescaleType = "HU"
        ds.WindowCenterWidthExplanation = list(WINDOW_EXPLANATIONS)
        ds.add_new(0x7FE00010, "OW", stored[k].astype("<u2").tobytes())
        yield ds


def phantom_studies(spec: PhantomSpec = DEFAULT_SPEC) -> Iterator[Dataset]:
    """Yield every dataset of every study: the current study first, then the prior."""
    for study in spec.studies:
        yield from study_datasets(spec, study)


def ground_truth(spec: PhantomSpec = DEFAULT_SPEC) -> dict[str, Any]:
    """JSON-serialisable description of the spec plus derived per-study facts."""
    studies: list[dict[str, Any]] = []
    for study in spec.studies:
        r = study.lesion_diameter_mm / 2.0
        voxel_mm3 = spec.row_spacing_mm * spec.column_spacing_mm * spec.slice_spacing_mm
        count = lesion_voxel_count(spec, study.lesion_diameter_mm)
        studies.append(
            {
                **dataclasses.asdict(study),
                **{k: str(v) for k, v in _study_uids(spec, study).items()},
                "lesion_center_mm": list(spec.lesion_center_mm),
                "lesion_center_index_krc": list(spec.index_of(*spec.lesion_center_mm)),
                "lesion_voxel_count": count,
                "lesion_voxelised_volume_mm3": round(count * voxel_mm3, 6),
                "lesion_sphere_volume_mm3": round(4.0 / 3.0 * np.pi * r**3, 6),
                "sop_instance_uids": [
                    str(_sop_instance_uid(spec, study, k)) for k in range(spec.num_slices)
                ],
            }
        )
    return {
        "description": "Loupe synthetic CT torso phantom; see viewer/demo/phantom.py.",
        "conventions": {
            "patient_coordinates": "DICOM LPS mm: +x patient left, +y posterior, +z head",
            "array_index_order": "[slice k, row r, column c]",
            "voxel_centre_mm": "x = x0 + c*column_spacing, y = y0 + r*row_spacing, "
            "z = z0 + k*slice_spacing",
            "pixel_spacing_order": "row spacing (along y), column spacing (along x)",
            "image_position_patient": "centre of pixel (r=0, c=0) of the slice",
            "modality_lut": "HU = stored * RescaleSlope + RescaleIntercept",
            "inside_test": "<= (boundary voxels belong to the structure)",
            "noise": "none",
        },
        "spec": dataclasses.asdict(spec),
        "derived": {
            "x0_mm": spec.x0_mm,
            "y0_mm": spec.y0_mm,
            "z_last_mm": spec.z_of_slice(spec.num_slices - 1),
            "image_orientation_patient": [1, 0, 0, 0, 1, 0],
            "window_centers": list(WINDOW_CENTERS),
            "window_widths": list(WINDOW_WIDTHS),
            "window_explanations": list(WINDOW_EXPLANATIONS),
            "spec_fingerprint": spec.fingerprint(),
        },
        "studies": studies,
    }


def write_phantom(out_dir: Path, spec: PhantomSpec = DEFAULT_SPEC) -> list[Path]:
    """Write both studies as DICOM Part 10 files plus ``ground_truth.json``.

    Layout: ``out_dir/<study.key>/CT<InstanceNumber:04d>.dcm`` (``current`` then
    ``prior``) and ``out_dir/ground_truth.json``. Returns the DICOM paths only, in the
    order written. Output is byte-identical across runs for the same spec.
    """
    out_dir = Path(out_dir)
    paths: list[Path] = []
    for study in spec.studies:
        study_dir = out_dir / study.key
        study_dir.mkdir(parents=True, exist_ok=True)
        for ds in study_datasets(spec, study):
            path = study_dir / f"CT{int(ds.InstanceNumber):04d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            paths.append(path)
    truth = json.dumps(ground_truth(spec), indent=2, sort_keys=True) + "\n"
    (out_dir / GROUND_TRUTH_FILENAME).write_text(truth, encoding="utf-8")
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m viewer.demo.phantom OUT_DIR``: write the phantom to OUT_DIR."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    paths = write_phantom(args.out_dir)
    elapsed = time.perf_counter() - start
    sys.stdout.write(f"wrote {len(paths)} DICOM files to {args.out_dir} in {elapsed:.2f} s\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
