"""The admin's pages of patients, studies, series and instances are audited like any
other view of patient data: a list is a Query, an object's page an Instances Accessed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests.conftest import client_for
from tests.viewer.hl7.studies import store_two_identities, stored_objects
from viewer.models import AuditEvent, Instance, Patient, PatientLink, Study
from viewer.services import ingest
from viewer.services.priors import priors_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(administrator: Any) -> Client:
    return client_for(administrator)


@pytest.fixture
def stored(shared_dicom: Path) -> Instance:
    for path in sorted((shared_dicom / "ct-prior-pair-mini").glob("*.dcm")):
        assert ingest.ingest_file(path).ok
    return Instance.objects.select_related("series__study__patient").order_by("id").first()  # type: ignore[return-value]


def test_every_object_page_records_its_patient_and_studies(
    admin_client: Client, stored: Instance
) -> None:
    series, study, patient = stored.series, stored.series.study, stored.series.study.patient
    pages = {
        "patient": (
            patient.pk,
            sorted(patient.studies.values_list("study_instance_uid", flat=True)),
        ),
        "study": (study.pk, [study.study_instance_uid]),
        "series": (series.pk, [study.study_instance_uid]),
        "instance": (stored.pk, [study.study_instance_uid]),
    }
    for model, (pk, studies) in pages.items():
        for page in ("change", "history"):
            suffix = "change/" if page == "change" else "history/"
            response = admin_client.get(f"/admin/viewer/{model}/{pk}/{suffix}")
            assert response.status_code == 200, (model, page)
            row = AuditEvent.objects.filter(detail={"opened": f"admin:{model}:{page}"}).get()
            assert (row.event_id, row.action, row.outcome) == ("110103", "R", 0)
            assert row.user_id == "administrator" and row.patient_id == "TEST_1"
            assert sorted(row.study_uids) == studies
    assert len(pages["patient"][1]) == 2  # both of TEST_1's studies


def test_lists_record_a_query_with_the_search_named_but_not_its_words(
    admin_client: Client, stored: Instance
) -> None:
    response = admin_client.get("/admin/viewer/patient/", {"q": "TEST"})
    assert response.status_code == 200 and b"TEST_1" in response.content
    row = AuditEvent.objects.get(event_id="110112")
    assert row.detail == {"filters": ["admin:patient", "search"]}
    assert row.instance_count == Patient.objects.count() == 1
    assert "TEST" not in str(row.detail)
    for model in ("study", "series", "instance"):
        assert admin_client.get(f"/admin/viewer/{model}/").status_code == 200
    queries = AuditEvent.objects.filter(event_id="110112")
    assert sorted(r.detail["filters"][0] for r in queries) == [
        "admin:instance",
        "admin:patient",
        "admin:series",
        "admin:study",
    ]


def test_a_page_of_an_unknown_object_records_nothing(admin_client: Client) -> None:
    response = admin_client.get("/admin/viewer/study/999999/change/")
    assert response.status_code == 302  # the admin's own "does not exist" redirect
    assert not AuditEvent.objects.filter(event_id="110103").exists()


def test_an_administrator_links_and_unlinks_identities_in_the_admin(
    admin_client: Client, shared_dicom: Path
) -> None:
    """Admin → Patient links: adding one makes the other identity's study a prior (through
    services.identity, audited as a Patient Record naming the administrator); a bad entry
    is refused on its field; deleting it separates them again. No stored object changes."""
    two = store_two_identities(shared_dicom)
    before = stored_objects()

    def prior_uids() -> list[str]:
        return [p.study.study_instance_uid for p in priors_of(two.current, Study.objects.all())]

    assert prior_uids() == []
    form = {
        "patient_id": "PLASTIC",
        "issuer_of_patient_id": "",
        "other_patient_id": "MRN-7",
        "other_issuer_of_patient_id": "NORTH",
        "kind": "link",
        "reference": "ticket 42",
    }
    refused = admin_client.post(
        "/admin/viewer/patientlink/add/",
        {**form, "other_patient_id": "PLASTIC", "other_issuer_of_patient_id": ""},
    )
    assert refused.status_code == 200  # the form again, with its error
    assert "a patient cannot be linked to itself" in refused.content.decode()
    bad = admin_client.post("/admin/viewer/patientlink/add/", {**form, "patient_id": "A\\B"})
    assert bad.status_code == 200 and not PatientLink.objects.exists()

    added = admin_client.post("/admin/viewer/patientlink/add/", form)
    assert added.status_code == 302, added.content.decode()[:2000]
    link = PatientLink.objects.get()
    assert (link.source, link.created_by, link.reference) == ("admin", "administrator", "ticket 42")
    two.current.refresh_from_db()
    assert prior_uids() == [two.other.study_instance_uid]
    records = AuditEvent.objects.filter(event_id="110110", action="C")
    assert sorted(r.patient_id for r in records) == ["MRN-7", "PLASTIC"]
    assert {r.user_id for r in records} == {"administrator"}

    assert admin_client.get("/admin/viewer/patientlink/").status_code == 200
    assert AuditEvent.objects.filter(
        event_id="110112", detail={"filters": ["admin:patientlink"]}
    ).exists()
    page = admin_client.get(f"/admin/viewer/patientlink/{link.pk}/change/")
    assert page.status_code == 200 and b"MRN-7" in page.content
    opened = AuditEvent.objects.filter(event_id="110103", detail={"opened": "admin:patientlink"})
    assert sorted(r.patient_id for r in opened) == ["MRN-7", "PLASTIC"]
    # A link is never edited in place: delete it and add another.
    edited = admin_client.post(f"/admin/viewer/patientlink/{link.pk}/change/", form)
    assert edited.status_code == 403

    deleted = admin_client.post(f"/admin/viewer/patientlink/{link.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    assert not PatientLink.objects.exists()
    two.current.refresh_from_db()
    assert prior_uids() == []
    assert AuditEvent.objects.filter(event_id="110110", action="D").count() == 2
    assert stored_objects() == before
