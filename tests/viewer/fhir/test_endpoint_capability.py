"""FHIR R4 Endpoint resources, the CapabilityStatement, and who may ask: share sessions
(plain and de-identified) and bearer tokens of service accounts. Every answer is parsed
by fhir.resources."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from fhir.resources.capabilitystatement import CapabilityStatement
from fhir.resources.endpoint import Endpoint
from fhir.resources.imagingstudy import ImagingStudy
from fhir.resources.operationoutcome import OperationOutcome

from tests.conftest import client_for
from tests.factories import StoredStudy
from tests.viewer.fhir.test_imagingstudy import bundle, ids
from viewer import apitokens
from viewer.models import AuditEvent

pytestmark = pytest.mark.django_db

CONNECTION_TYPE = "http://terminology.hl7.org/CodeSystem/endpoint-connection-type"


def fhir_json(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/fhir+json")
    body: dict[str, Any] = json.loads(response.content)
    return body


@pytest.fixture
def radiologist_client(radiologist: Any) -> Client:
    return client_for(radiologist)


def test_the_wado_rs_endpoint_names_the_absolute_dicomweb_base(
    radiologist_client: Client,
) -> None:
    body = fhir_json(radiologist_client.get("/fhir/Endpoint/dicomweb-wado-rs"))
    Endpoint.parse_obj(body)
    assert body["id"] == "dicomweb-wado-rs" and body["status"] == "active"
    assert body["connectionType"] == {"system": CONNECTION_TYPE, "code": "dicom-wado-rs"}
    assert body["address"] == "http://testserver/dicom-web/"
    assert "application/dicom" in body["payloadMimeType"]
    assert body["payloadType"][0]["text"] == "DICOM WADO-RS"


def test_the_iid_endpoint_names_the_invoke_image_display_url(
    radiologist_client: Client,
) -> None:
    body = fhir_json(radiologist_client.get("/fhir/Endpoint/ihe-iid"))
    Endpoint.parse_obj(body)
    assert body["connectionType"] == {"system": CONNECTION_TYPE, "code": "ihe-iid"}
    assert body["address"] == "http://testserver/ehrlaunch/IHEInvokeImageDisplay"
    # The address is the route ehrlaunch serves.
    assert radiologist_client.get("/ehrlaunch/IHEInvokeImageDisplay").status_code != 404


def test_an_unknown_endpoint_is_404(radiologist_client: Client) -> None:
    body = fhir_json(radiologist_client.get("/fhir/Endpoint/dicom-qido-rs"), 404)
    OperationOutcome.parse_obj(body)
    assert "dicomweb-wado-rs" in body["issue"][0]["diagnostics"]


def test_the_capability_statement_needs_no_session(client: Client) -> None:
    body = fhir_json(client.get("/fhir/metadata"))
    CapabilityStatement.parse_obj(body)
    assert body["fhirVersion"] == "4.0.1"
    assert body["kind"] == "instance" and "json" in body["format"]
    (rest,) = body["rest"]
    assert rest["mode"] == "server"
    by_type = {r["type"]: r for r in rest["resource"]}
    study = by_type["ImagingStudy"]
    assert [i["code"] for i in study["interaction"]] == ["read", "search-type"]
    names = {p["name"] for p in study["searchParam"]}
    assert {"patient", "subject", "identifier", "started", "modality", "_count"} <= names
    assert [i["code"] for i in by_type["Endpoint"]["interaction"]] == ["read"]
    assert fhir_json(client.get("/fhir/metadata", {"_format": "json"}))["fhirVersion"] == "4.0.1"
    OperationOutcome.parse_obj(fhir_json(client.get("/fhir/metadata", {"_format": "xml"}), 406))


def _share(radiologist_client: Client, study: StoredStudy, **fields: Any) -> Client:
    response = radiologist_client.post(
        "/api/shares",
        {"study_instance_uids": [study.study], **fields},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    guest = Client()
    opened = guest.get(response.json()["url"].split("testserver", 1)[-1], HTTP_ACCEPT="text/html")
    assert opened.status_code in (200, 302, 303), opened.status_code
    return guest


def test_a_share_session_sees_its_study_only(
    radiologist_client: Client, patient_a: StoredStudy, patient_b: StoredStudy
) -> None:
    guest = _share(radiologist_client, patient_a)
    assert ids(bundle(guest.get("/fhir/ImagingStudy"))) == [patient_a.study]
    ImagingStudy.parse_obj(fhir_json(guest.get(f"/fhir/ImagingStudy/{patient_a.study}")))
    OperationOutcome.parse_obj(fhir_json(guest.get(f"/fhir/ImagingStudy/{patient_b.study}"), 404))


def test_a_deidentified_share_session_is_refused_403(
    radiologist_client: Client, patient_a: StoredStudy
) -> None:
    guest = _share(radiologist_client, patient_a, deidentify=True)
    before = AuditEvent.objects.filter(outcome=AuditEvent.Outcome.MINOR_FAILURE).count()
    for url in ("/fhir/ImagingStudy", f"/fhir/ImagingStudy/{patient_a.study}"):
        body = fhir_json(guest.get(url), 403)
        OperationOutcome.parse_obj(body)
        assert body["issue"][0]["code"] == "forbidden"
        assert body["issue"][0]["details"]["text"] == "deidentified_share"
        assert patient_a.study not in json.dumps(body)
    assert AuditEvent.objects.filter(outcome=AuditEvent.Outcome.MINOR_FAILURE).count() > before


def test_a_service_account_bearer_token_searches_and_reads(
    radiologist: Any, patient_a: StoredStudy
) -> None:
    _, token = apitokens.issue(radiologist, "fhir test")
    machine = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert ids(bundle(machine.get("/fhir/ImagingStudy"))) == [patient_a.study]
    ImagingStudy.parse_obj(fhir_json(machine.get(f"/fhir/ImagingStudy/{patient_a.study}")))
    read = AuditEvent.objects.filter(
        event_id=AuditEvent.EventId.INSTANCES_ACCESSED, study_uids=[patient_a.study]
    ).first()
    assert read is not None and read.channel == AuditEvent.Channel.API
    assert token not in json.dumps(list(AuditEvent.objects.values("detail", "alternative_user_id")))
    wrong = Client(HTTP_AUTHORIZATION="Bearer loupe_not-a-real-token")
    assert wrong.get("/fhir/ImagingStudy").status_code == 401


def test_a_viewer_on_an_allowed_origin_searches_with_a_bearer_token(
    settings: Any, radiologist: Any, patient_a: StoredStudy, client: Client
) -> None:
    origin = "https://viewer.example.org"
    settings.LOUPE_DICOMWEB_CORS_ORIGINS = [origin]
    preflight = client.options(
        "/fhir/ImagingStudy",
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization",
    )
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == origin
    _, token = apitokens.issue(radiologist, "cross-origin viewer")
    response = client.get(
        "/fhir/ImagingStudy", HTTP_ORIGIN=origin, HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert ids(bundle(response)) == [patient_a.study]
    assert response["Access-Control-Allow-Origin"] == origin
    security = fhir_json(client.get("/fhir/metadata"))["rest"][0]["security"]
    assert security["cors"] is True
