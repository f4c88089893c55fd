"""viewer.dicom.measure: the SCOORD convention, calibrated spacing (anisotropic, imager
spacing with magnification, pixels), every kind, boundary inclusion and errors — as
tables; ground truth on the demo phantom and on real CT slices of the shared corpus
(statistics computed here independently with numpy)."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from viewer.demo import phantom
from viewer.dicom import measure, pixels
from viewer.dicom.measure import Calibration, FrameValues, InvalidMeasurement


def dataset(**values: Any) -> Dataset:
    found = Dataset()
    for keyword, value in values.items():
        setattr(found, keyword, value)
    return found


def frame(
    stored: Any = None, cal: Calibration = measure.PIXELS_ONLY, view: Dataset | None = None
) -> FrameValues:
    array = np.asarray(stored if stored is not None else np.zeros((10, 10), np.uint16))
    return FrameValues(array.shape[0], array.shape[1], cal, array, view)


RAMP = np.arange(100, dtype=np.uint16).reshape(10, 10)  # value = 10 * row + column


CALIBRATION_CASES = [
    (
        "Pixel Spacing: row, then column",
        dataset(PixelSpacing=[0.5, 0.25]),
        (0.5, 0.25, "PixelSpacing"),
    ),
    (
        "Imager Pixel Spacing alone: at the detector",
        dataset(ImagerPixelSpacing=[0.2, 0.2]),
        (0.2, 0.2, "ImagerPixelSpacing"),
    ),
    (
        "Imager Pixel Spacing corrected by the magnification factor",
        dataset(ImagerPixelSpacing=[0.2, 0.3], EstimatedRadiographicMagnificationFactor=1.25),
        (0.16, 0.24, "ImagerPixelSpacing/EstimatedRadiographicMagnificationFactor"),
    ),
    (
        "a magnification factor of 0 is ignored",
        dataset(ImagerPixelSpacing=[0.2, 0.2], EstimatedRadiographicMagnificationFactor=0),
        (0.2, 0.2, "ImagerPixelSpacing"),
    ),
    (
        "Pixel Spacing wins; no correction applies to it",
        dataset(
            PixelSpacing=[0.1, 0.1],
            ImagerPixelSpacing=[0.2, 0.2],
            EstimatedRadiographicMagnificationFactor=2,
        ),
        (0.1, 0.1, "PixelSpacing"),
    ),
    ("no spacing: pixels", dataset(Rows=10), (None, None, None)),
]


@pytest.mark.parametrize(
    ("what", "data", "expected"), CALIBRATION_CASES, ids=[c[0] for c in CALIBRATION_CASES]
)
def test_calibration(what: str, data: Dataset, expected: tuple[Any, Any, Any]) -> None:
    found = measure.calibration(data)
    assert found.attribute == expected[2]
    if expected[0] is None:
        assert found.row_mm is None and found.column_mm is None
    else:
        assert found.row_mm == pytest.approx(expected[0])
        assert found.column_mm == pytest.approx(expected[1])


ANISO = Calibration(0.5, 0.25, "PixelSpacing")  # rows 0.5 mm apart, columns 0.25 mm

GEOMETRY_CASES = [
    # (what, kind, points, calibration, quantity, value, unit)
    (
        "length along a row uses the column spacing",
        "length",
        [[1, 1], [5, 1]],
        ANISO,
        "length",
        1.0,
        "mm",
    ),
    (
        "length along a column uses the row spacing",
        "length",
        [[1, 1], [1, 5]],
        ANISO,
        "length",
        2.0,
        "mm",
    ),
    (
        "diagonal length, anisotropic",
        "length",
        [[0, 0], [4, 2]],
        ANISO,
        "length",
        math.hypot(1, 1),
        "mm",
    ),
    (
        "length in pixels without spacing",
        "length",
        [[0, 0], [3, 4]],
        measure.PIXELS_ONLY,
        "length",
        5.0,
        "{px}",
    ),
    (
        "arrow gives its length",
        "arrow",
        [[0, 0], [3, 4]],
        measure.PIXELS_ONLY,
        "length",
        5.0,
        "{px}",
    ),
    ("right angle", "angle", [[5, 0], [0, 0], [0, 5]], measure.PIXELS_ONLY, "angle", 90.0, "deg"),
    (
        "straight angle",
        "angle",
        [[0, 1], [5, 1], [10, 1]],
        measure.PIXELS_ONLY,
        "angle",
        180.0,
        "deg",
    ),
    # 45° in pixels is atan(2·0.5 / (2·0.25))... in mm the arms are (0.5, 0) and (0.5, 1).
    (
        "angle in physical space",
        "angle",
        [[2, 0], [0, 0], [2, 2]],
        ANISO,
        "angle",
        math.degrees(math.atan2(1.0, 0.5)),
        "deg",
    ),
    (
        "Cobb angle of crossing lines",
        "angle",
        [[0, 0], [4, 4], [0, 4], [4, 0]],
        measure.PIXELS_ONLY,
        "angle",
        90.0,
        "deg",
    ),
    (
        "Cobb angle is at most 90° whatever the direction drawn",
        "angle",
        [[0, 0], [4, 0], [4, 4], [0, 1]],
        measure.PIXELS_ONLY,
        "angle",
        math.degrees(math.atan2(3, 4)),
        "deg",
    ),
    (
        "rectangle area, anisotropic",
        "rectangle",
        [[1, 1], [5, 3]],
        ANISO,
        "area",
        4 * 2 * 0.125,
        "mm2",
    ),
    ("ellipse area π·a·b", "ellipse", [[0, 0], [8, 4]], ANISO, "area", math.pi * 1.0 * 1.0, "mm2"),
    (
        "polygon area by the shoelace formula",
        "polygon",
        [[0, 0], [4, 0], [0, 6]],
        measure.PIXELS_ONLY,
        "area",
        12.0,
        "{px2}",
    ),
]


@pytest.mark.parametrize(
    ("what", "kind", "points", "cal", "quantity", "value", "unit"),
    GEOMETRY_CASES,
    ids=[c[0] for c in GEOMETRY_CASES],
)
def test_geometry(
    what: str,
    kind: str,
    points: list[list[float]],
    cal: Calibration,
    quantity: str,
    value: float,
    unit: str,
) -> None:
    result = measure.measure(kind, points, frame(RAMP, cal))
    assert result[quantity]["value"] == pytest.approx(value)
    assert result[quantity]["unit"] == unit
    assert result["spacing_attribute"] == cal.attribute


def test_convention_probe_reads_the_pixel_that_contains_the_point() -> None:
    """(0, 0) is the top-left corner: (x, y) = (3.2, 7.9) is in column 3, row 7."""
    result = measure.measure("point", [[3.2, 7.9]], frame(RAMP))
    assert result["pixel"] == {"column": 3, "row": 7}
    assert result["value"] == {"value": 73.0, "unit": "1"}
    assert result["values"] == "stored"
    # The right and bottom edges belong to the last column and row.
    assert measure.measure("point", [[10, 10]], frame(RAMP))["value"]["value"] == 99.0
    assert measure.measure("point", [[0, 0]], frame(RAMP))["value"]["value"] == 0.0


def test_rectangle_counts_centres_on_its_boundary() -> None:
    """Corners at pixel centres (1.5, 1.5) and (3.5, 2.5): centres on the edges count."""
    result = measure.measure("rectangle", [[1.5, 1.5], [3.5, 2.5]], frame(RAMP))
    values = RAMP[1:3, 1:4].astype(float)
    assert result["pixels"] == {"value": 6.0, "unit": "{pixels}"}
    assert result["mean"]["value"] == pytest.approx(values.mean())
    assert result["std"]["value"] == pytest.approx(values.std())  # population
    assert result["min"]["value"] == 11 and result["max"]["value"] == 23


def test_ellipse_counts_centres_on_its_boundary() -> None:
    """A circle of radius 2 centred on the centre of pixel (5, 5): the four centres at
    distance exactly 2 are on the boundary and count, making 13 with the 9 inside."""
    result = measure.measure("ellipse", [[3.5, 3.5], [7.5, 7.5]], frame(RAMP))
    assert result["pixels"]["value"] == 13
    assert result["area"] == {"value": pytest.approx(math.pi * 4), "unit": "{px2}"}


def test_polygon_counts_centres_on_edges_and_vertices() -> None:
    """A right triangle with its vertices on pixel centres: the centres on its three
    edges count (the hypotenuse passes through centres too)."""
    vertices = [[0.5, 0.5], [4.5, 0.5], [0.5, 4.5]]
    result = measure.measure("polygon", vertices, frame(RAMP))
    expected = [(r, c) for r in range(5) for c in range(5) if r + c <= 4]
    assert result["pixels"]["value"] == len(expected)
    assert result["mean"]["value"] == pytest.approx(np.mean([RAMP[r, c] for r, c in expected]))


def test_polygon_concave() -> None:
    """An L shape: the notch is outside."""
    shape = [[0, 0], [6, 0], [6, 2], [2, 2], [2, 6], [0, 6]]
    result = measure.measure("polygon", shape, frame(RAMP))
    assert result["area"]["value"] == 20.0
    assert result["pixels"]["value"] == 20


def test_modality_values_and_units() -> None:
    ct = dataset(Modality="CT", RescaleSlope=2, RescaleIntercept=-1024)
    result = measure.measure("point", [[1.5, 2.5]], frame(RAMP, view=ct))
    assert result["value"] == {"value": 21 * 2 - 1024.0, "unit": "[hnsf'U]"}
    assert result["values"] == "modality"
    other = dataset(Modality="PT", RescaleSlope=0.5, RescaleIntercept=0, RescaleType="BQML")
    result = measure.measure("rectangle", [[0, 0], [2, 1]], frame(RAMP, view=other))
    assert result["mean"] == {"value": 0.25, "unit": "1"}
    assert result["values"] == "modality"


ERROR_CASES = [
    ("unknown kind", "circle", [[1, 1], [2, 2]], "unknown_kind"),
    ("points not a list", "length", "1,2", "bad_points"),
    ("a point that is not a pair", "length", [[1, 1], [2]], "bad_points"),
    ("a point of text", "length", [[1, 1], ["2", 2]], "bad_points"),
    ("a non-finite coordinate", "length", [[1, 1], [math.inf, 2]], "bad_points"),
    ("NaN", "point", [[math.nan, 2]], "bad_points"),
    ("length with three points", "length", [[1, 1], [2, 2], [3, 3]], "wrong_number_of_points"),
    ("angle with two points", "angle", [[1, 1], [2, 2]], "wrong_number_of_points"),
    ("polygon with two points", "polygon", [[1, 1], [2, 2]], "wrong_number_of_points"),
    ("point with none", "point", [], "wrong_number_of_points"),
    ("x beyond the last column", "point", [[10.01, 1]], "point_outside_image"),
    ("negative y", "length", [[1, -0.5], [2, 2]], "point_outside_image"),
    ("flat rectangle", "rectangle", [[1, 1], [5, 1]], "zero_area"),
    ("ellipse of no width", "ellipse", [[1, 1], [1, 5]], "zero_area"),
    ("collinear polygon", "polygon", [[1, 1], [2, 2], [3, 3]], "zero_area"),
    ("an ROI between pixel centres", "rectangle", [[1.6, 1.6], [1.9, 1.9]], "no_pixels"),
    ("an angle arm of no length", "angle", [[1, 1], [1, 1], [3, 3]], "degenerate_angle"),
]


@pytest.mark.parametrize(
    ("what", "kind", "points", "code"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES]
)
def test_errors_name_the_problem(what: str, kind: str, points: Any, code: str) -> None:
    with pytest.raises(InvalidMeasurement) as raised:
        measure.measure(kind, points, frame(RAMP))
    assert raised.value.code == code
    assert raised.value.status == 400
    assert raised.value.message


def test_colour_frames_have_no_values() -> None:
    colour = FrameValues(4, 4, measure.PIXELS_ONLY, None, None, greyscale=False)
    with pytest.raises(InvalidMeasurement) as raised:
        measure.measure("point", [[1, 1]], colour)
    assert raised.value.code == "not_greyscale"
    assert measure.measure("length", [[0, 0], [3, 4]], colour)["length"]["value"] == 5.0


# Ground truth: the demo phantom (its geometry and HU are known exactly).

SPEC = phantom.DEFAULT_SPEC
LESION_SLICE = 40  # the lesion centre's slice (z = 20 mm)


@pytest.fixture(scope="module")
def lesion_slice() -> FrameValues:
    volume = phantom.build_volume(SPEC, SPEC.current.lesion_diameter_mm)
    ds = next(
        d
        for i, d in enumerate(phantom.study_datasets(SPEC, SPEC.current, volume))
        if i == LESION_SLICE
    )
    ds = pydicom.dcmread(_saved(ds))
    return FrameValues(
        SPEC.rows, SPEC.columns, measure.calibration(ds), ds.pixel_array, pixels.frame_view(ds, 0)
    )


def _saved(ds: Dataset) -> Any:
    import io

    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    out.seek(0)
    return out


def image_point(x_mm: float, y_mm: float) -> tuple[float, float]:
    """Patient (x, y) mm → SCOORD image coordinates (centre of column c is c + 0.5)."""
    return (
        (x_mm - SPEC.x0_mm) / SPEC.column_spacing_mm + 0.5,
        (y_mm - SPEC.y0_mm) / SPEC.row_spacing_mm + 0.5,
    )


def test_phantom_length_across_the_lesion(lesion_slice: FrameValues) -> None:
    """Drawn from edge to edge of the lesion where the image shows the edges (the pixel
    half a pixel inside each end is lesion, half a pixel outside lung): within half a
    pixel spacing of the true 20 mm diameter."""
    cx, cy, _ = SPEC.lesion_center_mm
    radius = SPEC.current.lesion_diameter_mm / 2
    left, right = image_point(cx - radius, cy), image_point(cx + radius, cy)
    stored = lesion_slice.stored
    assert stored is not None
    row = math.floor(left[1])

    def hu(x: float) -> int:
        return int(stored[row, math.floor(x)]) + SPEC.rescale_intercept

    assert hu(left[0] + 0.5) == hu(right[0] - 0.5) == phantom.HU_LESION
    assert hu(left[0] - 0.5) == hu(right[0] + 0.5) == phantom.HU_LUNG
    result = measure.measure("length", [list(left), list(right)], lesion_slice)
    assert result["length"]["unit"] == "mm"
    assert result["spacing_attribute"] == "PixelSpacing"
    assert abs(result["length"]["value"] - SPEC.current.lesion_diameter_mm) <= (
        SPEC.column_spacing_mm / 2
    )


def test_phantom_roi_in_uniform_tissue(lesion_slice: FrameValues) -> None:
    """An ellipse 20 × 10 mm inside the soft tissue between the lungs (40 HU everywhere)."""
    a = image_point(-10, -30)
    b = image_point(10, -20)
    result = measure.measure("ellipse", [list(a), list(b)], lesion_slice)
    assert abs(result["mean"]["value"] - phantom.HU_SOFT_TISSUE) <= 1
    assert result["std"]["value"] == 0
    assert result["mean"]["unit"] == "[hnsf'U]"
    true_area = math.pi * 10 * 5
    assert abs(result["area"]["value"] - true_area) <= 0.02 * true_area
    assert result["pixels"]["value"] == pytest.approx(true_area / 0.49, rel=0.02)


@pytest.mark.parametrize(
    ("x_mm", "y_mm"), [(-70, -14), (0, 60), (-70, -60), (100, 0), (0, 84), (170, 0)]
)
def test_phantom_probe_is_stored_times_slope_plus_intercept(
    lesion_slice: FrameValues, x_mm: float, y_mm: float
) -> None:
    x, y = image_point(x_mm, y_mm)
    c, r = math.floor(x), math.floor(y)
    result = measure.measure("point", [[x, y]], lesion_slice)
    stored = int(lesion_slice.stored[r, c])  # type: ignore[index]
    assert result["value"]["value"] == stored * SPEC.rescale_slope + SPEC.rescale_intercept
    truth = phantom.hu_at(
        SPEC,
        SPEC.current.lesion_diameter_mm,
        SPEC.x_of_column(c),
        SPEC.y_of_row(r),
        SPEC.z_of_slice(LESION_SLICE),
    )
    assert result["value"]["value"] == truth


def test_ellipse_200px_on_512_ct_is_fast(lesion_slice: FrameValues) -> None:
    points = [[100, 100], [300, 300]]
    measure.measure("ellipse", points, lesion_slice)
    started = time.perf_counter()
    for _ in range(10):
        measure.measure("ellipse", points, lesion_slice)
    assert (time.perf_counter() - started) / 10 < 0.020


# Real CT slices (patient C3N-00247), against numpy computed here.


@pytest.fixture
def ct_slices(shared_dicom: Path) -> list[Dataset]:
    files = sorted((shared_dicom / "ct-series").glob("*.dcm"))[:3]
    return [pydicom.dcmread(f) for f in files]


def test_real_ct_statistics_against_numpy(ct_slices: list[Dataset]) -> None:
    for ds in ct_slices:
        stored = ds.pixel_array
        hu = stored.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        values = FrameValues(
            int(ds.Rows), int(ds.Columns), measure.calibration(ds), stored, pixels.frame_view(ds, 0)
        )
        row_mm, column_mm = (float(v) for v in ds.PixelSpacing)
        # Rectangle over columns 200..299 and rows 150..249 (corners on pixel edges).
        result = measure.measure("rectangle", [[200, 150], [300, 250]], values)
        box = hu[150:250, 200:300]
        assert result["pixels"]["value"] == box.size
        assert result["mean"]["value"] == pytest.approx(box.mean())
        assert result["std"]["value"] == pytest.approx(box.std())
        assert result["min"]["value"] == box.min() and result["max"]["value"] == box.max()
        assert result["area"]["value"] == pytest.approx(100 * 100 * row_mm * column_mm)
        # Ellipse: centres with ((c + .5 - 256) / 80)² + ((r + .5 - 256) / 40)² ≤ 1.
        result = measure.measure("ellipse", [[176, 216], [336, 296]], values)
        rr, cc = np.mgrid[0 : int(ds.Rows), 0 : int(ds.Columns)]
        inside = ((cc + 0.5 - 256) / 80) ** 2 + ((rr + 0.5 - 256) / 40) ** 2 <= 1
        assert result["pixels"]["value"] == inside.sum()
        assert result["mean"]["value"] == pytest.approx(hu[inside].mean())
        assert result["std"]["value"] == pytest.approx(hu[inside].std())
        assert result["area"]["value"] == pytest.approx(math.pi * 80 * 40 * row_mm * column_mm)
        # Probe and length.
        probe = measure.measure("point", [[123.5, 321.25]], values)
        assert probe["value"]["value"] == hu[321, 123]
        line = measure.measure("length", [[10, 20], [110, 70]], values)
        assert line["length"]["value"] == pytest.approx(math.hypot(100 * column_mm, 50 * row_mm))
