"""POST /api/instances with one application/dicom body: the same gates and answers as
every other upload (session, CSRF, size cap, JSON results), on its own short path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests.factories import ct_small
from viewer.models import Instance

pytestmark = pytest.mark.django_db


@pytest.fixture
def csrf_client(radiologist: Any) -> tuple[Client, str]:
    """A logged-in client whose requests are CSRF-checked, and its CSRF token."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(radiologist)
    client.get("/login/")  # sets the CSRF cookie
    return client, client.cookies["csrftoken"].value


def test_without_a_csrf_token_a_session_upload_is_refused_with_403(
    csrf_client: tuple[Client, str],
) -> None:
    client, _ = csrf_client
    response = client.post("/api/instances", data=ct_small(), content_type="application/dicom")
    assert response.status_code == 403
    assert response.json() == {
        "code": "permission_denied",
        "message": "CSRF Failed: CSRF token missing.",
    }
    assert Instance.objects.count() == 0


def test_with_its_csrf_token_a_session_upload_is_stored(csrf_client: tuple[Client, str]) -> None:
    client, token = csrf_client
    response = client.post(
        "/api/instances", data=ct_small(), content_type="application/dicom", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert body["summary"] == {"stored": 1, "duplicate": 0, "replaced": 0, "rejected": 0}
    (result,) = body["results"]
    assert result["status"] == "stored" and result["source"] == "body"
    assert result["sop_instance_uid"] == Instance.objects.get().sop_instance_uid


def test_anonymous_raw_upload_gets_401_with_a_challenge() -> None:
    response = Client().post("/api/instances", data=ct_small(), content_type="application/dicom")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Session realm="loupe"'
    assert response.json() == {
        "code": "not_authenticated",
        "message": "Authentication credentials were not provided.",
    }


def test_an_inactive_user_is_not_authenticated(logged_in_client: Any, radiologist: Any) -> None:
    radiologist.is_active = False
    radiologist.save()
    response = logged_in_client.post(
        "/api/instances", data=ct_small(), content_type="application/dicom"
    )
    assert response.status_code == 401


def test_a_rejected_body_answers_with_its_status_and_one_result(logged_in_client: Any) -> None:
    response = logged_in_client.post(
        "/api/instances", data=b"not dicom at all" * 10, content_type="application/dicom"
    )
    assert response.status_code == 400
    assert response.json() == {
        "summary": {"stored": 0, "duplicate": 0, "replaced": 0, "rejected": 1},
        "results": [
            {
                "source": "body",
                "status": "rejected",
                "code": "not_dicom",
                "reason": response.json()["results"][0]["reason"],
            }
        ],
    }


def test_other_methods_are_refused_as_before(logged_in_client: Any) -> None:
    response = logged_in_client.get("/api/instances")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_a_clinician_may_not_store_through_the_raw_route(
    client: Client, django_user_model: Any
) -> None:
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user("clin", password="a-long-test-password")
    user.groups.add(Group.objects.get_or_create(name="clinician")[0])
    client.force_login(user)
    response = client.post("/api/instances", ct_small(), content_type="application/dicom")
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert not Instance.objects.exists()


def test_raw_uploads_are_audited_once_per_session_and_study(
    logged_in_client: Any, shared_dicom: Path
) -> None:
    from viewer.models import AuditEvent

    for path in sorted((shared_dicom / "ct-series").glob("*.dcm"))[:4]:
        response = logged_in_client.post(
            "/api/instances", path.read_bytes(), content_type="application/dicom"
        )
        assert response.status_code == 200
    rows = AuditEvent.objects.filter(event_id="110104")
    assert rows.count() == 1
    row = rows.get()
    assert (row.action, row.outcome, row.patient_id) == ("C", 0, "C3N-00247")
    assert Instance.objects.count() == 4
