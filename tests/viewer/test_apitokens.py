"""API tokens of service accounts (viewer.apitokens): issued by the command and in the
admin, used as ``Authorization: Bearer`` on DICOMweb, refused when wrong, expired, revoked
or disabled, stored hashed, never a session, audited as the service account."""

from __future__ import annotations

import hashlib
import io
import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from viewer import apitokens
from viewer.models import ApiToken, AuditEvent

pytestmark = pytest.mark.django_db


def issue_by_command(username: str, *args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command("issue_api_token", username, *args, stdout=out, stderr=err)
    token = out.getvalue().strip()
    assert token.startswith("loupe_") and "\n" not in token
    assert token not in err.getvalue()  # the token is printed once, on stdout only
    return token


def thumbnail_url(stored: Any) -> str:
    return f"/dicom-web/studies/{stored.study}/thumbnail"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_command_issued_token_reads_images_as_its_service_account(patient_a: Any) -> None:
    token = issue_by_command("pacs-bot", "--role", "radiologist", "--name", "nightly sync")
    account = User.objects.get(username="pacs-bot")
    assert not account.has_usable_password()
    assert account.groups.filter(name="radiologist").exists()
    sessions_before = Session.objects.count()

    response = Client().get(thumbnail_url(patient_a), headers=bearer(token))

    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "image/jpeg"
    # No session was made or saved, no session cookie was set.
    assert Session.objects.count() == sessions_before
    assert "sessionid" not in response.cookies
    rows = [r for r in AuditEvent.objects.filter(outcome=0) if patient_a.study in r.study_uids]
    token_row = ApiToken.objects.get(user=account)
    assert rows
    for row in rows:
        assert row.user_id == "pacs-bot"
        assert row.channel == AuditEvent.Channel.API
        assert row.alternative_user_id == f"api-token:{token_row.pk}"
        assert token not in str(row.detail) and token not in row.alternative_user_id
    assert token_row.name == "nightly sync" and token_row.last_used_at is not None


def test_the_database_holds_only_the_tokens_hash() -> None:
    token = issue_by_command("hash-bot", "--role", "radiologist")
    row = ApiToken.objects.get()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token.startswith(row.prefix) and len(row.prefix) < len(token) // 2
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM viewer_apitoken")
        stored = " ".join(str(value) for record in cursor.fetchall() for value in record)
    assert token not in stored and token[len(row.prefix) :] not in stored


def test_an_admin_issued_token_is_shown_once_and_works(administrator: Any, patient_a: Any) -> None:
    service = User.objects.create_user("viewer-svc")
    service.set_unusable_password()
    service.save()
    service.groups.add(Group.objects.get_or_create(name="radiologist")[0])
    admin = Client()
    admin.force_login(administrator)

    response = admin.post(
        "/admin/viewer/apitoken/add/",
        {
            "user": service.pk,
            "name": "OHIF on imaging.example",
            "expires_at_0": "",
            "expires_at_1": "",
        },
        follow=True,
    )

    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    found = [re.search(r"loupe_[A-Za-z0-9_-]{40,}", m) for m in shown]
    tokens = [m.group(0) for m in found if m]
    assert len(tokens) == 1, shown
    token = tokens[0]
    row = ApiToken.objects.get(user=service)
    assert row.name == "OHIF on imaging.example" and row.token_hash == apitokens.token_hash(token)
    # Shown once: the token's own page does not show it again.
    page = admin.get(f"/admin/viewer/apitoken/{row.pk}/change/")
    assert page.status_code == 200 and token.encode() not in page.content
    assert row.prefix.encode() in page.content

    used = Client().get(thumbnail_url(patient_a), headers=bearer(token))
    assert used.status_code == 200
    assert AuditEvent.objects.filter(user_id="viewer-svc", outcome=0).exists()

    # The admin's "revoke" action ends it.
    admin.post(
        "/admin/viewer/apitoken/",
        {"action": "revoke_tokens", "_selected_action": [row.pk]},
        follow=True,
    )
    refused = Client().get(thumbnail_url(patient_a), headers=bearer(token))
    assert refused.status_code == 401
    assert refused.json()["message"] == "the API token has been revoked"


def assert_invalid_token(response: Any, message: str) -> None:
    assert response.status_code == 401, response.content[:300]
    assert response.json() == {"code": "invalid_token", "message": message}
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert response["WWW-Authenticate"].startswith("Bearer ")


def test_wrong_expired_revoked_and_disabled_tokens_are_refused(patient_a: Any) -> None:
    token = issue_by_command("bot", "--role", "radiologist")
    url = thumbnail_url(patient_a)
    client = Client()

    assert_invalid_token(client.get(url, headers=bearer(token + "x")), "the API token is not known")
    assert_invalid_token(
        client.get(url, headers=bearer("")), "the Authorization header carries no token"
    )
    assert_invalid_token(
        client.get(url, headers=bearer("not-a-loupe-token")),
        "the bearer token is not a Loupe API token",
    )

    row = ApiToken.objects.get()
    ApiToken.objects.filter(pk=row.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_invalid_token(client.get(url, headers=bearer(token)), "the API token has expired")

    ApiToken.objects.filter(pk=row.pk).update(expires_at=None)
    apitokens.revoke(ApiToken.objects.get())
    assert_invalid_token(client.get(url, headers=bearer(token)), "the API token has been revoked")

    ApiToken.objects.filter(pk=row.pk).update(revoked_at=None)
    User.objects.filter(username="bot").update(is_active=False)
    assert_invalid_token(
        client.get(url, headers=bearer(token)), "the API token's account is disabled"
    )

    # Every refusal is in the audit trail, none names the token.
    refusals = AuditEvent.objects.filter(outcome=4, detail__refused="bearer")
    assert refusals.exists()
    assert not any(token[6:] in str(r.detail) + r.user_id for r in refusals)
    assert not AuditEvent.objects.filter(outcome=0).exists()


def test_expiry_from_the_command(patient_a: Any) -> None:
    issue_by_command("short-lived", "--role", "radiologist", "--expires-days", "2")
    row = ApiToken.objects.get()
    assert row.expires_at is not None
    assert timedelta(days=1, hours=23) < row.expires_at - timezone.now() <= timedelta(days=2)
    with pytest.raises(CommandError, match="no user 'ghost'"):
        call_command("issue_api_token", "ghost", stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(CommandError, match="--expires-days"):
        call_command("issue_api_token", "short-lived", "--expires-days", "0", stdout=io.StringIO())


def test_a_clinician_service_account_sees_nothing_and_a_radiologist_sees_all(
    patient_a: Any, patient_b: Any
) -> None:
    clinician = issue_by_command("ward-bot", "--role", "clinician")
    radiologist = issue_by_command("reading-bot", "--role", "radiologist")
    client = Client()
    for stored in (patient_a, patient_b):
        assert client.get(thumbnail_url(stored), headers=bearer(clinician)).status_code == 404
        assert client.get(thumbnail_url(stored), headers=bearer(radiologist)).status_code == 200


def test_a_bearer_token_replaces_the_session_and_its_launch_scope(
    clinician_for_patient_a: Client, patient_a: Any, patient_b: Any
) -> None:
    # The launched clinician's session sees patient A only ...
    assert clinician_for_patient_a.get(thumbnail_url(patient_a)).status_code == 200
    assert clinician_for_patient_a.get(thumbnail_url(patient_b)).status_code == 404
    # ... a bearer request from the same browser is the service account alone: no scope.
    token = issue_by_command("ward-bot-2", "--role", "clinician")
    response = clinician_for_patient_a.get(thumbnail_url(patient_a), headers=bearer(token))
    assert response.status_code == 404
    assert "sessionid" not in response.cookies


def test_last_used_is_written_at_most_once_a_minute(patient_a: Any) -> None:
    token = issue_by_command("busy-bot", "--role", "radiologist")
    client = Client()
    client.get(thumbnail_url(patient_a), headers=bearer(token))
    first = ApiToken.objects.get().last_used_at
    assert first is not None
    client.get(thumbnail_url(patient_a), headers=bearer(token))
    assert ApiToken.objects.get().last_used_at == first
    ApiToken.objects.update(last_used_at=first - timedelta(minutes=2))
    client.get(thumbnail_url(patient_a), headers=bearer(token))
    assert ApiToken.objects.get().last_used_at > first  # type: ignore[operator]


def test_csrf_is_skipped_for_bearer_requests_only(radiologist: Any, patient_a: Any) -> None:
    token = issue_by_command("post-bot", "--role", "radiologist")
    url = thumbnail_url(patient_a)
    # A bearer POST passes CSRF and reaches the view (which answers GET only: 405).
    assert Client(enforce_csrf_checks=True).post(url, headers=bearer(token)).status_code == 405
    # A cookie session's POST without a CSRF token is refused by Django's CSRF check.
    session = Client(enforce_csrf_checks=True)
    session.force_login(radiologist)
    assert session.post(url).status_code == 403


def test_bearer_tokens_are_for_dicomweb_and_fhir_only(patient_a: Any) -> None:
    token = issue_by_command("api-bot", "--role", "radiologist")
    response = Client().get(f"/api/studies/{patient_a.study}", headers=bearer(token))
    assert response.status_code in (401, 403)


def test_a_bearer_stow_needs_no_csrf_token_and_is_audited_as_the_account(
    shared_dicom: Any,
) -> None:
    """STOW-RS (PS3.18 §10.5) through the whole middleware stack, with CSRF enforced."""
    token = issue_by_command("modality-bot", "--role", "radiologist")
    dataset = sorted((shared_dicom / "ct-series").glob("*.dcm"))[0].read_bytes()
    body = (
        b"--B0UNDARY\r\nContent-Type: application/dicom\r\n\r\n" + dataset + b"\r\n--B0UNDARY--\r\n"
    )
    response = Client(enforce_csrf_checks=True).post(
        "/dicom-web/studies",
        body,
        content_type='multipart/related; type="application/dicom"; boundary=B0UNDARY',
        headers={**bearer(token), "Accept": "application/dicom+json"},
    )
    assert response.status_code == 200, response.content[:300]
    assert "sessionid" not in response.cookies
    stored = AuditEvent.objects.filter(action=AuditEvent.Action.CREATE)
    assert stored.exists() and {r.user_id for r in stored} == {"modality-bot"}
