"""POST /api/instances: who may upload, what comes back, and nothing half-stored."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pydicom
import pytest
from django.test import Client

from tests.factories import ct_small
from viewer.models import Instance, Patient, Series, Study
from viewer.services import storage

pytestmark = pytest.mark.django_db


def variant(change: Any) -> bytes:
    dataset = pydicom.dcmread(io.BytesIO(ct_small()))
    change(dataset)
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


def nothing_stored() -> bool:
    return (
        Instance.objects.count() == 0
        and Series.objects.count() == 0
        and Study.objects.count() == 0
        and Patient.objects.count() == 0
        and storage.all_keys() == []
    )


def test_anonymous_upload_is_refused_with_401() -> None:
    response = Client().post("/api/instances", data=ct_small(), content_type="application/dicom")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert nothing_stored()


def test_raw_upload_stores_then_reports_duplicate(logged_in_client: Any) -> None:
    first = logged_in_client.post(
        "/api/instances", data=ct_small(), content_type="application/dicom"
    )
    assert first.status_code == 200
    assert first.json()["results"][0]["status"] == "stored"
    again = logged_in_client.post(
        "/api/instances", data=ct_small(), content_type="application/dicom"
    )
    assert again.status_code == 200
    assert again.json()["results"][0]["status"] == "duplicate"
    assert Instance.objects.count() == 1 and len(storage.all_keys()) == 1
    instance = Instance.objects.get()
    assert storage.read(instance.storage_key) == ct_small()


def test_multipart_upload_returns_one_result_per_file(logged_in_client: Any) -> None:
    files = [
        ("files", ("a.dcm", ct_small())),
        ("files", ("notes.txt", b"not an image at all, just some text")),
    ]
    from django.test.client import encode_multipart

    boundary = "loupe-test-boundary"
    body = encode_multipart(boundary, {"files": [_upload(n, d) for _, (n, d) in files]})
    response = logged_in_client.post(
        "/api/instances", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert response.status_code == 202
    results = {r["source"]: r for r in response.json()["results"]}
    assert results["a.dcm"]["status"] == "stored"
    assert results["notes.txt"]["status"] == "rejected"
    assert results["notes.txt"]["code"] == "not_dicom"
    assert response.json()["summary"] == {"stored": 1, "duplicate": 0, "replaced": 0, "rejected": 1}


def _upload(name: str, data: bytes) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def test_zip_upload_stores_members_and_refuses_zip_slip(logged_in_client: Any) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("study/ct.dcm", ct_small())
        archive.writestr("../../escape.dcm", ct_small())
    response = logged_in_client.post(
        "/api/instances", data={"files": _upload("study.zip", buffer.getvalue())}
    )
    assert response.status_code == 202
    results = {r["source"]: r for r in response.json()["results"]}
    assert results["study.zip!study/ct.dcm"]["status"] == "stored"
    assert results["study.zip!../../escape.dcm"]["code"] == "unsafe_zip_entry"
    assert len(storage.all_keys()) == 1


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"", 400, "empty_file"),
        (b"GIF89a" + b"\x00" * 400, 400, "not_dicom"),
        (ct_small()[:-500], 400, "truncated"),
        (variant(lambda ds: delattr(ds, "SOPInstanceUID")), 400, "missing_uid"),
        (variant(lambda ds: setattr(ds, "StudyInstanceUID", "../../1.2")), 400, "invalid_uid"),
        (variant(lambda ds: setattr(ds, "Columns", 4096)), 400, "pixel_data_mismatch"),
    ],
)
def test_bad_input_gets_a_4xx_that_names_the_problem_and_stores_nothing(
    logged_in_client: Any, data: bytes, status: int, code: str
) -> None:
    response = logged_in_client.post("/api/instances", data=data, content_type="application/dicom")
    assert response.status_code == status
    result = response.json()["results"][0]
    assert result["code"] == code and len(result["reason"]) > 10
    assert nothing_stored()


def test_request_larger_than_the_upload_cap_is_refused_before_reading(
    logged_in_client: Any, settings: Any
) -> None:
    settings.LOUPE_MAX_UPLOAD_BYTES = 1000
    response = logged_in_client.post(
        "/api/instances", data=ct_small(), content_type="application/dicom"
    )
    assert response.status_code == 413
    assert response.json()["code"] == "upload_too_large"
    assert nothing_stored()


def test_same_sop_instance_uid_with_other_bytes_is_refused_by_default(
    logged_in_client: Any,
) -> None:
    changed = variant(lambda ds: setattr(ds, "StudyDescription", "CHANGED"))
    assert (
        logged_in_client.post(
            "/api/instances", data=ct_small(), content_type="application/dicom"
        ).status_code
        == 200
    )
    response = logged_in_client.post(
        "/api/instances", data=changed, content_type="application/dicom"
    )
    assert response.status_code == 409
    assert response.json()["results"][0]["code"] == "sop_instance_conflict"
    instance = Instance.objects.get()
    assert storage.read(instance.storage_key) == ct_small()
    assert len(storage.all_keys()) == 1


@pytest.mark.django_db(transaction=True)
def test_overwrite_policy_replaces_the_object_and_removes_the_old_file(
    logged_in_client: Any, settings: Any
) -> None:
    settings.LOUPE_DUPLICATE_POLICY = "overwrite"
    changed = variant(lambda ds: setattr(ds, "InstanceNumber", 77))
    logged_in_client.post("/api/instances", data=ct_small(), content_type="application/dicom")
    response = logged_in_client.post(
        "/api/instances", data=changed, content_type="application/dicom"
    )
    assert response.status_code == 200
    assert response.json()["results"][0]["status"] == "replaced"
    instance = Instance.objects.get()
    assert instance.instance_number == 77
    assert storage.all_keys() == [instance.storage_key]
    assert storage.read(instance.storage_key) == changed
    assert Series.objects.get().number_of_series_related_instances == 1


def test_a_study_cannot_move_to_another_patient(logged_in_client: Any) -> None:
    def move(dataset: pydicom.Dataset) -> None:
        dataset.PatientID = "SOMEONE-ELSE"
        dataset.SOPInstanceUID = "1.2.3.4.5"

    other = variant(move)
    logged_in_client.post("/api/instances", data=ct_small(), content_type="application/dicom")
    response = logged_in_client.post("/api/instances", data=other, content_type="application/dicom")
    assert response.status_code == 409
    assert response.json()["results"][0]["code"] == "patient_mismatch"
    assert Instance.objects.count() == 1 and len(storage.all_keys()) == 1


def test_a_failing_transaction_leaves_no_file(logged_in_client: Any, monkeypatch: Any) -> None:
    from django.db import DatabaseError

    from viewer.services import ingest

    def fail(*args: Any, **kwargs: Any) -> None:
        raise DatabaseError("disk full (simulated in the index, not in the file store)")

    monkeypatch.setattr(ingest, "_count_new_instance", fail)
    result = ingest.ingest_bytes(ct_small(), source="x")
    assert (result.status, result.code, result.http_status) == ("rejected", "database_error", 503)
    assert nothing_stored()
