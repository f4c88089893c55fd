"""viewer.dicom.geometry: which spacing applies (mm, or px where none), positions,
orientation and slice order — as tables of data sets built in code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from viewer.dicom.geometry import (
    IMAGER_PIXEL_SPACING,
    NOMINAL_SCANNED_PIXEL_SPACING,
    PIXEL_SPACING,
    ULTRASOUND_REGION,
    Spacing,
    image_orientation,
    image_position,
    pixel_spacing,
    slice_normal,
    slice_order,
)


def dataset(**values: Any) -> Dataset:
    found = Dataset()
    for keyword, value in values.items():
        setattr(found, keyword, value)
    return found


def group(**macros: Dataset) -> Dataset:
    """One functional-group item holding each macro as a one-item sequence."""
    return dataset(**{keyword: [item] for keyword, item in macros.items()})


def region(x_units: int, y_units: int, dx: float, dy: float) -> Dataset:
    return dataset(
        PhysicalUnitsXDirection=x_units,
        PhysicalUnitsYDirection=y_units,
        PhysicalDeltaX=dx,
        PhysicalDeltaY=dy,
    )


SPACING_CASES = [
    # (what, data set, expected spacing or None for pixels only)
    (
        "Pixel Spacing, row then column",
        dataset(PixelSpacing=[0.5, 0.25]),
        Spacing(0.5, 0.25, PIXEL_SPACING),
    ),
    (
        "Pixel Spacing wins over Imager Pixel Spacing (calibrated radiograph)",
        dataset(PixelSpacing=[0.2, 0.2], ImagerPixelSpacing=[0.25, 0.25]),
        Spacing(0.2, 0.2, PIXEL_SPACING),
    ),
    (
        "Imager Pixel Spacing alone: at the detector",
        dataset(ImagerPixelSpacing=[0.143, 0.143]),
        Spacing(0.143, 0.143, IMAGER_PIXEL_SPACING),
    ),
    (
        "Nominal Scanned Pixel Spacing: a digitised film",
        dataset(NominalScannedPixelSpacing=[0.3, 0.3]),
        Spacing(0.3, 0.3, NOMINAL_SCANNED_PIXEL_SPACING),
    ),
    (
        "enhanced: Pixel Measures in the shared groups",
        dataset(
            SharedFunctionalGroupsSequence=[
                group(PixelMeasuresSequence=dataset(PixelSpacing=[0.9, 0.8]))
            ]
        ),
        Spacing(0.9, 0.8, PIXEL_SPACING),
    ),
    (
        "enhanced: Pixel Measures on the first frame",
        dataset(
            PerFrameFunctionalGroupsSequence=[
                group(PixelMeasuresSequence=dataset(PixelSpacing=[1.1, 1.2]))
            ]
        ),
        Spacing(1.1, 1.2, PIXEL_SPACING),
    ),
    (
        "one ultrasound region in cm: mm, row (Y) then column (X)",
        dataset(SequenceOfUltrasoundRegions=[region(3, 3, 0.01, 0.02)]),
        Spacing(0.2, 0.1, ULTRASOUND_REGION),
    ),
    (
        "two ultrasound regions: pixels only",
        dataset(SequenceOfUltrasoundRegions=[region(3, 3, 0.01, 0.01)] * 2),
        None,
    ),
    (
        "an ultrasound region not in cm: pixels only",
        dataset(SequenceOfUltrasoundRegions=[region(4, 4, 0.01, 0.01)]),
        None,
    ),
    ("a zero spacing: pixels only", dataset(PixelSpacing=[0.0, 0.5]), None),
    ("a negative spacing: pixels only", dataset(PixelSpacing=[-0.5, 0.5]), None),
    ("one value instead of two: pixels only", dataset(PixelSpacing=0.5), None),
    ("no spacing at all: pixels only", dataset(Rows=10, Columns=10), None),
]


@pytest.mark.parametrize(
    ("what", "data", "expected"), SPACING_CASES, ids=[c[0] for c in SPACING_CASES]
)
def test_the_spacing_that_applies(what: str, data: Dataset, expected: Spacing | None) -> None:
    assert pixel_spacing(data) == expected


@pytest.mark.parametrize(
    ("data", "position", "orientation"),
    [
        (
            dataset(ImagePositionPatient=[1, 2, 3], ImageOrientationPatient=[1, 0, 0, 0, 1, 0]),
            [1.0, 2.0, 3.0],
            [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
        ),
        (
            dataset(
                PerFrameFunctionalGroupsSequence=[
                    group(PlanePositionSequence=dataset(ImagePositionPatient=[4, 5, 6]))
                ],
                SharedFunctionalGroupsSequence=[
                    group(
                        PlaneOrientationSequence=dataset(
                            ImageOrientationPatient=[0, 1, 0, 0, 0, -1]
                        )
                    )
                ],
            ),
            [4.0, 5.0, 6.0],
            [0.0, 1.0, 0.0, 0.0, 0.0, -1.0],
        ),
        (dataset(ImagePositionPatient=[1, 2]), None, None),  # the wrong number of values
    ],
)
def test_position_and_orientation_from_the_header_or_the_functional_groups(
    data: Dataset, position: list[float] | None, orientation: list[float] | None
) -> None:
    assert image_position(data) == position
    assert image_orientation(data) == orientation


@pytest.mark.parametrize(
    ("orientation", "normal"),
    [
        ([1, 0, 0, 0, 1, 0], (0, 0, 1)),  # axial: feet to head
        ([0, 1, 0, 0, 0, -1], (-1, 0, 0)),  # sagittal
        ([1, 0, 0, 0, 0, -1], (0, 1, 0)),  # coronal
    ],
)
def test_the_slice_normal_is_row_cross_column(
    orientation: list[float], normal: tuple[int, ...]
) -> None:
    assert slice_normal([float(v) for v in orientation]) == pytest.approx(normal)


@dataclass
class Image:
    name: str
    image_position_patient: Any
    image_orientation_patient: Any
    instance_number: int | None


AXIAL = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
# Gantry tilt of 18.5° about the x axis: positions step along the tilted normal.
TILTED = [1.0, 0.0, 0.0, 0.0, 0.948, -0.317]

ORDER_CASES = [
    (
        "axial by z, whatever the instance numbers",
        [
            Image("b", [0, 0, 5.0], AXIAL, 1),
            Image("a", [0, 0, -5.0], AXIAL, 2),
            Image("c", [0, 0, 10.0], AXIAL, 3),
        ],
        "abc",
    ),
    (
        "tilted: along the normal, where z alone would misorder",
        [
            Image("b", [0, 2.371 * 0.317, 2.371 * 0.948], TILTED, 2),
            Image("a", [0, 0.0, 0.0], TILTED, 1),
            Image("c", [0, 2 * 2.371 * 0.317, 2 * 2.371 * 0.948], TILTED, 3),
        ],
        "abc",
    ),
    (
        "one image without a position: by instance number",
        [Image("b", [0, 0, 1.0], AXIAL, 2), Image("a", None, AXIAL, 1)],
        "ab",
    ),
    (
        "two orientations (a localizer among axials): by instance number",
        [Image("b", [0, 0, -1.0], AXIAL, 2), Image("a", [0, 0, 9.0], [0, 1, 0, 0, 0, -1], 1)],
        "ab",
    ),
    (
        "no instance numbers last",
        [Image("b", None, None, None), Image("a", None, None, 7)],
        "ab",
    ),
]


@pytest.mark.parametrize(
    ("what", "images", "expected"), ORDER_CASES, ids=[c[0] for c in ORDER_CASES]
)
def test_slice_order(what: str, images: list[Image], expected: str) -> None:
    assert "".join(i.name for i in slice_order(images)) == expected


def test_an_ultrasound_delta_of_the_wrong_byte_length_gives_pixels_only() -> None:
    # (0018,602C) Physical Delta X is FD: 8 bytes. Five bytes cannot be read as one.
    item = region(3, 3, 0.01, 0.01)
    item[0x0018602C] = RawDataElement(Tag(0x0018602C), "FD", 5, b"\x00" * 5, 0, False, True)
    assert pixel_spacing(dataset(SequenceOfUltrasoundRegions=[item])) is None
