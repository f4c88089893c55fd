"""``/api/patient-links``: administrators link and unlink identities; the link widens a
launched clinician's scope and the priors; nobody else may; every change is audited."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.conftest import client_for
from tests.factories import StoredStudy
from viewer.models import AuditEvent, Instance, Patient, PatientLink, Series, Study
from viewer.services import identity

pytestmark = pytest.mark.django_db

LINKS = "/api/patient-links"


def _identity(study: StoredStudy) -> dict[str, str]:
    patient_id, issuer = identity.identity_of(
        Study.objects.get(study_instance_uid=study.study).patient
    )
    return {"patient_id": patient_id, "issuer_of_patient_id": issuer}


def _body(a: StoredStudy, b: StoredStudy) -> dict[str, Any]:
    return {"patient": _identity(a), "other_patient": _identity(b)}


def _stored_rows() -> list[Any]:
    return [list(model.objects.order_by("pk").values()) for model in (Study, Series, Instance)]


def test_an_administrator_links_and_unlinks_and_the_clinicians_scope_follows(
    administrator: Any,
    clinician_for_patient_a: Client,
    patient_a: StoredStudy,
    patient_b: StoredStudy,
) -> None:
    admin = client_for(administrator)
    before = _stored_rows()
    assert clinician_for_patient_a.get(f"/api/studies/{patient_b.study}").status_code == 404

    created = admin.post(LINKS, _body(patient_a, patient_b), content_type="application/json")
    assert created.status_code == 201, created.content
    link = created.json()
    assert link["kind"] == "link" and link["source"] == "api"
    assert link["created_by"] == "administrator"
    assert {link["patient"]["patient_id"], link["other_patient"]["patient_id"]} == {
        _identity(patient_a)["patient_id"],
        _identity(patient_b)["patient_id"],
    }
    again = admin.post(LINKS, _body(patient_b, patient_a), content_type="application/json")
    assert again.status_code == 200 and again.json()["id"] == link["id"]

    assert clinician_for_patient_a.get(f"/api/studies/{patient_b.study}").status_code == 200
    priors = clinician_for_patient_a.get(f"/api/studies/{patient_a.study}/priors").json()
    assert isinstance(priors, list)  # B's MR is of 2022: a prior only if earlier than A's CT

    person = admin.get(LINKS, _identity(patient_a)).json()
    assert len(person["identities"]) == 2 and [r["id"] for r in person["links"]] == [link["id"]]
    assert len(set(Patient.objects.values_list("person_key", flat=True))) == 1

    gone = admin.delete(LINKS, _body(patient_a, patient_b), content_type="application/json")
    assert gone.status_code == 204
    assert (
        admin.delete(
            LINKS, _body(patient_a, patient_b), content_type="application/json"
        ).status_code
        == 404
    )
    assert clinician_for_patient_a.get(f"/api/studies/{patient_b.study}").status_code == 404
    assert len(set(Patient.objects.values_list("person_key", flat=True))) == 2

    assert _stored_rows() == before  # a link never touches a stored object
    records = AuditEvent.objects.filter(event_id="110110").order_by("recorded_at")
    assert [(r.action, r.user_id) for r in records] == [("C", "administrator")] * 2 + [
        ("D", "administrator")
    ] * 2
    assert {r.client_address for r in records} == {"127.0.0.1"}


def test_delete_by_id(administrator: Any, patient_a: StoredStudy, patient_b: StoredStudy) -> None:
    admin = client_for(administrator)
    link = admin.post(LINKS, _body(patient_a, patient_b), content_type="application/json").json()
    assert admin.get(f"{LINKS}/{link['id']}").json() == link
    assert admin.delete(f"{LINKS}/{link['id']}").status_code == 204
    assert admin.delete(f"{LINKS}/{link['id']}").status_code == 404
    assert admin.delete(f"{LINKS}/99999999999999999999999").status_code == 404
    assert not PatientLink.objects.exists()


def test_nobody_else_may_link(
    radiologist: Any,
    clinician_for_patient_a: Client,
    patient_a: StoredStudy,
    patient_b: StoredStudy,
) -> None:
    body = _body(patient_a, patient_b)
    for client in (client_for(radiologist), clinician_for_patient_a):
        assert client.post(LINKS, body, content_type="application/json").status_code == 403
        assert client.delete(LINKS, body, content_type="application/json").status_code == 403
        assert client.get(LINKS, _identity(patient_a)).status_code == 403
    assert Client().post(LINKS, body, content_type="application/json").status_code == 401
    assert not PatientLink.objects.exists()
    assert not AuditEvent.objects.filter(event_id="110110").exists()


def test_a_post_without_its_csrf_token_is_refused(administrator: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(administrator)
    body = {"patient": {"patient_id": "A"}, "other_patient": {"patient_id": "B"}}
    assert client.post(LINKS, body, content_type="application/json").status_code == 403
    assert not PatientLink.objects.exists()


@pytest.mark.parametrize(
    ("body", "code", "named"),
    [
        ({"other_patient": {"patient_id": "B"}}, "missing_field", "patient"),
        ({"patient": {"patient_id": "A"}}, "missing_field", "other_patient"),
        (
            {"patient": {}, "other_patient": {"patient_id": "B"}},
            "missing_field",
            "patient.patient_id",
        ),
        ({"patient": "A", "other_patient": {"patient_id": "B"}}, "bad_patient_link", "patient"),
        (
            {"patient": {"patient_id": "A" * 65}, "other_patient": {"patient_id": "B"}},
            "bad_patient_link",
            "patient.patient_id",
        ),
        (
            {
                "patient": {"patient_id": "A"},
                "other_patient": {"patient_id": "B", "issuer_of_patient_id": 3},
            },
            "bad_patient_link",
            "other_patient.issuer_of_patient_id",
        ),
        (
            {"patient": {"patient_id": "A"}, "other_patient": {"patient_id": "A"}},
            "bad_patient_link",
            "itself",
        ),
        (
            {"patient": {"patient_id": "A"}, "other_patient": {"patient_id": "B"}, "kind": "x"},
            "bad_patient_link",
            "kind",
        ),
        (
            {"patient": {"patient_id": "A"}, "other_patient": {"patient_id": "B"}, "x": 1},
            "unknown_field",
            "x",
        ),
        ([1, 2], "invalid_body", "JSON object"),
    ],
)
def test_a_bad_body_is_a_400_naming_the_field(
    administrator: Any, body: Any, code: str, named: str
) -> None:
    response = client_for(administrator).post(LINKS, body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == code and named in response.json()["message"]
    assert not PatientLink.objects.exists()


def test_malformed_json_is_a_400(administrator: Any) -> None:
    response = client_for(administrator).post(LINKS, "{no", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_reading_the_cross_reference_is_audited(
    administrator: Any, patient_a: StoredStudy, patient_b: StoredStudy
) -> None:
    admin = client_for(administrator)
    link = admin.post(LINKS, _body(patient_a, patient_b), content_type="application/json").json()
    assert admin.get(LINKS, _identity(patient_a)).status_code == 200
    person = AuditEvent.objects.filter(event_id="110103", detail={"opened": "api:patient-links"})
    assert sorted(r.patient_id for r in person) == sorted(
        [_identity(patient_a)["patient_id"], _identity(patient_b)["patient_id"]]
    )
    assert {r.user_id for r in person} == {"administrator"}
    assert admin.get(f"{LINKS}/{link['id']}").status_code == 200
    one = AuditEvent.objects.filter(event_id="110103", detail={"opened": "api:patient-link"})
    assert one.count() == 2
