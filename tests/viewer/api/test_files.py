"""GET /api/studies/<study>/series/<series>/instances/<sop>/file: the stored Part 10 object,
through the gate, audited as an export."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pydicom
import pytest
from django.test import Client

from tests.conftest import client_for
from tests.factories import StoredStudy, corpus_files
from viewer.models import AuditEvent
from viewer.services import storage

pytestmark = pytest.mark.django_db


def file_url(stored: StoredStudy, instance: str | None = None) -> str:
    return (
        f"/api/studies/{stored.study}/series/{stored.series}"
        f"/instances/{instance or stored.instance}/file"
    )


def body(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def exports() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_id="110106").order_by("id"))


def test_the_file_is_the_stored_object_and_the_upload(
    shared_dicom: Path, radiologist: Any, patient_a: StoredStudy
) -> None:
    response = client_for(radiologist).get(file_url(patient_a), HTTP_ACCEPT="application/dicom")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/dicom"
    assert response["Content-Disposition"] == f'attachment; filename="{patient_a.instance}.dcm"'
    data = body(response)
    row = patient_a.row()
    assert int(response["Content-Length"]) == len(data) == row.size_bytes
    assert data == storage.read(row.storage_key)
    originals = {p.read_bytes() for p in corpus_files(shared_dicom, "ct-series", 3)}
    assert data in originals
    assert pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID == patient_a.instance


def test_the_download_is_audited_as_an_export(radiologist: Any, patient_a: StoredStudy) -> None:
    assert client_for(radiologist).get(file_url(patient_a)).status_code == 200
    [row] = exports()
    patient = patient_a.row().series.study.patient
    assert (row.action, row.outcome, row.instance_count) == ("R", 0, 1)
    assert (row.patient_id, row.issuer_of_patient_id) == (
        patient.patient_id,
        patient.issuer_of_patient_id,
    )
    assert row.study_uids == [patient_a.study]
    assert row.user_id == "radiologist" and row.channel == "direct"
    assert row.detail == {"kind": "download"}


def test_any_accept_header_gets_the_file(radiologist: Any, patient_a: StoredStudy) -> None:
    client = client_for(radiologist)
    for accept in ("*/*", "text/html", "application/json"):
        response = client.get(file_url(patient_a), HTTP_ACCEPT=accept)
        assert response.status_code == 200, accept
        assert response["Content-Type"] == "application/dicom"


def test_unknown_and_outsider_get_the_same_404(
    radiologist: Any, outsider: Any, patient_a: StoredStudy
) -> None:
    unknown = client_for(radiologist).get(file_url(patient_a, "1.2.3.4.5.6.7"))
    hidden = client_for(outsider).get(file_url(patient_a))
    assert unknown.status_code == hidden.status_code == 404
    assert unknown.json() == hidden.json() == {"code": "not_found", "message": "no such instance"}
    wrong_series = client_for(radiologist).get(
        f"/api/studies/{patient_a.study}/series/1.2.3/instances/{patient_a.instance}/file"
    )
    assert wrong_series.status_code == 404
    assert exports() == []


def test_anonymous_gets_401(patient_a: StoredStudy) -> None:
    response = Client().get(file_url(patient_a))
    assert response.status_code == 401
    assert exports() == []


def test_a_launched_clinician_gets_only_the_launched_patient(
    clinician_for_patient_a: Client, patient_a: StoredStudy, patient_b: StoredStudy
) -> None:
    assert clinician_for_patient_a.get(file_url(patient_b)).status_code == 404
    assert exports() == []
    own = clinician_for_patient_a.get(file_url(patient_a))
    assert own.status_code == 200
    assert body(own) == storage.read(patient_a.row().storage_key)
    [row] = exports()
    assert row.channel == "ehr" and row.study_uids == [patient_a.study]


def test_a_missing_stored_file_is_a_500_and_no_export(
    radiologist: Any, patient_a: StoredStudy
) -> None:
    storage.path_for(patient_a.row().storage_key).unlink()
    response = client_for(radiologist).get(file_url(patient_a))
    assert response.status_code == 500
    assert response.json()["code"] == "stored_file_missing"
    assert exports() == []
