"""Measurements as a DICOM Structured Report: TID 1500 Measurement Report, made with highdicom.

Pure: source data sets and plain measurement records in, a pydicom ``Dataset`` out; no
Django. The report is a Comprehensive 3D SR (PS3.3 A.35.13) whose content tree follows
TID 1500 "Measurement Report" (PS3.16): its observation context (TID 1001, the observer
a person), the procedure reported, and one TID 1410 "Planar ROI Measurements and
Qualitative Evaluations" group per measurement under "Imaging Measurements". Each group
has

* a tracking identifier (TID 4108): the measurement's label, or its kind and ID, and a
  UID of its own;
* the "Image Region" (111030, DCM) as a SCOORD content item (PS3.3 C.18.6) selected from
  the measured image: its SOP Class and SOP Instance UID, and (0008,1160) *Referenced
  Frame Number* when the image is multi-frame;
* one TID 300 numeric measurement per quantity, with its concept name (SNOMED CT codes
  from highdicom's ``codes``) and its UCUM unit as a coded concept.

Coordinates are image coordinates ``(x, y)`` = (column, row) in pixels with ``(0, 0)`` the
top-left corner of the top-left pixel (PS3.3 C.18.6.1.1), the same convention as
``viewer.dicom.measure``, so the points of a measurement are written unchanged. Graphic
types (PS3.3 C.18.6.1.2; SCOORD has no POLYGON, a closed POLYLINE is one):

========== ============================================================================
length     POLYLINE of its 2 points
angle      POLYLINE of its 3 points (arm, vertex, arm); a Cobb angle, POLYLINE of its 4
           points (the first line's two ends, then the second's)
ellipse    ELLIPSE of 4 points: the major axis's ends, then the minor axis's ends,
           from the two opposite corners of the bounding box
rectangle  closed POLYLINE (the 4 corners and the first again)
polygon    closed POLYLINE (the vertices and the first again)
point      POINT
arrow      POLYLINE of its points; its label is the tracking identifier's text
========== ============================================================================
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import UID, generate_uid

KINDS = ("length", "angle", "ellipse", "rectangle", "polygon", "point", "arrow")

# Concept names of the quantities of a measurement's result (TID 300 "Measurement").
# Quantities without a standard concept (the number of pixels of a region, a probe's
# value) are coded in Loupe's own scheme (a "99" designator, PS3.16 §8.2).
LOCAL_SCHEME = "99LOUPE"
QUANTITY_CONCEPTS: dict[str, hd.sr.CodedConcept] = {
    "length": hd.sr.CodedConcept.from_code(codes.SCT.Length),
    "angle": hd.sr.CodedConcept.from_code(codes.SCT.Angle),
    "area": hd.sr.CodedConcept.from_code(codes.SCT.Area),
    "mean": hd.sr.CodedConcept.from_code(codes.SCT.Mean),
    "std": hd.sr.CodedConcept.from_code(codes.SCT.StandardDeviation),
    "min": hd.sr.CodedConcept.from_code(codes.SCT.Minimum),
    "max": hd.sr.CodedConcept.from_code(codes.SCT.Maximum),
    "pixels": hd.sr.CodedConcept("pixels", LOCAL_SCHEME, "Number of pixels in region"),
    "value": hd.sr.CodedConcept("value", LOCAL_SCHEME, "Modality value at point"),
}
# The quantity each concept name stands for, for reading a report back.
QUANTITY_OF = {(c.value, c.scheme_designator): name for name, c in QUANTITY_CONCEPTS.items()}

UNIT_MEANINGS = {
    "mm": "millimeter",
    "mm2": "square millimeter",
    "deg": "degree",
    "[hnsf'U]": "Hounsfield unit",
    "{px}": "pixel",
    "{px2}": "square pixel",
    "1": "no units",
}

PROCEDURE_REPORTED = hd.sr.CodedConcept("363679005", "SCT", "Imaging procedure")


@dataclass(frozen=True)
class MeasurementRecord:
    """One measurement as the builder needs it: which image and frame (1-based), its
    kind, its points in image coordinates (PS3.3 C.18.6.1.1), its label, and its result:
    quantity name -> ``{"value": number, "unit": UCUM code}`` (other keys are ignored)."""

    id: int | str
    sop_instance_uid: str
    kind: str
    points: Sequence[Sequence[float]]
    label: str = ""
    frame: int = 1
    result: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportSeries:
    """The new series the report makes, and who made it."""

    series_instance_uid: str
    sop_instance_uid: str
    series_number: int
    observer_name: str
    manufacturer: str = "Loupe"
    series_description: str = "Measurement report"


class ReportError(ValueError):
    """A measurement the report cannot hold (unknown kind, wrong points, no source)."""


def unit_concept(unit: str) -> hd.sr.CodedConcept:
    """A UCUM unit as a coded concept (its code the unit itself, PS3.16 CID 7181)."""
    return hd.sr.CodedConcept(unit, "UCUM", UNIT_MEANINGS.get(unit, unit))


def scoord(kind: str, points: Sequence[Sequence[float]]) -> tuple[hd.sr.GraphicTypeValues, Any]:
    """The SCOORD graphic type and data of a measurement's points (table in the module
    docstring); raises ReportError for points its kind does not take."""
    a = "an" if kind[:1] in ("a", "e", "i", "o", "u") else "a"
    data = np.asarray(points, dtype=np.float64)
    if data.ndim != 2 or data.shape[1] != 2 or not np.isfinite(data).all():
        raise ReportError(f"{a} {kind} needs (x, y) points")
    count = data.shape[0]
    expected = {"length": (2,), "angle": (3, 4), "ellipse": (2,), "rectangle": (2,), "point": (1,)}
    if kind in expected and count not in expected[kind]:
        wanted = " or ".join(map(str, expected[kind]))
        raise ReportError(f"{a} {kind} has {wanted} points, not {count}")
    graphic = hd.sr.GraphicTypeValues
    if kind in ("length", "angle"):
        return graphic.POLYLINE, data
    if kind == "arrow":
        if count < 2:
            raise ReportError(f"an arrow has at least 2 points, not {count}")
        return graphic.POLYLINE, data
    if kind == "point":
        return graphic.POINT, data
    if kind == "ellipse":
        (x0, y0), (x1, y1) = data
        cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, abs(x1 - x0) / 2, abs(y1 - y0) / 2
        horizontal = [[cx - rx, cy], [cx + rx, cy]]
        vertical = [[cx, cy - ry], [cx, cy + ry]]
        axes = horizontal + vertical if rx >= ry else vertical + horizontal
        return graphic.ELLIPSE, np.array(axes)
    if kind == "rectangle":
        (x0, y0), (x1, y1) = data
        return graphic.POLYLINE, np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]])
    if kind == "polygon":
        if count < 3:
            raise ReportError(f"a polygon has at least 3 points, not {count}")
        closed = data if np.array_equal(data[0], data[-1]) else np.vstack([data, data[:1]])
        return graphic.POLYLINE, closed
    raise ReportError(f"unknown kind '{kind}'")


def is_multiframe(dataset: Dataset) -> bool:
    """An image whose IOD has (0028,0008) *Number of Frames*: its frame is referenced."""
    return "NumberOfFrames" in dataset


def measurement_group(
    record: MeasurementRecord, source: Dataset
) -> hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations:
    """One TID 1410 group: tracking identifier, image region, numeric measurements."""
    graphic_type, graphic_data = scoord(record.kind, record.points)
    frames = [int(record.frame)] if is_multiframe(source) else None
    region = hd.sr.ImageRegion(
        graphic_type=graphic_type,
        graphic_data=graphic_data,
        source_image=hd.sr.SourceImageForRegion.from_source_image(
            source, referenced_frame_numbers=frames
        ),
    )
    measurements = []
    for name, quantity in record.result.items():
        if name not in QUANTITY_CONCEPTS or not isinstance(quantity, Mapping):
            continue
        measurements.append(
            hd.sr.Measurement(
                name=QUANTITY_CONCEPTS[name],
                value=float(quantity["value"]),
                unit=unit_concept(str(quantity["unit"])),
            )
        )
    identifier = record.label or f"{record.kind} {record.id}"
    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(), identifier=identifier),
        referenced_region=region,
        measurements=measurements or None,
    )


def build_report(
    sources: Mapping[str, Dataset],
    records: Sequence[MeasurementRecord],
    series: ReportSeries,
    *,
    now: datetime.datetime | None = None,
) -> Dataset:
    """A Comprehensive 3D SR holding ``records`` as a TID 1500 Measurement Report.

    ``sources`` maps SOP Instance UID -> the measured image's data set (its pixel data
    is not needed); every record's image must be there, and all of one study. The
    report is a new instance of a new series (``series``) in that study."""
    if not records:
        raise ReportError("there are no measurements to report")
    missing = sorted({r.sop_instance_uid for r in records} - set(sources))
    if missing:
        raise ReportError(f"the measured image {missing[0]} is not among the sources")
    groups = [measurement_group(r, sources[r.sop_instance_uid]) for r in records]
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
            name=series.observer_name or "Unknown"
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_person_context=observer),
        procedure_reported=PROCEDURE_REPORTED,
        imaging_measurements=groups,
    )
    evidence = [sources[uid] for uid in dict.fromkeys(r.sop_instance_uid for r in records)]
    when = now or datetime.datetime.now(datetime.UTC)
    document = hd.sr.Comprehensive3DSR(
        evidence=evidence,
        content=report,
        series_instance_uid=UID(series.series_instance_uid),
        series_number=series.series_number,
        sop_instance_uid=UID(series.sop_instance_uid),
        instance_number=1,
        manufacturer=series.manufacturer,
        is_complete=True,
        is_final=False,
        is_verified=False,
        series_description=series.series_description,
        content_date=when.date(),
        content_time=when.time().replace(tzinfo=None),
    )
    dataset: Dataset = document
    return dataset
