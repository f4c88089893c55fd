"""GET /dicom-web/: the conformance statement (viewer.dicomweb.conformance), as JSON and
as a page; public, and it reveals no patient data and, to the public, no CORS origins."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_json_lists_every_service_media_type_syntax_and_authentication(patient_a: Any) -> None:
    response = Client().get("/dicom-web/", headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    services = {service["name"]: service for service in body["services"]}
    assert {"QIDO-RS", "WADO-RS", "STOW-RS", "Rendered and thumbnail"} <= set(services)
    qido = services["QIDO-RS"]
    assert {"PatientID", "StudyInstanceUID", "ModalitiesInStudy", "StudyDate"} <= set(
        qido["matching_keys"]["study"]
    )
    # Every required matching key of PS3.18 Table 10.6.1-5 is supported.
    assert {
        "PerformedProcedureStepStartDate",
        "PerformedProcedureStepStartTime",
        "RequestAttributesSequence.ScheduledProcedureStepID",
        "RequestAttributesSequence.RequestedProcedureID",
    } <= set(qido["matching_keys"]["series"])
    assert "matching_keys_not_supported" not in qido
    assert {"SOPInstanceUID", "SOPClassUID", "InstanceNumber"} == set(
        qido["matching_keys"]["instance"]
    )
    paths = {r["path"] for r in qido["resources"]}
    assert "/studies/{study}/series" in paths and "/studies/{study}/instances" in paths
    wado = services["WADO-RS"]
    assert 'multipart/related; type="application/dicom"' in wado["media_types"]["instances"]
    assert "application/dicom+json" in wado["media_types"]["metadata"]
    assert any("frames" in r["path"] for r in wado["resources"])
    assert any("bulkdata" in r["path"] for r in wado["resources"])
    assert services["STOW-RS"]["resources"][0]["method"] == "POST"
    assert services["Rendered and thumbnail"]["annotation"] == ["patient", "technique"]
    syntaxes = {ts["uid"] for ts in body["transfer_syntaxes"]}
    assert {"1.2.840.10008.1.2.1", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.5"} <= syntaxes
    schemes = {a["scheme"]: a for a in body["authentication"]}
    assert set(schemes) == {"session cookie", "Bearer API token", "Bearer OIDC access token"}
    assert schemes["Bearer API token"]["enabled"] is True
    assert schemes["Bearer OIDC access token"]["enabled"] is False  # no SSO configured here
    assert body["cors"] == {"enabled": False, "credentials": False}
    # Nothing about what is stored.
    assert patient_a.study not in response.content.decode()


def test_the_page_for_a_browser(patient_a: Any) -> None:
    response = Client().get("/dicom-web/", headers={"Accept": "text/html,*/*;q=0.8"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    for text in ("QIDO-RS", "WADO-RS", "STOW-RS", "Explicit VR Little Endian", "Bearer API token"):
        assert text in page
    assert "/studies/{study}/series/{series}/instances/{instance}/frames/{frames}" in page
    assert "Off: no other origin" in page
    assert patient_a.study not in page
    assert "<script" not in page  # a static page


def test_cors_origins_are_listed_to_signed_in_users_only(
    settings: Any, logged_in_client: Client
) -> None:
    settings.LOUPE_DICOMWEB_CORS_ORIGINS = ["https://viewer.hospital.test"]
    public = Client().get("/dicom-web/?format=json").json()
    assert public["cors"] == {"enabled": True, "credentials": False}
    signed_in = logged_in_client.get("/dicom-web/", headers={"Accept": "application/json"}).json()
    assert signed_in["cors"]["origins"] == ["https://viewer.hospital.test"]


def test_only_safe_methods(logged_in_client: Client) -> None:
    assert logged_in_client.post("/dicom-web/").status_code in (403, 405)
    assert Client().head("/dicom-web/").status_code == 200


def test_the_statement_says_what_qido_rs_does(radiologist: Any) -> None:
    """Each matching key it lists is matched on; each it lists as not supported, and any
    other sequence path, is refused with a message naming it (never silently ignored)."""
    client = Client()
    client.force_login(radiologist)
    qido = {s["name"]: s for s in client.get("/dicom-web/?format=json").json()["services"]}[
        "QIDO-RS"
    ]
    routes = {
        "study": "/dicom-web/studies",
        "series": "/dicom-web/series",
        "instance": "/dicom-web/instances",
    }
    for level, keys in qido["matching_keys"].items():
        for key in keys:
            response = client.get(routes[level], {key: "*"}, HTTP_ACCEPT="application/dicom+json")
            assert response.status_code == 200, (key, response.content)
    others = ["OtherPatientIDsSequence.PatientID", "RequestAttributesSequence.AccessionNumber"]
    for key in [*qido.get("matching_keys_not_supported", []), *others]:
        refused = client.get("/dicom-web/series", {key: "1"}, HTTP_ACCEPT="application/dicom+json")
        assert refused.status_code == 400, key
        assert refused.json()["code"] == "unsupported_matching_key", key
        assert key in refused.json()["message"], key
