"""A machine client on another origin: dicomweb-client against the live Loupe with an API
token (``Authorization: Bearer``, viewer.apitokens) and no cookie: search (QIDO-RS),
metadata and rendered (WADO-RS), store (STOW-RS), each audited as the service account;
a revoked token is refused with 401 before any data is read."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from django.core.management import call_command

from viewer import apitokens
from viewer.models import ApiToken, AuditEvent, Instance

pytestmark = pytest.mark.django_db(transaction=True)


def token_for(username: str, role: str) -> str:
    out = io.StringIO()
    call_command("issue_api_token", username, "--role", role, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


def web_client(live_server: Any, token: str, session: requests.Session) -> DICOMwebClient:
    return DICOMwebClient(
        url=f"{live_server.url}/dicom-web",
        session=session,
        headers={"Authorization": f"Bearer {token}"},
    )


def test_search_metadata_rendered_and_store_with_a_bearer_token(
    live_server: Any, patient_a: Any, shared_dicom: Path
) -> None:
    token = token_for("archive-bot", "radiologist")
    session = requests.Session()
    client = web_client(live_server, token, session)

    studies = client.search_for_studies(search_filters={"StudyInstanceUID": patient_a.study})
    assert [s["0020000D"]["Value"][0] for s in studies] == [patient_a.study]
    metadata = client.retrieve_study_metadata(patient_a.study)
    assert {m["00080018"]["Value"][0] for m in metadata} >= {patient_a.instance}
    rendered = client.retrieve_instance_rendered(
        patient_a.study, patient_a.series, patient_a.instance, media_types=("image/jpeg",)
    )
    assert rendered[:2] == b"\xff\xd8"  # a JPEG
    assert not session.cookies.keys()  # no session cookie was ever set

    mr = sorted((shared_dicom / "mr-series").glob("*.dcm"))[0]
    stored = client.store_instances([pydicom.dcmread(mr)])
    referenced = stored.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
    assert referenced == pydicom.dcmread(mr, stop_before_pixels=True).SOPInstanceUID
    assert Instance.objects.filter(sop_instance_uid=referenced).exists()

    rows = AuditEvent.objects.filter(outcome=0)
    assert rows.exists() and {r.user_id for r in rows} == {"archive-bot"}
    assert {r.channel for r in rows} == {AuditEvent.Channel.API}


def test_a_revoked_token_is_refused_with_a_bearer_challenge(
    live_server: Any, patient_a: Any
) -> None:
    token = token_for("old-bot", "radiologist")
    apitokens.revoke(ApiToken.objects.get())
    response = requests.get(
        f"{live_server.url}/dicom-web/studies/{patient_a.study}/metadata",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/dicom+json"},
        timeout=10,
    )
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert "sessionid" not in response.cookies
