"""The hostile study of the security tests: a real CT slice whose every text tag is markup.

``payload_study`` is pydicom's own ``CT_small.dcm`` (a real 128 × 128 CT slice) with new
UIDs and every text attribute (PN, LO, SH, ST, LT, UT, UC; the named ones below, and any
other the file holds outside the image pixel module) set to script and markup payloads,
each naming its attribute (``alert('PatientName')``) so a dialog would say which one got
through. The payloads fit their columns in the index (SH 16 characters, LO 64), so what a
page shows is the whole payload, byte for byte.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.uid import generate_uid

from tests.factories import changed, ct_small
from viewer.services import ingest

# The attributes a page or an answer shows, each with its own payload.
NAMED = {
    "PatientName": "<script>alert('PatientName')</script>",
    "PatientID": "\"><img src=x onerror=alert('PatientID')>",
    "StudyDescription": "{{7*7}}<script>alert('StudyDescription')</script>",
    "SeriesDescription": "'><svg onload=alert('SeriesDescription')>",
    "InstitutionName": "javascript:alert('InstitutionName')",
    "ReferringPhysicianName": "<img src=x onerror=alert('ReferringPhysicianName')>",
    "AccessionNumber": "javascript:alert('AccessionNumber')",
    "BodyPartExamined": '"><i onclick=x>',  # CS: 16 characters at most
    "StudyID": "{{7*7}}${7*7}",  # SH
    "OperatorsName": "</title><script>alert('OperatorsName')</script>",
    "PerformingPhysicianName": "<iframe src=javascript:alert('Performing')>",
    "ProtocolName": "</textarea><script>alert('ProtocolName')</script>",
    "StationName": '"><svg/onload=1>',  # SH
    "Manufacturer": "<a href=javascript:alert('Manufacturer')>x</a>",
    "ImageComments": "<script>alert('ImageComments')</script><!--",
    "PatientComments": "]]><script>alert('PatientComments')</script>",
}
# Any other text attribute of the file, by its VR (within the VR's length).
BY_VR = {
    "SH": "<b onclick=x>",
    "LO": "<script>alert('LO')</script>",
    "PN": "<script>alert('PN')</script>",
    "ST": "<script>alert('ST')</script>\"><img src=x onerror=alert('ST')>",
    "LT": "<script>alert('LT')</script>\"><img src=x onerror=alert('LT')>",
    "UT": "<script>alert('UT')</script>\"><img src=x onerror=alert('UT')>",
    "UC": "<script>alert('UC')</script>",
}
# Left alone: what renders the pixels or names the character set.
KEEP = {"SpecificCharacterSet", "RescaleType"}
# A measurement label (the viewer's panel, the measurements API, the SR export).
LABEL = "<script>alert('label')</script>\"><img src=x onerror=alert('label')>"


@dataclass(frozen=True)
class PayloadStudy:
    study: str
    series: str
    instance: str
    values: dict[str, str]  # keyword -> the payload it holds

    @property
    def payloads(self) -> set[str]:
        return set(self.values.values())


def payload_dataset_values() -> dict[str, str]:
    """Every text attribute of CT_small.dcm and the named ones, with their payloads."""
    dataset = pydicom.dcmread(io.BytesIO(ct_small()))
    values: dict[str, str] = {}
    for element in dataset:
        keyword = element.keyword
        if not keyword or element.tag.is_private or keyword in KEEP:
            continue
        if element.tag.group in (0x0002, 0x0028) or element.VR not in BY_VR:
            continue
        values[keyword] = BY_VR[element.VR]
    return {**values, **NAMED}


@pytest.fixture
def payload_study(tmp_path: Path) -> PayloadStudy:
    """The hostile study, stored through ingest like any upload."""
    values = payload_dataset_values()
    study, series, instance = generate_uid(), generate_uid(), generate_uid()
    data = changed(
        ct_small(),
        **values,
        StudyInstanceUID=study,
        SeriesInstanceUID=series,
        SOPInstanceUID=instance,
    )
    path = tmp_path / "payload.dcm"
    path.write_bytes(data)
    result = ingest.ingest_file(path)
    assert result.ok, result.as_dict()
    return PayloadStudy(study, series, instance, values)


def label_measurement(client: Any, study: PayloadStudy, label: str, points: list[list[int]]) -> Any:
    """POST a length measurement on the payload study labelled ``label``: its answer (201)."""
    made = client.post(
        "/api/measurements",
        {
            "study_instance_uid": study.study,
            "series_instance_uid": study.series,
            "sop_instance_uid": study.instance,
            "kind": "length",
            "points": points,
            "label": label,
        },
        content_type="application/json",
    )
    assert made.status_code == 201, made.content
    return made
