"""The admin's pages of patients, studies, series and instances are audited like any
other view of patient data: a list is a Query, an object's page an Instances Accessed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests.conftest import client_for
from viewer.models import AuditEvent, Instance, Patient
from viewer.services import ingest

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
