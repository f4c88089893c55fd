"""viewer.dicom.index: the fields Loupe indexes — dates, times, text, window presets —
as tables, the whole of index_fields on a real slice, and the series' Performed
Procedure Step start and Request Attributes items."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset

from tests.factories import ct_small
from viewer.dicom.index import (
    LONG_TEXT,
    MAX_REQUEST_ATTRIBUTES,
    index_fields,
    parse_da,
    parse_tm,
    request_attributes,
    text,
    window_presets,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("20100227", dt.date(2010, 2, 27)),
        ("2010.02.27", dt.date(2010, 2, 27)),  # ACR-NEMA
        (" 20100227 ", dt.date(2010, 2, 27)),
        ("20100230", None),  # no 30 February
        ("201002", None),
        ("", None),
        (None, None),
        ("2010-02-27", None),
    ],
)
def test_dates(raw: Any, expected: dt.date | None) -> None:
    assert parse_da(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("093425.394", dt.time(9, 34, 25, 394000)),
        ("0934", dt.time(9, 34)),
        ("09", dt.time(9)),
        ("09:34:25", dt.time(9, 34, 25)),  # ACR-NEMA colons
        ("235960", dt.time(23, 59, 59)),  # TM allows a leap second
        ("2500", None),
        ("9", None),
        ("", None),
    ],
)
def test_times(raw: str, expected: dt.time | None) -> None:
    assert parse_tm(raw) == expected


@pytest.mark.parametrize(
    ("raw", "limit", "expected"),
    [
        ("  CHEST  ", 64, "CHEST"),
        ("A\x00B", 64, "AB"),
        (["CT", "PT"], 64, "CT\\PT"),
        ("x" * 80, 64, "x" * 64),
        (None, 64, ""),
    ],
)
def test_text(raw: Any, limit: int, expected: str) -> None:
    assert text(raw, limit) == expected


def header(**values: Any) -> Dataset:
    found = Dataset()
    for keyword, value in values.items():
        setattr(found, keyword, value)
    return found


def lut_item(explanation: str) -> Dataset:
    return header(LUTDescriptor=[4, 0, 8], LUTData=[0, 80, 160, 255], LUTExplanation=explanation)


PRESET_CASES = [
    (
        "two windows with their explanations",
        header(
            WindowCenter=[-500, 40],
            WindowWidth=[1500, 400],
            WindowCenterWidthExplanation=["LUNG", "SOFT"],
        ),
        [("window", -500.0, 1500.0, "LINEAR", "LUNG"), ("window", 40.0, 400.0, "LINEAR", "SOFT")],
    ),
    (
        "a VOI LUT Function applies to every window",
        header(WindowCenter=2048, WindowWidth=4096, VOILUTFunction="SIGMOID"),
        [("window", 2048.0, 4096.0, "SIGMOID", "")],
    ),
    (
        "a window with no width, or a width of 0, is no preset",
        header(WindowCenter=[40, 50], WindowWidth=[0, ""]),
        [],
    ),
    (
        "VOI LUTs follow the windows, with their explanations",
        header(
            WindowCenter=40,
            WindowWidth=400,
            VOILUTSequence=[lut_item("NORMAL"), lut_item("HARDER")],
        ),
        [("window", 40.0, 400.0, "LINEAR", ""), ("lut", 0, "NORMAL"), ("lut", 1, "HARDER")],
    ),
    (
        "enhanced: the Frame VOI LUT functional group",
        header(
            SharedFunctionalGroupsSequence=[
                header(FrameVOILUTSequence=[header(WindowCenter=300, WindowWidth=600)])
            ]
        ),
        [("window", 300.0, 600.0, "LINEAR", "")],
    ),
    ("no VOI in the header", header(Rows=2), []),
]


def summary(preset: dict[str, Any]) -> tuple[Any, ...]:
    if preset["kind"] == "lut":
        return ("lut", preset["index"], preset["explanation"])
    return ("window", preset["center"], preset["width"], preset["function"], preset["explanation"])


@pytest.mark.parametrize(
    ("what", "data", "expected"), PRESET_CASES, ids=[c[0] for c in PRESET_CASES]
)
def test_window_presets(what: str, data: Dataset, expected: list[tuple[Any, ...]]) -> None:
    assert [summary(p) for p in window_presets(data)] == expected


def test_index_fields_of_a_real_slice() -> None:
    dataset = pydicom.dcmread(io.BytesIO(ct_small()))
    fields = index_fields(dataset, number_of_frames=1, transfer_syntax_uid="1.2.840.10008.1.2.1")
    assert fields.patient["patient_id"] == str(dataset.PatientID)
    assert fields.study["study_instance_uid"] == str(dataset.StudyInstanceUID)
    assert fields.series["modality"] == "CT"
    instance = fields.instance
    assert (instance["rows"], instance["columns"], instance["number_of_frames"]) == (128, 128, 1)
    assert instance["spacing_attribute"] == "PixelSpacing"
    assert instance["pixel_spacing_row_mm"] == pytest.approx(float(dataset.PixelSpacing[0]))
    assert instance["rescale_slope"] == pytest.approx(float(dataset.RescaleSlope))
    assert instance["image_position_patient"] == [float(v) for v in dataset.ImagePositionPatient]
    assert instance["transfer_syntax_uid"] == "1.2.840.10008.1.2.1"


# -- the series keys of PS3.18 Table 10.6.1-5: PPS start, Request Attributes ---------------


def request_item(**values: str) -> Dataset:
    item = Dataset()
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


def series_fields(dataset: Dataset) -> dict[str, Any]:
    fields = index_fields(dataset, number_of_frames=1, transfer_syntax_uid="1.2.840.10008.1.2.1")
    return fields.series


def test_performed_procedure_step_start_of_a_real_ct(shared_dicom: Path) -> None:
    dataset = pydicom.dcmread(shared_dicom / "ct-series" / "000000.dcm", stop_before_pixels=True)
    series = series_fields(dataset)
    assert series["performed_procedure_step_start_date"] == dt.date(2010, 2, 27)
    assert series["performed_procedure_step_start_time"] == dt.time(16, 19, 37, 171000)
    assert (series["scheduled_procedure_step_ids"], series["requested_procedure_ids"]) == ("", "")


def test_request_attributes_of_a_real_mammogram(shared_dicom: Path) -> None:
    dataset = pydicom.dcmread(
        shared_dicom / "presets" / "MG_GE_Senographe_3presets_VOILUT.dcm", stop_before_pixels=True
    )
    assert request_attributes(dataset) == (("ANON-1234", "ANON-1234"),)
    series = series_fields(dataset)
    assert series["scheduled_procedure_step_ids"] == "ANON-1234"
    assert series["requested_procedure_ids"] == "ANON-1234"
    assert series["performed_procedure_step_start_date"] is None  # not in this object


def test_request_attributes_items_by_position_repeats_and_bad_ids_left_out() -> None:
    dataset = pydicom.dcmread(io.BytesIO(ct_small()))
    dataset.RequestAttributesSequence = [
        request_item(ScheduledProcedureStepID="SPS-1", RequestedProcedureID="RP-1"),
        request_item(RequestedProcedureID="RP-2"),  # no Scheduled Procedure Step ID
        request_item(ScheduledProcedureStepID="SPS-1", RequestedProcedureID="RP-1"),  # again
        request_item(ScheduledProcedureStepID="", RequestedProcedureID=""),  # nothing
        request_item(ScheduledProcedureStepID="A\\B", RequestedProcedureID="RP-3"),  # VM 2
        request_item(ScheduledProcedureStepID="SPS-" + "9" * 13, RequestedProcedureID="RP-4"),
    ]
    assert request_attributes(dataset) == (
        ("SPS-1", "RP-1"),
        ("", "RP-2"),
        ("", "RP-3"),  # an unusable ID is left empty, never cut or split
        ("", "RP-4"),
    )
    series = series_fields(dataset)
    assert series["scheduled_procedure_step_ids"] == "SPS-1\\\\\\"
    assert series["requested_procedure_ids"] == "RP-1\\RP-2\\RP-3\\RP-4"


def test_request_attributes_are_bounded() -> None:
    dataset = pydicom.dcmread(io.BytesIO(ct_small()))
    dataset.RequestAttributesSequence = [
        request_item(ScheduledProcedureStepID=f"{i:016d}", RequestedProcedureID=str(i))
        for i in range(MAX_REQUEST_ATTRIBUTES + 10)
    ]
    found = request_attributes(dataset)
    # 15 IDs of 16 characters and their 14 backslashes fill 254 of the column's 255.
    assert len(found) == 15 < MAX_REQUEST_ATTRIBUTES
    assert len(series_fields(dataset)["scheduled_procedure_step_ids"]) <= LONG_TEXT
    dataset.RequestAttributesSequence = [
        request_item(ScheduledProcedureStepID=str(i)) for i in range(MAX_REQUEST_ATTRIBUTES + 10)
    ]
    assert len(request_attributes(dataset)) == MAX_REQUEST_ATTRIBUTES
