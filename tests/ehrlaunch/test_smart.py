"""SMART App Launch (EHR launch) against a SMART-capable authorization server on loopback
(npm oidc-provider returning ``patient`` and ``fhirContext`` in its token response) and a
small FHIR server that checks the bearer token: iss + launch -> discovery -> authorize with
PKCE -> token -> Patient and ImagingStudy -> the study opens, bound to that patient."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from django.contrib.sessions.models import Session
from django.test import Client
from playwright.sync_api import Page, expect

from ehrlaunch import smart
from ehrlaunch.errors import LaunchRefused
from ehrlaunch.models import EhrSystem
from tests.ehrlaunch.conftest import (
    FHIR_CLIENT_ID,
    FHIR_CLIENT_SECRET,
    SMART_CLIENT_ID,
    SMART_CLIENT_SECRET,
)
from tests.ehrlaunch.fhir_server import FhirServer
from tests.ehrlaunch.test_sso import sign_in_at_provider
from tests.servers import Server
from viewer.access import SESSION_SCOPE
from viewer.models import Study
from viewer.services import ingest

MRN_SYSTEM = "urn:oid:2.16.840.1.113883.19.5"
PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "pat-test1",
    "identifier": [
        {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "999-99-9999"},
        {
            "system": MRN_SYSTEM,
            "value": "TEST_1",
            "type": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}
                ]
            },
        },
    ],
}
IMAGING_STUDY: dict[str, Any] = {
    "resourceType": "ImagingStudy",
    "id": "is-2",
    "status": "available",
    "subject": {"reference": "Patient/pat-test1"},
    "identifier": [
        {"system": "urn:dicom:uid", "value": "urn:oid:2.3.4"},
        {"type": {"coding": [{"code": "ACSN"}]}, "value": "2345"},
    ],
}
RESOURCES: dict[str, dict[str, Any]] = {
    "Patient/pat-test1": PATIENT,
    "ImagingStudy/is-2": IMAGING_STUDY,
}
# Addresses that are never contacted: an unregistered FHIR server, a "provider" on port 9.
NOWHERE = "http://127.0.0.1:9"


@pytest.fixture
def archive(shared_dicom: Path) -> Study:
    """TEST_1's two CT studies, and another patient's MR study (crlab)."""
    for path in sorted((shared_dicom / "ct-prior-pair-mini").iterdir()):
        assert ingest.ingest_file(path).status == "stored"
    assert ingest.ingest_file(sorted((shared_dicom / "mr-series").iterdir())[0]).status == "stored"
    return Study.objects.get(patient__patient_id="crlab")


def register(fhir: FhirServer, auth_origin: str) -> EhrSystem:
    ehr = EhrSystem(
        name="Test EHR (SMART)",
        issuer="test-ehr-smart",
        fhir_base_url=fhir.base,
        smart_client_id=SMART_CLIENT_ID,
        smart_client_secret=SMART_CLIENT_SECRET,
        smart_server_origins=auth_origin,
        role_mapping={"Practitioner": "clinician"},
        # This archive stores the EHR's MRNs as Patient ID without an issuer.
        patient_identifier_systems={MRN_SYSTEM: ""},
    )
    ehr.full_clean()
    ehr.save()
    return ehr


@pytest.fixture
def fhir(idp: Server) -> Iterator[FhirServer]:
    server = FhirServer(idp, (FHIR_CLIENT_ID, FHIR_CLIENT_SECRET), RESOURCES)
    yield server
    server.stop()


@pytest.fixture
def offline_fhir() -> Iterator[FhirServer]:
    """A FHIR server whose SMART configuration names an authorization server on port 9."""
    server = FhirServer(None, ("", ""), RESOURCES)
    server.smart_configuration = {
        "issuer": NOWHERE,
        "authorization_endpoint": f"{NOWHERE}/authorize",
        "token_endpoint": f"{NOWHERE}/token",
        "jwks_uri": f"{NOWHERE}/jwks",
        "code_challenge_methods_supported": ["S256"],
    }
    yield server
    server.stop()


def new_launch(idp: Server, fhir: FhirServer, study: str = "ImagingStudy/is-2") -> str:
    response = requests.post(
        f"{idp.url}/test/launches",
        json={"patient": "pat-test1", "fhirContext": [{"reference": study}], "aud": fhir.base},
        timeout=10,
    )
    launch: str = response.json()["launch"]
    return launch


def launch_url(live_server: Any, fhir: FhirServer, launch: str) -> str:
    return f"{live_server.url}/ehrlaunch/smart?{urlencode({'iss': fhir.base, 'launch': launch})}"


# -- end to end in Chromium --------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.idp
@pytest.mark.django_db(transaction=True)
def test_a_smart_launch_opens_the_study_bound_to_the_patient(
    page: Page, live_server: Any, idp: Server, fhir: FhirServer, archive: Study, artifacts_dir: Path
) -> None:
    register(fhir, idp.url)
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url))
    page.goto(launch_url(live_server, fhir, new_launch(idp, fhir)))
    sign_in_at_provider(page, idp, "cli")  # a Practitioner: clinician at this EHR

    expect(page).to_have_url(f"{live_server.url}/viewer/2.3.4/", timeout=20_000)
    expect(page.locator(".viewport.active .overlay.bottom-left")).to_contain_text("Im 1/1")
    # The image itself is drawn, not only the overlay.
    expect(page.locator(".viewport.active canvas")).to_have_attribute(
        "data-url", re.compile(r"/rendered"), timeout=15_000
    )
    page.screenshot(path=str(artifacts_dir / "smart-launch-study.png"))
    assert fhir.requests == [
        "GET /fhir/.well-known/smart-configuration",
        "GET /fhir/Patient/pat-test1",
        "GET /fhir/ImagingStudy/is-2",
    ]
    # The access token went to the FHIR server only: not into a URL or a session.
    assert len(set(fhir.tokens)) == 1
    token = fhir.tokens[0]
    assert not any(token in url for url in urls)
    sessions = [s.get_decoded() for s in Session.objects.all()]
    assert not any(token in repr(data) for data in sessions)
    (scope,) = [data[SESSION_SCOPE] for data in sessions if SESSION_SCOPE in data]
    assert scope["role"] == "clinician" and scope["channel"] == "ehr"
    assert scope["patients"] == [["TEST_1", ""]] and scope["studies"] == ["2.3.4"]
    assert scope["alternative_user"] == "Practitioner/pr-2002"

    # The session sees this patient's two studies and nothing of anyone else's.
    page.goto(f"{live_server.url}/")
    expect(page.locator("p.count")).to_have_text("2 studies")
    page.screenshot(path=str(artifacts_dir / "smart-launch-worklist.png"))
    other = page.request.get(f"{live_server.url}/viewer/{archive.study_instance_uid}/")
    assert other.status == 404


@pytest.mark.e2e
@pytest.mark.idp
@pytest.mark.django_db(transaction=True)
def test_a_fhir_server_refusing_the_token_ends_on_an_error_page(
    page: Page, live_server: Any, idp: Server, fhir: FhirServer, archive: Study, artifacts_dir: Path
) -> None:
    register(fhir, idp.url)
    fhir.reject_tokens = True
    responses: list[int] = []
    page.on(
        "response",
        lambda r: responses.append(r.status) if "/ehrlaunch/smart/callback" in r.url else None,
    )
    page.goto(launch_url(live_server, fhir, new_launch(idp, fhir)))
    sign_in_at_provider(page, idp, "cli")
    expect(page.locator(".error-page")).to_contain_text(
        "refused Loupe's access token (HTTP 401) when reading the launch's Patient",
        timeout=20_000,
    )
    assert responses == [403]
    page.screenshot(path=str(artifacts_dir / "smart-launch-fhir-401.png"))
    page.goto(f"{live_server.url}/")  # no session was opened
    expect(page).to_have_url(f"{live_server.url}/login/?next=/")


@pytest.mark.e2e
@pytest.mark.idp
@pytest.mark.django_db(transaction=True)
def test_a_user_type_without_a_role_mapping_is_refused(
    page: Page, live_server: Any, idp: Server, fhir: FhirServer, archive: Study
) -> None:
    register(fhir, idp.url)
    page.goto(launch_url(live_server, fhir, new_launch(idp, fhir)))
    sign_in_at_provider(page, idp, "porter")  # fhirUser RelatedPerson/...: not mapped
    expect(page.locator(".error-page")).to_contain_text("a RelatedPerson user has no Loupe role")
    assert fhir.requests == ["GET /fhir/.well-known/smart-configuration"]  # no FHIR read


# -- the launch and callback without a browser ---------------------------------------------


def start(client: Client, fhir: FhirServer, launch: str = "opaque-launch-1") -> Any:
    return client.get("/ehrlaunch/smart", {"iss": fhir.base, "launch": launch})


@pytest.mark.django_db
def test_an_unregistered_iss_is_refused_without_contacting_it(
    client: Client, offline_fhir: FhirServer
) -> None:
    response = start(client, offline_fhir)
    assert response.status_code == 403
    assert "not registered with Loupe" in response.content.decode()
    assert offline_fhir.requests == []


@pytest.mark.django_db
def test_the_authorize_request_carries_launch_aud_state_and_pkce(
    client: Client, offline_fhir: FhirServer
) -> None:
    register(offline_fhir, NOWHERE)
    response = start(client, offline_fhir, "opaque-launch-1")
    assert response.status_code == 303
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{NOWHERE}/authorize"
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["response_type"] == "code"
    assert query["client_id"] == SMART_CLIENT_ID
    assert query["redirect_uri"] == "http://testserver/ehrlaunch/smart/callback"
    assert query["launch"] == "opaque-launch-1"
    assert query["aud"] == offline_fhir.base
    assert set(query["scope"].split()) >= {
        "launch",
        "openid",
        "fhirUser",
        "patient/ImagingStudy.rs",
    }
    assert len(query["state"]) >= 43  # 256 random bits (SMART asks for >= 122)
    assert query["code_challenge_method"] == "S256"
    pending = client.session[smart.SESSION_SMART][query["state"]]
    digest = hashlib.sha256(pending["verifier"].encode()).digest()
    assert query["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert pending["nonce"] == query["nonce"]
    assert "access_token" not in repr(dict(client.session))
    assert response["Referrer-Policy"] == "no-referrer"


@pytest.mark.django_db
def test_a_callback_with_a_foreign_state_is_refused(
    client: Client, offline_fhir: FhirServer
) -> None:
    register(offline_fhir, NOWHERE)
    start(client, offline_fhir)
    response = client.get("/ehrlaunch/smart/callback", {"code": "c", "state": "forged-state"})
    assert response.status_code == 403
    assert "unknown or expired state" in response.content.decode()
    assert "text/html" in response["Content-Type"]


@pytest.mark.django_db
def test_an_authorization_error_is_shown_and_spends_the_state(
    client: Client, offline_fhir: FhirServer
) -> None:
    register(offline_fhir, NOWHERE)
    state = parse_qs(urlsplit(start(client, offline_fhir)["Location"]).query)["state"][0]
    response = client.get("/ehrlaunch/smart/callback", {"error": "access_denied", "state": state})
    assert response.status_code == 403
    assert "denied the launch (access_denied)" in response.content.decode()
    assert state not in client.session[smart.SESSION_SMART]


@pytest.mark.django_db
def test_endpoints_on_unregistered_origins_are_refused(
    client: Client, offline_fhir: FhirServer
) -> None:
    register(offline_fhir, "")  # the authorization server's origin was not registered
    response = start(client, offline_fhir)
    assert response.status_code == 502
    assert "unregistered origin" in response.content.decode()
    assert offline_fhir.requests == ["GET /fhir/.well-known/smart-configuration"]


@pytest.mark.django_db
def test_a_launch_needs_iss_and_launch(client: Client) -> None:
    response = client.get("/ehrlaunch/smart", {"launch": "x"})
    assert response.status_code == 400
    assert "needs both iss and launch" in response.content.decode()


# -- FHIR resources to DICOM identifiers ---------------------------------------------------


def test_the_patient_is_the_mrn_and_urn_oid_systems_map_to_issuers() -> None:
    ehr = EhrSystem(fhir_base_url="https://ehr.test/fhir")
    ref = smart.patient_ref_from_fhir(PATIENT, ehr)
    assert ref.pairs() == (("TEST_1", "2.16.840.1.113883.19.5"),)
    ehr.patient_identifier_systems = {MRN_SYSTEM: ""}
    assert smart.patient_ref_from_fhir(PATIENT, ehr).pairs() == (("TEST_1", ""),)
    ehr.patient_identifier_systems = {}
    with pytest.raises(LaunchRefused, match="no identifier Loupe can match"):
        smart.patient_ref_from_fhir({"identifier": [PATIENT["identifier"][0]]}, ehr)


def test_the_study_uid_comes_from_the_dicom_uid_identifier() -> None:
    assert smart.study_uid_from_fhir(IMAGING_STUDY) == "2.3.4"
    with pytest.raises(LaunchRefused, match="no Study Instance UID"):
        smart.study_uid_from_fhir({"identifier": [{"system": "urn:dicom:uid", "value": "x.y"}]})


def test_fhir_context_references_are_read_relative_or_absolute() -> None:
    ehr = EhrSystem(fhir_base_url="https://ehr.test/fhir")
    context = [
        {"reference": "ImagingStudy/a1"},
        {"reference": "https://ehr.test/fhir/ImagingStudy/b2"},
        {"reference": "DiagnosticReport/c3"},
    ]
    assert smart.imaging_study_ids(context, ehr) == ["a1", "b2"]
    with pytest.raises(LaunchRefused, match="malformed ImagingStudy"):
        smart.imaging_study_ids([{"reference": "ImagingStudy/../../x"}], ehr)
