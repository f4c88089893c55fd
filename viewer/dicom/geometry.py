"""Geometry of an image: which spacing applies, positions and orientation.

Conventions (as in highdicom's ``spatial.py``): pixel (0, 0) is the centre of the top-left
pixel; spacing is given as (row spacing, column spacing) in mm, i.e. the distance between
the centres of adjacent rows, then of adjacent columns, exactly as (0028,0030) *Pixel
Spacing* orders its two values (PS3.3 §10.7.1.3). Patient coordinates are LPS.

Which attribute gives the spacing (PS3.3 §10.7.1.1 and C.7.6.2.1.1):

* (0028,0030) *Pixel Spacing*: the physical distance in the patient between pixel centres.
  For cross-sectional images (CT, MR, PET …) it is in the plane of the patient; for
  projection radiographs it is present only when the spacing was calibrated to the
  patient (or corrected for geometric magnification), and then it wins over the detector
  value (PS3.3 §10.7.1.3, C.8.11.4.1.1).
* For enhanced multi-frame objects, *Pixel Spacing* sits in the Pixel Measures functional
  group (PS3.3 C.7.6.16.2.1), shared or on the first frame.
* (0018,1164) *Imager Pixel Spacing*: at the front face of the detector of a projection
  radiograph, not corrected for magnification: measurements with it are at the detector.
* (0018,2010) *Nominal Scanned Pixel Spacing*: a digitised film (secondary capture).
* An ultrasound region with (0018,6024)/(0018,6026) physical units in cm (PS3.3 C.8.5.5)
  when the image has exactly one such region.

When none applies, sizes can be given in pixels only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pydicom.dataset import Dataset
from pydicom.errors import BytesLengthException

from viewer.dicom.values import frame_macro, value

PIXEL_SPACING = "PixelSpacing"
IMAGER_PIXEL_SPACING = "ImagerPixelSpacing"
NOMINAL_SCANNED_PIXEL_SPACING = "NominalScannedPixelSpacing"
ULTRASOUND_REGION = "SequenceOfUltrasoundRegions"

_US_UNITS_CM = 3  # (0018,6024) Physical Units X Direction: 0003H = cm


@dataclass(frozen=True)
class Spacing:
    """Distance between pixel centres in mm, and the attribute it was read from."""

    row_mm: float
    column_mm: float
    attribute: str


def _pair(value: Any) -> tuple[float, float] | None:
    try:
        row, column = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    if row > 0 and column > 0:
        return row, column
    return None


def _functional_group_spacing(dataset: Dataset) -> tuple[float, float] | None:
    measures = frame_macro(dataset, "PixelMeasuresSequence")
    return _pair(value(measures, "PixelSpacing")) if measures is not None else None


def _ultrasound_spacing(dataset: Dataset) -> tuple[float, float] | None:
    regions = value(dataset, ULTRASOUND_REGION)
    if not regions or len(regions) != 1:
        return None
    region = regions[0]
    if value(region, "PhysicalUnitsXDirection") != _US_UNITS_CM:
        return None
    if value(region, "PhysicalUnitsYDirection") != _US_UNITS_CM:
        return None
    try:
        dx_mm = abs(float(region.PhysicalDeltaX)) * 10.0
        dy_mm = abs(float(region.PhysicalDeltaY)) * 10.0
    except (AttributeError, TypeError, ValueError, BytesLengthException):
        # Absent, empty, not a number, or an FD whose length is not 8 bytes: no spacing.
        return None
    if dx_mm > 0 and dy_mm > 0:
        return dy_mm, dx_mm
    return None


def pixel_spacing(dataset: Dataset) -> Spacing | None:
    """Return the spacing that applies to ``dataset`` in the order of the module docstring."""
    found = _pair(value(dataset, PIXEL_SPACING)) or _functional_group_spacing(dataset)
    if found:
        return Spacing(found[0], found[1], PIXEL_SPACING)
    for keyword in (IMAGER_PIXEL_SPACING, NOMINAL_SCANNED_PIXEL_SPACING):
        found = _pair(value(dataset, keyword))
        if found:
            return Spacing(found[0], found[1], keyword)
    found = _ultrasound_spacing(dataset)
    if found:
        return Spacing(found[0], found[1], ULTRASOUND_REGION)
    return None


def _floats(value: Any, count: int) -> list[float] | None:
    try:
        numbers = [float(v) for v in value]
    except (TypeError, ValueError):
        return None
    return numbers if len(numbers) == count else None


def image_position(dataset: Dataset) -> list[float] | None:
    """(0020,0032) Image Position (Patient), or the first frame's Plane Position."""
    found = _floats(value(dataset, "ImagePositionPatient"), 3)
    if found is None:
        found = _from_frame_groups(dataset, "PlanePositionSequence", "ImagePositionPatient", 3)
    return found


def image_orientation(dataset: Dataset) -> list[float] | None:
    """(0020,0037) Image Orientation (Patient), or the functional-group Plane Orientation."""
    found = _floats(value(dataset, "ImageOrientationPatient"), 6)
    if found is None:
        found = _from_frame_groups(
            dataset, "PlaneOrientationSequence", "ImageOrientationPatient", 6
        )
    return found


def _from_frame_groups(
    dataset: Dataset, macro: str, keyword: str, count: int
) -> list[float] | None:
    item = frame_macro(dataset, macro)
    return _floats(value(item, keyword), count) if item is not None else None


class _Positioned(Protocol):
    image_position_patient: Any
    image_orientation_patient: Any
    instance_number: int | None


T = TypeVar("T", bound=_Positioned)


def slice_normal(orientation: list[float]) -> tuple[float, float, float]:
    """The normal of an image plane: row direction × column direction (PS3.3 C.7.6.2.1.1)."""
    rx, ry, rz, cx, cy, cz = orientation
    return (ry * cz - rz * cy, rz * cx - rx * cz, rx * cy - ry * cx)


def slice_order(images: list[T]) -> list[T]:
    """Images ordered by their position along the slice normal (ascending), when every
    image has a position and they share one orientation; else by Instance Number.

    Position along the normal is ``dot(ImagePositionPatient, row × column)``: it orders
    tilted (gantry-tilt) and oblique stacks correctly where z alone would not.
    """
    orientations = {tuple(round(v, 4) for v in i.image_orientation_patient or ()) for i in images}
    positioned = all(
        isinstance(i.image_position_patient, list) and len(i.image_position_patient) == 3
        for i in images
    )
    if positioned and len(orientations) == 1 and len(next(iter(orientations))) == 6:
        normal = slice_normal(list(next(iter(orientations))))

        def along_normal(image: T) -> tuple[float, int]:
            x, y, z = image.image_position_patient
            return (x * normal[0] + y * normal[1] + z * normal[2], image.instance_number or 0)

        return sorted(images, key=along_normal)
    return sorted(images, key=lambda i: (i.instance_number is None, i.instance_number or 0))
