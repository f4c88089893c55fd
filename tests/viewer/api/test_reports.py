"""POST /api/studies/<uid>/measurements/sr and the download of what it stored: the round
trip from measurements made through the API to a TID 1500 SR in the archive, read back
with highdicom and pydicom; the gate and the audit trail."""

from __future__ import annotations

import io
from typing import Any

import highdicom as hd
import pydicom
import pytest

from tests.conftest import client_for
from tests.factories import StoredStudy
from viewer.dicom import sr
from viewer.models import AuditEvent, Instance
from viewer.services import storage

pytestmark = pytest.mark.django_db

ELLIPSE = [[150.0, 150.0], [350.0, 350.0]]  # a 200 × 200 px ellipse on the 512² CT
LENGTH = [[100.0, 256.5], [400.0, 256.5]]


def report_url(study: str) -> str:
    return f"/api/studies/{study}/measurements/sr"


def file_url(study: str, series: str, instance: str) -> str:
    return f"/api/studies/{study}/series/{series}/instances/{instance}/file"


def measure(client: Any, stored: StoredStudy, kind: str, points: Any, label: str = "") -> Any:
    response = client.post(
        "/api/measurements",
        {
            "study_instance_uid": stored.study,
            "series_instance_uid": stored.series,
            "sop_instance_uid": stored.instance,
            "frame": 1,
            "kind": kind,
            "points": points,
            "label": label,
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.content[:300]
    return response.json()


def body(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def quantities(group: Any) -> dict[str, dict[str, Any]]:
    return {
        sr.QUANTITY_OF[(m.name.value, m.name.scheme_designator)]: {
            "value": m.value,
            "unit": m.unit.value,
        }
        for m in group.get_measurements()
    }


def api_quantities(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: {"value": float(q["value"]), "unit": q["unit"]}
        for name, q in result.items()
        if isinstance(q, dict) and name in sr.QUANTITY_CONCEPTS
    }


def test_the_report_round_trips_and_joins_the_study(radiologist: Any, patient_a: Any) -> None:
    client = client_for(radiologist)
    length = measure(client, patient_a, "length", LENGTH, "aorta")
    ellipse = measure(client, patient_a, "ellipse", ELLIPSE, "liver")
    assert api_quantities(ellipse["result"])  # the API gave numbers to compare with

    response = client.post(report_url(patient_a.study))
    assert response.status_code == 201, response.content[:300]
    answer = response.json()
    assert answer["measurements"] == 2

    stored = Instance.objects.select_related("series__study").get(
        sop_instance_uid=answer["sop_instance_uid"]
    )
    assert stored.series.series_instance_uid == answer["series_instance_uid"]
    assert stored.series.study.study_instance_uid == patient_a.study
    assert stored.series.series_instance_uid != patient_a.series
    data = storage.read(stored.storage_key)

    parsed = pydicom.dcmread(io.BytesIO(data))
    assert parsed.SOPClassUID == pydicom.uid.Comprehensive3DSRStorage
    assert parsed.SeriesInstanceUID == answer["series_instance_uid"]
    assert parsed.StudyInstanceUID == patient_a.study
    assert parsed.Modality == "SR"
    report = hd.sr.srread(io.BytesIO(data))
    groups = list(report.content.get_planar_roi_measurement_groups())  # type: ignore[attr-defined]
    assert [str(g.tracking_identifier) for g in groups] == ["aorta", "liver"]
    for group, made in zip(groups, (length, ellipse), strict=True):
        reference = group.roi.ContentSequence[0].ReferencedSOPSequence[0]
        assert reference.ReferencedSOPInstanceUID == patient_a.instance
        assert reference.ReferencedSOPClassUID == pydicom.uid.CTImageStorage
        assert quantities(group) == api_quantities(made["result"])
    assert groups[0].roi.graphic_type == hd.sr.GraphicTypeValues.POLYLINE
    assert groups[1].roi.graphic_type == hd.sr.GraphicTypeValues.ELLIPSE
    assert groups[1].roi.value.tolist() == [[150, 250], [350, 250], [250, 150], [250, 350]]

    # It is a series of the study in the viewer's metadata, and downloads as stored.
    metadata = client.get(f"/api/studies/{patient_a.study}").json()
    series = {s["series_instance_uid"]: s for s in metadata["series"]}
    assert answer["series_instance_uid"] in series
    assert series[answer["series_instance_uid"]]["modality"] == "SR"
    download = client.get(
        file_url(patient_a.study, answer["series_instance_uid"], answer["sop_instance_uid"])
    )
    assert download.status_code == 200
    assert download["Content-Type"] == "application/dicom"
    assert f'filename="{answer["sop_instance_uid"]}.dcm"' in download["Content-Disposition"]
    assert body(download) == data
    assert AuditEvent.objects.filter(
        event_id=AuditEvent.EventId.EXPORT, study_uids=[patient_a.study]
    ).exists()


def test_a_study_without_measurements_is_400_naming_it(radiologist: Any, patient_a: Any) -> None:
    response = client_for(radiologist).post(report_url(patient_a.study))
    assert response.status_code == 400
    assert response.json()["code"] == "no_measurements"
    assert "no measurements" in response.json()["message"]
    assert not Instance.objects.filter(series__modality="SR").exists()


def test_a_study_the_user_may_not_see_is_404(
    radiologist: Any, outsider: Any, patient_a: Any
) -> None:
    measure(client_for(radiologist), patient_a, "length", LENGTH)
    response = client_for(outsider).post(report_url(patient_a.study))
    assert response.status_code == 404
    unknown = client_for(radiologist).post(report_url("1.2.3.4"))
    assert unknown.status_code == 404
    assert response.json() == unknown.json()
    assert not Instance.objects.filter(series__modality="SR").exists()


def test_the_launched_clinician_cannot_download_or_report_patient_b(
    clinician_for_patient_a: Any, radiologist: Any, patient_a: Any, patient_b: Any
) -> None:
    measure(client_for(radiologist), patient_b, "length", [[10.0, 10.0], [100.0, 10.0]])
    url = file_url(patient_b.study, patient_b.series, patient_b.instance)
    refused = clinician_for_patient_a.get(url)
    assert refused.status_code == 404
    assert clinician_for_patient_a.post(report_url(patient_b.study)).status_code == 404
    own = clinician_for_patient_a.get(
        file_url(patient_a.study, patient_a.series, patient_a.instance)
    )
    assert own.status_code == 200
    assert body(own) == storage.read(patient_a.row().storage_key)
    assert not AuditEvent.objects.filter(
        event_id=AuditEvent.EventId.EXPORT, study_uids=[patient_b.study]
    ).exists()


def test_a_launched_clinician_may_not_store_a_report(
    clinician_for_patient_a: Any, radiologist: Any, patient_a: Any
) -> None:
    measure(client_for(radiologist), patient_a, "length", LENGTH)
    response = clinician_for_patient_a.post(report_url(patient_a.study))
    assert response.status_code == 403
    assert not Instance.objects.filter(series__modality="SR").exists()
