"""Measurements on one frame: length, angle (and Cobb angle), ROI statistics, probe, arrow.

Pure functions over numbers, numpy arrays and pydicom data sets; no Django.

Coordinates
    Points are *image coordinates* ``(x, y)`` = (column, row) in pixels, floats, with
    ``(0, 0)`` the top-left **corner** of the top-left pixel: the SCOORD convention of
    PS3.3 C.18.6.1.1. The pixel of column ``c`` and row ``r`` (array element
    ``frame[r, c]``) covers ``[c, c + 1) × [r, r + 1)``, and its centre is
    ``(c + 0.5, r + 0.5)``. An image of ``columns × rows`` pixels spans ``0 ≤ x ≤ columns``,
    ``0 ≤ y ≤ rows``; a point outside that is refused.

    ``viewer.dicom.geometry`` indexes pixel *centres* instead (pixel (0, 0) is the centre of
    the top-left pixel, as (0020,0032) *Image Position (Patient)* is): geometry position
    ``(c, r)`` is image coordinate ``(c + 0.5, r + 0.5)``. Differences of coordinates, and
    so every length, angle and area here, are the same in both.

Spacing (:func:`calibration`)
    From ``geometry.pixel_spacing``: (0028,0030) *Pixel Spacing* (row spacing, then column
    spacing: PS3.3 §10.7.1.3), else (0018,1164) *Imager Pixel Spacing* divided by
    (0018,1114) *Estimated Radiographic Magnification Factor* where that is present and
    positive (PS3.3 C.8.11.7.1.1; the attribute is then reported as
    ``"ImagerPixelSpacing/EstimatedRadiographicMagnificationFactor"``, and without the
    factor as ``"ImagerPixelSpacing"``: sizes at the detector), else the other attributes
    geometry knows (Nominal Scanned Pixel Spacing, an ultrasound region). Where none
    applies, lengths are in pixels (``{px}``), areas in square pixels (``{px2}``) and
    ``spacing_attribute`` is ``null``. Spacing may differ between rows and columns: a step
    of ``(Δx, Δy)`` pixels is ``(Δx · column_mm, Δy · row_mm)`` mm, and angles are
    measured between those physical vectors.

ROI statistics (ellipse, rectangle, polygon)
    Over the pixels whose **centre** lies inside the shape or on its boundary (a test on
    the pixel centres of the shape's bounding box only, vectorised; "on the boundary"
    allows a relative rounding error of 1e-9). Values are *modality values*: the Modality
    LUT of PS3.3 C.11.1 (Modality LUT Sequence, or Rescale Slope × stored value + Rescale
    Intercept) applied to the stored values of the region (``pixels.modality_values``), HU
    for CT; never windowed display values. Where the object has neither, the stored values
    are reported as they are, labelled ``"values": "stored"`` and unit ``"1"``. ``std`` is
    the population standard deviation (divided by N). ``area`` is the geometric area of
    the drawn shape (ellipse π·a·b, rectangle width × height, polygon by the shoelace
    formula), not the pixel count.

The result (a contract with the API, the SR export and the browser)
    A dict whose quantity keys are among ``length``, ``angle``, ``area``, ``mean``,
    ``std``, ``min``, ``max``, ``pixels``, ``value``, each ``{"value": number, "unit":
    UCUM code}``, plus ``"spacing_attribute"`` (str or null) always, ``"values"``
    (``"modality"`` or ``"stored"``) where pixel values are reported, and ``"pixel"``
    (``{"column": c, "row": r}``, 0-based) for the probe. Units: ``mm``, ``mm2``,
    ``deg``, ``[hnsf'U]`` (Hounsfield units), ``1`` (unitless modality or stored values),
    ``{px}``, ``{px2}`` (pixels where no spacing exists) and ``{pixels}`` for the pixel
    count.

    ============  ===========================  ========================================
    kind          points                       quantities
    ============  ===========================  ========================================
    length        2 (ends)                     length
    angle         3 (arm, vertex, arm)         angle, 0–180°
    angle         4 (line p0p1, line p2p3)     angle: Cobb angle between the lines, 0–90°
    ellipse       2 (opposite corners of the   area, mean, std, min, max, pixels
                  axis-aligned bounding box)
    rectangle     2 (opposite corners)         area, mean, std, min, max, pixels
    polygon       ≥ 3 (vertices, closed)       area, mean, std, min, max, pixels
    point         1                            value (of the pixel that contains it)
    arrow         2 (tail, head)               length (the arrow is a label's pointer)
    ============  ===========================  ========================================

Errors are :class:`InvalidMeasurement` (400) with a code naming the problem:
``unknown_kind``, ``bad_points`` (not a list of [x, y] numbers, or not finite),
``wrong_number_of_points``, ``point_outside_image``, ``zero_area``, ``no_pixels`` (an
ROI with no pixel centre inside), ``degenerate_angle`` (an arm of zero length),
``not_greyscale`` (pixel values of a colour image).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset

from viewer.dicom import pixels
from viewer.dicom.geometry import IMAGER_PIXEL_SPACING, pixel_spacing
from viewer.dicom.values import value
from viewer.errors import ViewerError

KINDS = ("length", "angle", "ellipse", "rectangle", "polygon", "point", "arrow")
ROI_KINDS = ("ellipse", "rectangle", "polygon")
QUANTITIES = ("length", "angle", "area", "mean", "std", "min", "max", "pixels", "value")
MAGNIFICATION = "EstimatedRadiographicMagnificationFactor"
CORRECTED_IMAGER_SPACING = f"{IMAGER_PIXEL_SPACING}/{MAGNIFICATION}"

MM, MM2, DEG, HU, ONE = "mm", "mm2", "deg", "[hnsf'U]", "1"
PX, PX2, PIXEL_COUNT = "{px}", "{px2}", "{pixels}"

# Most points a polygon may have (a freehand outline is a few hundred).
MAX_POINTS = 10_000
# A pixel centre this close (relative to the shape's size) to the boundary is on it.
_BOUNDARY_TOLERANCE = 1e-9


class InvalidMeasurement(ViewerError):
    """A measurement that cannot be computed as asked: the message names the problem."""

    status = 400
    code = "invalid_measurement"


@dataclass(frozen=True)
class Calibration:
    """Distance between pixel centres in mm (row spacing, column spacing) and the
    attribute it came from; ``None`` for all three where only pixels are known."""

    row_mm: float | None = None
    column_mm: float | None = None
    attribute: str | None = None

    @property
    def calibrated(self) -> bool:
        return self.row_mm is not None and self.column_mm is not None

    def scale(self) -> tuple[float, float]:
        """(mm per pixel along x, mm per pixel along y), or (1, 1) for pixels."""
        if self.row_mm is None or self.column_mm is None:
            return 1.0, 1.0
        return self.column_mm, self.row_mm

    @property
    def length_unit(self) -> str:
        return MM if self.calibrated else PX

    @property
    def area_unit(self) -> str:
        return MM2 if self.calibrated else PX2


PIXELS_ONLY = Calibration()


def calibration(dataset: Dataset) -> Calibration:
    """The spacing measurements on ``dataset`` use (see the module docstring)."""
    spacing = pixel_spacing(dataset)
    if spacing is None:
        return PIXELS_ONLY
    if spacing.attribute == IMAGER_PIXEL_SPACING:
        factor = magnification_factor(dataset)
        if factor is not None:
            return Calibration(
                spacing.row_mm / factor, spacing.column_mm / factor, CORRECTED_IMAGER_SPACING
            )
    return Calibration(spacing.row_mm, spacing.column_mm, spacing.attribute)


def magnification_factor(dataset: Dataset) -> float | None:
    """(0018,1114) Estimated Radiographic Magnification Factor, where a positive number."""
    try:
        factor = float(value(dataset, MAGNIFICATION))
    except (TypeError, ValueError):
        return None
    return factor if math.isfinite(factor) and factor > 0 else None


@dataclass(frozen=True)
class FrameValues:
    """One frame as a measurement needs it: its size and, for ROI statistics and the
    probe, its stored values (``(rows, columns)``, grey) with the pipeline attributes
    that carry its Modality LUT (``pixels.frame_view``). ``stored`` is None for a colour
    frame, or where only geometry is measured."""

    rows: int
    columns: int
    calibration: Calibration = PIXELS_ONLY
    stored: npt.NDArray[Any] | None = None
    view: Dataset | None = None
    greyscale: bool = True


def value_kind(view: Dataset | None) -> tuple[str, str]:
    """("modality" | "stored", unit) of the values ``pixels.modality_values`` gives.

    HU (``[hnsf'U]``) where (0028,1054) *Rescale Type* or (0028,3002) *Modality LUT Type*
    says HU, or for CT with a rescale and no Rescale Type (the CT Image module needs one
    only where the unit is not HU, PS3.3 C.8.2.1); other modality values are ``1``; no
    Modality LUT at all: the stored values, ``1``."""
    if view is None:
        return "stored", ONE
    sequence = view.get("ModalityLUTSequence")
    if sequence:
        lut_type = str(sequence[0].get("ModalityLUTType", "")).strip().upper()
        return "modality", HU if lut_type == "HU" else ONE
    if any(view.get(k) in (None, "") for k in ("RescaleSlope", "RescaleIntercept")):
        return "stored", ONE  # pixels.modality_values rescales only where both are given
    rescale_type = str(view.get("RescaleType", "")).strip().upper()
    modality = str(view.get("Modality", "")).strip().upper()
    if rescale_type == "HU" or (not rescale_type and modality == "CT"):
        return "modality", HU
    return "modality", ONE


def _quantity(number: float, unit: str) -> dict[str, Any]:
    return {"value": float(number), "unit": unit}


# Points.


def parse_points(points: Any) -> list[tuple[float, float]]:
    """``[[x, y], ...]`` as finite floats, else InvalidMeasurement ``bad_points``."""
    if not isinstance(points, list | tuple) or len(points) > MAX_POINTS:
        raise InvalidMeasurement(
            f"points must be a list of at most {MAX_POINTS} [x, y] pairs", code="bad_points"
        )
    parsed = []
    for index, point in enumerate(points):
        if (
            not isinstance(point, list | tuple)
            or len(point) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in point)
        ):
            raise InvalidMeasurement(
                f"point {index + 1} is not an [x, y] pair of numbers", code="bad_points"
            )
        x, y = float(point[0]), float(point[1])
        if not (math.isfinite(x) and math.isfinite(y)):
            raise InvalidMeasurement(
                f"point {index + 1} is not a pair of finite numbers", code="bad_points"
            )
        parsed.append((x, y))
    return parsed


_COUNTS = {
    "length": (2,),
    "arrow": (2,),
    "ellipse": (2,),
    "rectangle": (2,),
    "point": (1,),
    "angle": (3, 4),
}


def _check_count(kind: str, points: Sequence[tuple[float, float]]) -> None:
    count = len(points)
    expected = _COUNTS.get(kind)
    if expected is not None and count not in expected:
        wanted = " or ".join(str(n) for n in expected)
        raise InvalidMeasurement(
            f"a {kind} needs {wanted} points, not {count}", code="wrong_number_of_points"
        )
    if kind == "polygon" and count < 3:
        raise InvalidMeasurement(
            f"a polygon needs at least 3 points, not {count}", code="wrong_number_of_points"
        )


def _check_inside(points: Sequence[tuple[float, float]], rows: int, columns: int) -> None:
    for index, (x, y) in enumerate(points):
        if not (0 <= x <= columns and 0 <= y <= rows):
            raise InvalidMeasurement(
                f"point {index + 1} ({x:g}, {y:g}) is outside the image "
                f"(0 ≤ x ≤ {columns}, 0 ≤ y ≤ {rows})",
                code="point_outside_image",
            )


# Geometry.


def _physical(
    a: tuple[float, float], b: tuple[float, float], scale: tuple[float, float]
) -> tuple[float, float]:
    """The step from ``a`` to ``b`` in mm (or px): (Δcolumn · column_mm, Δrow · row_mm)."""
    return (b[0] - a[0]) * scale[0], (b[1] - a[1]) * scale[1]


def length(points: Sequence[tuple[float, float]], cal: Calibration) -> dict[str, Any]:
    dx, dy = _physical(points[0], points[1], cal.scale())
    return {"length": _quantity(math.hypot(dx, dy), cal.length_unit)}


def angle(points: Sequence[tuple[float, float]], cal: Calibration) -> dict[str, Any]:
    """Three points: the angle at the vertex ``points[1]`` between its arms, 0–180°.
    Four: the Cobb angle between line p0p1 and line p2p3, 0–90° (the acute angle
    between the lines, whatever the direction each was drawn in)."""
    scale = cal.scale()
    if len(points) == 3:
        u = _physical(points[1], points[0], scale)
        v = _physical(points[1], points[2], scale)
    else:
        u = _physical(points[0], points[1], scale)
        v = _physical(points[2], points[3], scale)
    if math.hypot(*u) == 0 or math.hypot(*v) == 0:
        raise InvalidMeasurement(
            "an arm (or line) of the angle has zero length", code="degenerate_angle"
        )
    cross = u[0] * v[1] - u[1] * v[0]
    dot = u[0] * v[0] + u[1] * v[1]
    if len(points) == 4:
        dot = abs(dot)
    return {"angle": _quantity(math.degrees(math.atan2(abs(cross), dot)), DEG)}


def _box(points: Sequence[tuple[float, float]]) -> tuple[float, float, float, float]:
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def _centres(
    box: tuple[float, float, float, float], rows: int, columns: int
) -> tuple[slice, slice, npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The rows and columns whose pixel centres can lie in ``box`` (as slices of the
    frame), and those centres' x (columns) and y (rows)."""
    x0, y0, x1, y1 = box
    c0 = max(math.ceil(x0 - 0.5), 0)
    c1 = min(math.floor(x1 - 0.5), columns - 1)
    r0 = max(math.ceil(y0 - 0.5), 0)
    r1 = min(math.floor(y1 - 0.5), rows - 1)
    c1, r1 = max(c1, c0 - 1), max(r1, r0 - 1)
    xs = np.arange(c0, c1 + 1, dtype=np.float64) + 0.5
    ys = np.arange(r0, r1 + 1, dtype=np.float64) + 0.5
    return slice(r0, r1 + 1), slice(c0, c1 + 1), xs, ys


def _rectangle_mask(
    box: tuple[float, float, float, float], xs: npt.NDArray[np.float64], ys: npt.NDArray[np.float64]
) -> npt.NDArray[np.bool_]:
    x0, y0, x1, y1 = box
    inside_x = (xs >= x0) & (xs <= x1)
    inside_y = (ys >= y0) & (ys <= y1)
    return np.asarray(inside_y[:, None] & inside_x[None, :])


def _ellipse_mask(
    box: tuple[float, float, float, float], xs: npt.NDArray[np.float64], ys: npt.NDArray[np.float64]
) -> npt.NDArray[np.bool_]:
    """Centres with ((x − xc)/a)² + ((y − yc)/b)² ≤ 1, evaluated as
    (x − xc)²·b² + (y − yc)²·a² ≤ a²·b² (no division; exact for half-pixel inputs)."""
    x0, y0, x1, y1 = box
    xc, yc = (x0 + x1) / 2, (y0 + y1) / 2
    a2, b2 = ((x1 - x0) / 2) ** 2, ((y1 - y0) / 2) ** 2
    along_x = (xs - xc) ** 2 * b2
    along_y = (ys - yc) ** 2 * a2
    limit = a2 * b2 * (1 + _BOUNDARY_TOLERANCE)
    return np.asarray(along_y[:, None] + along_x[None, :] <= limit)


def _polygon_mask(
    vertices: Sequence[tuple[float, float]],
    xs: npt.NDArray[np.float64],
    ys: npt.NDArray[np.float64],
) -> npt.NDArray[np.bool_]:
    """Centres inside the closed polygon (even-odd rule) or on one of its edges.

    Row by row of pixel centres: the crossings of that row's line with the edges (each
    edge counted over the half-open span of its ends' y, so a vertex is counted once),
    sorted; a centre is inside where an odd number of crossings lie to its left. Centres
    on an edge (within the tolerance) are added: on a crossing, or on a horizontal edge.
    """
    px = np.array([v[0] for v in vertices], dtype=np.float64)
    py = np.array([v[1] for v in vertices], dtype=np.float64)
    qx, qy = np.roll(px, -1), np.roll(py, -1)
    size = max(float(px.max() - px.min()), float(py.max() - py.min()), 1.0)
    tolerance = size * _BOUNDARY_TOLERANCE
    mask = np.zeros((ys.size, xs.size), dtype=bool)
    sloped = py != qy
    low_y, high_y = np.minimum(py, qy), np.maximum(py, qy)
    flat = ~sloped
    flat_low_x, flat_high_x = np.minimum(px, qx)[flat], np.maximum(px, qx)[flat]
    flat_y = py[flat]
    for index, y in enumerate(ys):
        spans = sloped & ((py > y) != (qy > y))
        t = (y - py[spans]) / (qy[spans] - py[spans])
        crossings = np.sort(px[spans] + t * (qx[spans] - px[spans]))
        row = (np.searchsorted(crossings, xs, side="right") % 2).astype(bool)
        # On a sloped edge: the edge's x at this y (ends included) equals the centre's.
        touching = sloped & (low_y <= y) & (high_y >= y)
        if touching.any():
            t = (y - py[touching]) / (qy[touching] - py[touching])
            on_edge = px[touching] + t * (qx[touching] - px[touching])
            row |= (np.abs(xs[:, None] - on_edge[None, :]) <= tolerance).any(axis=1)
        level = np.abs(flat_y - y) <= tolerance
        if level.any():
            row |= (
                (xs[:, None] >= flat_low_x[level][None, :] - tolerance)
                & (xs[:, None] <= flat_high_x[level][None, :] + tolerance)
            ).any(axis=1)
        mask[index] = row
    return mask


def shoelace_area(vertices: Sequence[tuple[float, float]]) -> float:
    """The area (in square pixels) of the closed polygon, by the shoelace formula."""
    px = np.array([v[0] for v in vertices], dtype=np.float64)
    py = np.array([v[1] for v in vertices], dtype=np.float64)
    return float(abs(np.dot(px, np.roll(py, -1)) - np.dot(py, np.roll(px, -1))) / 2)


def roi(kind: str, points: Sequence[tuple[float, float]], frame: FrameValues) -> dict[str, Any]:
    """Area and statistics of an ellipse, rectangle or polygon (module docstring)."""
    box = _box(points)
    width, height = box[2] - box[0], box[3] - box[1]
    if kind == "polygon":
        area_px = shoelace_area(points)
    elif kind == "ellipse":
        area_px = math.pi * (width / 2) * (height / 2)
    else:
        area_px = width * height
    if not area_px > 0:
        raise InvalidMeasurement(f"the {kind} encloses no area", code="zero_area")
    scale = frame.calibration.scale()
    result: dict[str, Any] = {
        "area": _quantity(area_px * scale[0] * scale[1], frame.calibration.area_unit)
    }
    stored = _greyscale(frame, kind)
    rows, columns, xs, ys = _centres(box, frame.rows, frame.columns)
    if kind == "rectangle":
        mask = _rectangle_mask(box, xs, ys)
    elif kind == "ellipse":
        mask = _ellipse_mask(box, xs, ys)
    else:
        mask = _polygon_mask(points, xs, ys)
    count = int(mask.sum())
    if count == 0:
        raise InvalidMeasurement(
            f"the {kind} contains no pixel centre: draw it larger", code="no_pixels"
        )
    values = np.asarray(
        pixels.modality_values(stored[rows, columns][mask], frame.view or Dataset()),
        dtype=np.float64,
    )
    kind_of_values, unit = value_kind(frame.view)
    mean = float(values.mean())
    result.update(
        {
            "mean": _quantity(mean, unit),
            "std": _quantity(float(np.sqrt(np.mean((values - mean) ** 2))), unit),
            "min": _quantity(float(values.min()), unit),
            "max": _quantity(float(values.max()), unit),
            "pixels": _quantity(count, PIXEL_COUNT),
            "values": kind_of_values,
        }
    )
    return result


def _greyscale(frame: FrameValues, kind: str) -> npt.NDArray[Any]:
    if frame.stored is None or not frame.greyscale or frame.stored.ndim != 2:
        raise InvalidMeasurement(
            f"a {kind} reads modality values, which a colour image does not have",
            code="not_greyscale",
        )
    return frame.stored


def probe(point: tuple[float, float], frame: FrameValues) -> dict[str, Any]:
    """The modality value of the pixel that contains ``point``: column ⌊x⌋, row ⌊y⌋ (the
    image's right and bottom edges belong to its last column and row)."""
    stored = _greyscale(frame, "point")
    column = min(math.floor(point[0]), frame.columns - 1)
    row = min(math.floor(point[1]), frame.rows - 1)
    found = pixels.modality_values(
        stored[row : row + 1, column : column + 1], frame.view or Dataset()
    )
    kind_of_values, unit = value_kind(frame.view)
    number = np.asarray(found).reshape(-1)[0]
    return {
        "value": _quantity(float(number), unit),
        "values": kind_of_values,
        "pixel": {"column": column, "row": row},
    }


def needs_values(kind: str) -> bool:
    """Whether ``kind`` reads pixel values (else only the frame's size and spacing)."""
    return kind in ROI_KINDS or kind == "point"


def check_kind(kind: Any) -> str:
    if not isinstance(kind, str) or kind not in KINDS:
        raise InvalidMeasurement(
            f"unknown kind {str(kind)[:40]!r}: one of {', '.join(KINDS)}", code="unknown_kind"
        )
    return kind


def validate(kind: Any, points: Any, rows: int, columns: int) -> list[tuple[float, float]]:
    """Check kind, points (shape, finiteness, count) and that each is inside the image;
    the parsed points."""
    check_kind(kind)
    parsed = parse_points(points)
    _check_count(kind, parsed)
    _check_inside(parsed, rows, columns)
    return parsed


def measure(kind: Any, points: Any, frame: FrameValues) -> dict[str, Any]:
    """The result of a ``kind`` measurement through ``points`` on ``frame`` (see the
    module docstring for the shape); raises InvalidMeasurement for bad input."""
    parsed = validate(kind, points, frame.rows, frame.columns)
    cal = frame.calibration
    if kind in ("length", "arrow"):
        result = length(parsed, cal)
    elif kind == "angle":
        result = angle(parsed, cal)
    elif kind == "point":
        result = probe(parsed[0], frame)
    else:
        result = roi(kind, parsed, frame)
    result["spacing_attribute"] = cal.attribute
    return result
