"""viewer.dicom.sr: measurements as a TID 1500 Measurement Report, read back with highdicom
and pydicom. Sources are real images of the shared corpus (headers only)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.factories import corpus_files
from viewer.dicom import sr


def header(path: Path) -> Dataset:
    return pydicom.dcmread(path, stop_before_pixels=True)


def series() -> sr.ReportSeries:
    return sr.ReportSeries(generate_uid(), generate_uid(), 901, "Doe^Jane")


def round_trip(dataset: Dataset) -> tuple[Dataset, Any]:
    """The report written as Part 10 and read back by pydicom and by highdicom."""
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    parsed = pydicom.dcmread(io.BytesIO(out.getvalue()))
    return parsed, hd.sr.srread(io.BytesIO(out.getvalue()))


def groups_of(report: Any) -> list[Any]:
    return list(report.content.get_planar_roi_measurement_groups())


def quantities(group: Any) -> dict[str, tuple[float, str]]:
    return {
        sr.QUANTITY_OF[(m.name.value, m.name.scheme_designator)]: (m.value, m.unit.value)
        for m in group.get_measurements()
    }


@pytest.fixture
def ct_headers(shared_dicom: Path) -> list[Dataset]:
    return [header(p) for p in corpus_files(shared_dicom, "ct-series", 2)]


def test_every_kind_round_trips_with_its_geometry_numbers_and_units(
    ct_headers: list[Dataset],
) -> None:
    first, second = ct_headers
    records = [
        sr.MeasurementRecord(
            1,
            first.SOPInstanceUID,
            "length",
            [[10, 20], [110, 20]],
            "lesion",
            result={"length": {"value": 56.4, "unit": "mm"}, "spacing_attribute": "PixelSpacing"},
        ),
        sr.MeasurementRecord(
            2,
            first.SOPInstanceUID,
            "angle",
            [[0, 0], [50, 50], [100, 0]],
            result={"angle": {"value": 90.0, "unit": "deg"}},
        ),
        sr.MeasurementRecord(
            3,
            second.SOPInstanceUID,
            "ellipse",
            [[100, 150], [300, 250]],
            "liver",
            result={
                "area": {"value": 9990.5, "unit": "mm2"},
                "mean": {"value": 55.25, "unit": "[hnsf'U]"},
                "std": {"value": 12.5, "unit": "[hnsf'U]"},
                "min": {"value": -3.0, "unit": "[hnsf'U]"},
                "max": {"value": 140.0, "unit": "[hnsf'U]"},
                "pixels": {"value": 31416, "unit": "{px}"},
            },
        ),
        sr.MeasurementRecord(4, second.SOPInstanceUID, "rectangle", [[1, 2], [11, 22]]),
        sr.MeasurementRecord(5, second.SOPInstanceUID, "polygon", [[1, 1], [9, 1], [5, 7]]),
        sr.MeasurementRecord(
            6,
            second.SOPInstanceUID,
            "point",
            [[256.5, 256.5]],
            result={"value": {"value": -1000.0, "unit": "[hnsf'U]"}},
        ),
        sr.MeasurementRecord(7, second.SOPInstanceUID, "arrow", [[5, 5], [60, 40]], "see here"),
    ]
    sources = {d.SOPInstanceUID: d for d in ct_headers}
    built = sr.build_report(sources, records, series())
    parsed, report = round_trip(built)

    assert parsed.SOPClassUID == pydicom.uid.Comprehensive3DSRStorage
    assert "PixelData" not in parsed
    assert parsed.StudyInstanceUID == first.StudyInstanceUID
    assert parsed.PatientID == first.PatientID
    assert parsed.SeriesNumber == 901
    assert parsed.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    assert isinstance(report, hd.sr.Comprehensive3DSR)
    # The evidence lists both measured images.
    evidence = {
        item.ReferencedSOPInstanceUID
        for study in parsed.CurrentRequestedProcedureEvidenceSequence
        for s in study.ReferencedSeriesSequence
        for item in s.ReferencedSOPSequence
    }
    assert evidence == {first.SOPInstanceUID, second.SOPInstanceUID}

    groups = groups_of(report)
    assert [str(g.tracking_identifier) for g in groups] == [
        "lesion",
        "angle 2",
        "liver",
        "rectangle 4",
        "polygon 5",
        "point 6",
        "see here",
    ]
    expected_geometry = [
        ("POLYLINE", [[10, 20], [110, 20]]),
        ("POLYLINE", [[0, 0], [50, 50], [100, 0]]),
        ("ELLIPSE", [[100, 200], [300, 200], [200, 150], [200, 250]]),
        ("POLYLINE", [[1, 2], [11, 2], [11, 22], [1, 22], [1, 2]]),
        ("POLYLINE", [[1, 1], [9, 1], [5, 7], [1, 1]]),
        ("POINT", [[256.5, 256.5]]),
        ("POLYLINE", [[5, 5], [60, 40]]),
    ]
    for group, record, (graphic_type, data) in zip(groups, records, expected_geometry, strict=True):
        assert group.roi.graphic_type.value == graphic_type
        np.testing.assert_allclose(group.roi.value, np.array(data, dtype=float))
        reference = group.roi.ContentSequence[0].ReferencedSOPSequence[0]
        assert reference.ReferencedSOPInstanceUID == record.sop_instance_uid
        assert reference.ReferencedSOPClassUID == first.SOPClassUID
        assert "ReferencedFrameNumber" not in reference  # single-frame CT

    assert quantities(groups[0]) == {"length": (56.4, "mm")}
    assert quantities(groups[1]) == {"angle": (90.0, "deg")}
    assert quantities(groups[2]) == {
        "area": (9990.5, "mm2"),
        "mean": (55.25, "[hnsf'U]"),
        "std": (12.5, "[hnsf'U]"),
        "min": (-3.0, "[hnsf'U]"),
        "max": (140.0, "[hnsf'U]"),
        "pixels": (31416.0, "{px}"),
    }
    assert quantities(groups[3]) == {}
    assert quantities(groups[5]) == {"value": (-1000.0, "[hnsf'U]")}
    length = groups[0].get_measurements()[0]
    assert (length.name.value, length.name.scheme_designator) == ("410668003", "SCT")
    assert length.unit.scheme_designator == "UCUM"


def test_a_tall_ellipse_names_its_vertical_axis_first(ct_headers: list[Dataset]) -> None:
    uid = ct_headers[0].SOPInstanceUID
    record = sr.MeasurementRecord(1, uid, "ellipse", [[10, 0], [30, 100]])
    _, report = round_trip(sr.build_report({uid: ct_headers[0]}, [record], series()))
    np.testing.assert_allclose(
        groups_of(report)[0].roi.value, [[20, 0], [20, 100], [10, 50], [30, 50]]
    )


def test_a_cobb_angle_is_a_polyline_of_its_two_lines_with_its_angle(
    ct_headers: list[Dataset],
) -> None:
    uid = ct_headers[0].SOPInstanceUID
    points = [[10, 10], [60, 20], [12, 80], [58, 60]]
    record = sr.MeasurementRecord(
        1, uid, "angle", points, result={"angle": {"value": 32.5, "unit": "deg"}}
    )
    _, report = round_trip(sr.build_report({uid: ct_headers[0]}, [record], series()))
    group = groups_of(report)[0]
    assert group.roi.graphic_type.value == "POLYLINE"
    np.testing.assert_allclose(group.roi.value, points)
    assert quantities(group) == {"angle": (32.5, "deg")}


def test_a_multiframe_image_is_referenced_with_its_frame(shared_dicom: Path) -> None:
    source = header(shared_dicom / "us-rgb-multiframe" / "MR_enhanced_10frames_emri_small.dcm")
    uid = source.SOPInstanceUID
    record = sr.MeasurementRecord(
        1,
        uid,
        "length",
        [[1, 1], [20, 1]],
        frame=7,
        result={"length": {"value": 19.0, "unit": "{px}"}},
    )
    _, report = round_trip(sr.build_report({uid: source}, [record], series()))
    reference = groups_of(report)[0].roi.ContentSequence[0].ReferencedSOPSequence[0]
    assert reference.ReferencedSOPClassUID == source.SOPClassUID
    assert reference.ReferencedSOPInstanceUID == uid
    assert [int(n) for n in np.atleast_1d(reference.ReferencedFrameNumber)] == [7]
    assert quantities(groups_of(report)[0]) == {"length": (19.0, "{px}")}


@pytest.mark.parametrize(
    ("kind", "points", "message"),
    [
        ("length", [[0, 0]], "a length has 2 points, not 1"),
        ("angle", [[0, 0], [1, 1]], "an angle has 3 or 4 points, not 2"),
        ("polygon", [[0, 0], [1, 1]], "a polygon has at least 3 points, not 2"),
        ("circle", [[0, 0], [1, 1]], "unknown kind 'circle'"),
        ("point", [[0, float("nan")]], "a point needs (x, y) points"),
    ],
)
def test_points_a_kind_does_not_take_are_refused(
    ct_headers: list[Dataset], kind: str, points: list[list[float]], message: str
) -> None:
    uid = ct_headers[0].SOPInstanceUID
    with pytest.raises(sr.ReportError, match=message.replace("(", r"\(").replace(")", r"\)")):
        sr.build_report(
            {uid: ct_headers[0]}, [sr.MeasurementRecord(1, uid, kind, points)], series()
        )


def test_no_measurements_and_a_missing_source_are_refused(ct_headers: list[Dataset]) -> None:
    with pytest.raises(sr.ReportError, match="no measurements"):
        sr.build_report({}, [], series())
    record = sr.MeasurementRecord(1, "1.2.3", "point", [[1, 1]])
    with pytest.raises(sr.ReportError, match=r"1\.2\.3 is not among the sources"):
        sr.build_report({}, [record], series())
