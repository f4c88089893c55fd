"""The audit trail over HTTP: what each route records, fail-closed, and who-saw-this-patient."""

from __future__ import annotations

import base64
import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from viewer import access, requester
from viewer.models import AuditEvent, Instance, Study
from viewer.services import ingest

pytestmark = pytest.mark.django_db

CT_PATIENT = "C3N-00247"
PASSWORD = "a-long-test-password"
INSTANT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")  # FHIR instant, UTC


@pytest.fixture
def ct(shared_dicom: Path) -> list[Instance]:
    """Three slices of the CT series (one study of patient C3N-00247)."""
    for path in sorted((shared_dicom / "ct-series").glob("*.dcm"))[:3]:
        assert ingest.ingest_file(path).ok
    return list(Instance.objects.select_related("series__study__patient").order_by("id"))


@pytest.fixture
def mini(shared_dicom: Path) -> list[Study]:
    """Two studies (1.2.3 and 2.3.4) of patient TEST_1, one image each."""
    for path in sorted((shared_dicom / "ct-prior-pair-mini").glob("*.dcm")):
        assert ingest.ingest_file(path).ok
    return list(Study.objects.filter(patient__patient_id="TEST_1").order_by("study_instance_uid"))


def url(instance: Instance, suffix: str) -> str:
    series = instance.series
    return (
        f"/dicom-web/studies/{series.study.study_instance_uid}/series/{series.series_instance_uid}"
        f"/instances/{instance.sop_instance_uid}/{suffix}"
    )


def study_uid(instance: Instance) -> str:
    return instance.series.study.study_instance_uid


def image_reads() -> list[AuditEvent]:
    """The aggregated image-access rows (110103 R, not "opened", not refused)."""
    return list(AuditEvent.objects.filter(event_id="110103", outcome=0, detail={}))


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


# Image access: one row per user, patient, study, session and outcome.


def test_many_tiles_and_renders_of_one_study_in_one_session_make_one_row(
    logged_in_client: Client, ct: list[Instance], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        first = logged_in_client.get(url(ct[0], "frames/1/tiles/0/0/0"))
    assert first.status_code == 200
    for instance in ct:
        for suffix in ("rendered", "frames/1/rendered", "frames/1/tiles/0/1/1", "thumbnail"):
            assert logged_in_client.get(url(instance, suffix)).status_code == 200
    series = ct[0].series
    assert logged_in_client.get(f"/api/studies/{study_uid(ct[0])}").status_code == 200
    base = f"/dicom-web/studies/{study_uid(ct[0])}"
    assert logged_in_client.get(f"{base}/thumbnail").status_code == 200
    assert (
        logged_in_client.get(f"{base}/series/{series.series_instance_uid}/thumbnail").status_code
        == 200
    )
    (row,) = image_reads()
    assert (row.user_id, row.patient_id, row.study_uids) == (
        "radiologist",
        CT_PATIENT,
        [study_uid(ct[0])],
    )
    assert (row.action, row.client_address, row.channel) == ("R", "127.0.0.1", "direct")
    # Once recorded, a tile costs this process no audit query at all.
    with CaptureQueriesContext(connection) as queries:
        assert logged_in_client.get(url(ct[1], "frames/1/tiles/0/0/0")).status_code == 200
    assert not [q for q in queries if "viewer_auditevent" in q["sql"]]


def test_a_second_session_and_another_study_make_rows_of_their_own(
    radiologist: Any, ct: list[Instance], mini: list[Study]
) -> None:
    morning, afternoon = client_for(radiologist), client_for(radiologist)
    for client in (morning, afternoon, morning):
        assert client.get(url(ct[0], "rendered")).status_code == 200
    prior = Instance.objects.select_related("series__study").get(series__study=mini[0])
    assert morning.get(url(prior, "rendered")).status_code == 200
    rows = image_reads()
    assert len(rows) == 3
    ct_rows = [r for r in rows if r.patient_id == CT_PATIENT]
    assert len(ct_rows) == 2 and len({r.session_hash for r in ct_rows}) == 2
    (other,) = [r for r in rows if r.patient_id == "TEST_1"]
    assert other.study_uids == ["1.2.3"]


def test_study_page_and_viewer_page_record_each_opening(
    logged_in_client: Client, ct: list[Instance]
) -> None:
    uid = study_uid(ct[0])
    for page in (f"/studies/{uid}/", f"/viewer/{uid}/", f"/viewer/{uid}/"):
        assert logged_in_client.get(page).status_code == 200
    opened = AuditEvent.objects.filter(event_id="110103", detail__has_key="opened")
    assert sorted(e.detail["opened"] for e in opened) == ["study", "viewer", "viewer"]
    assert all(e.patient_id == CT_PATIENT and e.study_uids == [uid] for e in opened)
    assert all(e.instance_count == 3 for e in opened)


# Refusals are recorded with outcome 4 (minor failure) and the UID asked for.


def test_anonymous_requests_are_refused_and_recorded(ct: list[Instance]) -> None:
    uid = study_uid(ct[0])
    # Without a session, the client address tells requesters apart.
    tile = Client(REMOTE_ADDR="192.0.2.31").get(url(ct[0], "frames/1/tiles/0/0/0"))
    api = Client(REMOTE_ADDR="192.0.2.32").get(f"/api/studies/{uid}")
    page = Client(REMOTE_ADDR="192.0.2.33").get(f"/viewer/{uid}/")
    assert tile.status_code == 401 and api.status_code == 401
    assert page.status_code == 302 and page["Location"].startswith("/login/")
    refused = {r.client_address: r for r in AuditEvent.objects.filter(outcome=4)}
    assert {a: r.detail["refused"] for a, r in refused.items()} == {
        "192.0.2.31": "frame-tile",
        "192.0.2.32": "api-study",
        "192.0.2.33": "viewer",
    }
    for row in refused.values():
        assert (row.event_id, row.action, row.user_id) == ("110103", "R", "")
        assert (row.patient_id, row.study_uids) == (CT_PATIENT, [uid])
    # The same refusal again, from the same address, adds no row.
    Client(REMOTE_ADDR="192.0.2.31").get(url(ct[1], "frames/1/tiles/0/0/0"))
    assert AuditEvent.objects.filter(outcome=4).count() == 3
    assert not image_reads()


def test_a_study_this_session_may_not_see_is_404_and_recorded(
    radiologist: Any, ct: list[Instance], monkeypatch: Any
) -> None:
    # The EHR launch will narrow a session's scope in access.can_see/visible_studies;
    # until then, narrow it here to nothing.
    monkeypatch.setattr(access, "can_see", lambda request, study: False)
    monkeypatch.setattr(access, "visible_studies", lambda request: Study.objects.none())
    uid = study_uid(ct[0])
    series = ct[0].series.series_instance_uid
    paths = {
        "instance-rendered": url(ct[0], "rendered"),
        "series-thumbnail": f"/dicom-web/studies/{uid}/series/{series}/thumbnail",
        "api-study": f"/api/studies/{uid}",
        "study": f"/studies/{uid}/",
    }
    for path in paths.values():  # a session each, so that each refusal has its row
        assert client_for(radiologist).get(path).status_code == 404
    hidden = AuditEvent.objects.filter(outcome=4, study_uids=[uid])
    assert sorted(r.detail["refused"] for r in hidden) == sorted(paths)
    assert {(r.user_id, r.patient_id) for r in hidden} == {("radiologist", CT_PATIENT)}
    assert client_for(radiologist).get("/api/studies/1.2.3.4.5.6").status_code == 404
    missing = AuditEvent.objects.get(outcome=4, study_uids=["1.2.3.4.5.6"])
    assert missing.patient_id == ""
    assert not image_reads()


# Fail closed: no audit row, no patient data.


def test_patient_data_is_refused_with_503_when_the_audit_cannot_be_written(
    logged_in_client: Client, ct: list[Instance], caplog: Any
) -> None:
    uid = study_uid(ct[0])
    with connection.cursor() as cursor:  # undone with the test's transaction
        cursor.execute("ALTER TABLE viewer_auditevent RENAME TO viewer_auditevent_gone")
    for path in (
        url(ct[0], "frames/1/tiles/0/0/0"),
        url(ct[0], "rendered"),
        f"/api/studies/{uid}",
        f"/studies/{uid}/",
        f"/viewer/{uid}/",
        f"/?patient_id={CT_PATIENT}",
    ):
        response = logged_in_client.get(path)
        assert response.status_code == 503, path
        assert response["Content-Type"] == "application/json"
        assert response.json()["code"] == "audit_unavailable"
        assert CT_PATIENT.encode() not in response.content
    assert "audit: a 110103 record could not be written (OperationalError)" in caplog.text
    assert CT_PATIENT not in caplog.text


def test_no_session_is_made_when_its_login_cannot_be_recorded(radiologist: Any) -> None:
    client = Client()
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE viewer_auditevent RENAME TO viewer_auditevent_gone")
    response = client.post("/login/", {"username": "radiologist", "password": PASSWORD})
    assert response.status_code == 503 and response.json()["code"] == "audit_unavailable"
    assert client.get("/upload/")["Location"].startswith("/login/")


# Log-in, log-out, worklist, upload.


def test_login_logout_and_a_failed_login_are_recorded(radiologist: Any) -> None:
    client = Client(REMOTE_ADDR="192.0.2.20")
    wrong = client.post("/login/", {"username": "radiologist", "password": "wrong"})
    assert wrong.status_code == 200
    assert (
        client.post("/login/", {"username": "radiologist", "password": PASSWORD}).status_code == 302
    )
    assert client.post("/logout/").status_code == 302
    rows = AuditEvent.objects.filter(event_id="110114").order_by("recorded_at")
    failed, login, logout = rows
    assert (failed.event_type, failed.action, failed.outcome) == ("110122", "E", 4)
    assert (login.event_type, login.outcome, logout.event_type) == ("110122", 0, "110123")
    assert {r.user_id for r in rows} == {"radiologist"}
    assert {r.client_address for r in rows} == {"192.0.2.20"}
    assert {r.channel for r in rows} == {"direct"}
    assert login.session_hash and login.session_hash == logout.session_hash


def test_worklist_records_a_query_with_filter_names_only(
    logged_in_client: Client, ct: list[Instance]
) -> None:
    response = logged_in_client.get("/", {"patient_id": "C3N", "modality": "CT", "sort": "date"})
    assert response.status_code == 200
    row = AuditEvent.objects.get(event_id="110112")
    assert (row.action, row.outcome, row.instance_count) == ("E", 0, 1)
    assert row.detail == {"filters": ["modality", "patient_id"]}
    assert "C3N" not in json.dumps([row.detail, row.patient_id, row.study_uids])


def test_an_upload_records_one_transfer(logged_in_client: Client, shared_dicom: Path) -> None:
    files = sorted((shared_dicom / "ct-series").glob("*.dcm"))[:2]
    with files[0].open("rb") as a, files[1].open("rb") as b:
        response = logged_in_client.post("/api/instances", {"files": [a, b]})
    assert response.status_code == 200
    row = AuditEvent.objects.get(event_id="110104")
    assert (row.action, row.outcome, row.user_id) == ("C", 0, "radiologist")
    assert row.patient_id == CT_PATIENT and row.instance_count == 2
    assert row.study_uids == [Study.objects.get().study_instance_uid]


# Who saw this patient: administrators only.


@pytest.fixture
def administrator(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("admin", password=PASSWORD, is_staff=True)


def test_who_saw_this_patient_is_for_administrators_only(
    radiologist: Any, django_user_model: Any, administrator: Any, ct: list[Instance]
) -> None:
    path = f"/api/audit/patients/{CT_PATIENT}"
    anonymous = Client().get(path)
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "not_authenticated"
    denied = client_for(radiologist).get(path)
    assert denied.status_code == 403 and denied.json()["code"] == "permission_denied"
    refusals = AuditEvent.objects.filter(event_id="110101", outcome=4)
    assert sorted(r.user_id for r in refusals) == ["", "radiologist"]
    assert {r.patient_id for r in refusals} == {CT_PATIENT}
    assert client_for(administrator).get(path).status_code == 200
    member = django_user_model.objects.create_user("auditor", password=PASSWORD)
    member.groups.add(Group.objects.create(name="administrator"))
    assert client_for(member).get(path).status_code == 200
    assert AuditEvent.objects.filter(event_id="110101", outcome=0).count() == 2


def test_who_saw_this_patient_lists_events_newest_first_by_page(
    radiologist: Any, administrator: Any, ct: list[Instance], mini: list[Study]
) -> None:
    viewer = client_for(radiologist)
    for _ in range(101):
        assert viewer.get(f"/viewer/{study_uid(ct[0])}/").status_code == 200
    assert viewer.get(f"/viewer/{mini[0].study_instance_uid}/").status_code == 200
    admin = client_for(administrator)
    first = admin.get(f"/api/audit/patients/{CT_PATIENT}", {"issuer": ""}).json()
    assert (first["count"], first["page"], first["pages"]) == (101, 1, 2)
    assert first["next"].endswith(f"/api/audit/patients/{CT_PATIENT}?issuer=&page=2")
    recorded = [e["recorded"] for e in first["results"]]
    assert len(recorded) == 100 and recorded == sorted(recorded, reverse=True)
    event = first["results"][0]
    assert event["event"] == {"code": "110103", "display": "DICOM Instances Accessed"}
    assert (event["user_id"], event["client_address"], event["channel"]) == (
        "radiologist",
        "127.0.0.1",
        "direct",
    )
    assert event["patient"] == {"id": CT_PATIENT, "issuer": ""}
    assert event["study_uids"] == [study_uid(ct[0])] and event["action"] == "R"
    assert "session_hash" not in event and "aggregation_key" not in event
    # Reading the trail is in the trail (110101): the second read finds one more.
    second = admin.get(f"/api/audit/patients/{CT_PATIENT}", {"page": 2}).json()
    assert second["count"] == 102 and len(second["results"]) == 2 and second["next"] is None
    assert max(e["recorded"] for e in second["results"]) <= recorded[-1]
    other_issuer = admin.get(f"/api/audit/patients/{CT_PATIENT}", {"issuer": "ELSEWHERE"})
    assert other_issuer.json()["count"] == 0
    bad = admin.get(f"/api/audit/patients/{CT_PATIENT}", {"page": "x"})
    assert bad.status_code == 400 and bad.json()["code"] == "bad_page"
    beyond = admin.get(f"/api/audit/patients/{CT_PATIENT}", {"page": 9})
    assert beyond.status_code == 404 and beyond.json()["code"] == "no_such_page"
    too_long = admin.get(f"/api/audit/patients/{'X' * 65}")
    assert too_long.status_code == 400 and too_long.json()["code"] == "bad_patient_id"
    slashed = admin.get("/api/audit/patients/A/B", {"issuer": "X"})
    assert slashed.status_code == 200 and slashed.json()["count"] == 0


def test_who_saw_this_patient_as_a_fhir_r4_bundle(
    radiologist: Any, administrator: Any, ct: list[Instance]
) -> None:
    viewer = client_for(radiologist)
    uid = study_uid(ct[0])
    assert viewer.get(url(ct[0], "rendered")).status_code == 200
    assert viewer.get("/", {"patient_id": "C3N"}).status_code == 200
    admin = client_for(administrator)
    assert admin.get(f"/api/audit/patients/{CT_PATIENT}").status_code == 200  # 110101 itself
    response = admin.get(f"/api/audit/patients/{CT_PATIENT}", {"format": "fhir"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/fhir+json")
    bundle = response.json()
    assert (bundle["resourceType"], bundle["type"], bundle["total"]) == ("Bundle", "searchset", 2)
    resources = [entry["resource"] for entry in bundle["entry"]]
    for resource in resources:  # the elements R4 AuditEvent requires (1..1 and 1..*)
        assert resource["resourceType"] == "AuditEvent"
        assert resource["type"]["system"] == "http://dicom.nema.org/resources/ontology/DCM"
        assert INSTANT.match(resource["recorded"])
        assert resource["agent"] and all(
            isinstance(a["requestor"], bool) for a in resource["agent"]
        )
        assert resource["source"]["observer"]
        assert resource["action"] in {"C", "R", "U", "D", "E"}
        assert resource["outcome"] in {"0", "4", "8", "12"}
    by_code = {r["type"]["code"]: r for r in resources}
    assert set(by_code) == {"110103", "110101"}
    accessed = by_code["110103"]
    assert accessed["type"]["display"] == "DICOM Instances Accessed" and accessed["action"] == "R"
    (agent,) = accessed["agent"]
    assert agent["requestor"] is True
    assert agent["who"]["identifier"]["value"] == "radiologist"
    assert agent["network"] == {"address": "127.0.0.1", "type": "2"}
    assert accessed["source"]["type"][0]["code"] == "4"
    patient, study = accessed["entity"]
    assert patient["what"]["identifier"]["value"] == CT_PATIENT
    assert (patient["type"]["code"], patient["role"]["code"]) == ("1", "1")
    assert study["what"]["identifier"] == {"system": "urn:dicom:uid", "value": f"urn:oid:{uid}"}
    assert (study["type"]["code"], study["role"]["code"]) == ("2", "3")
    accept = admin.get(f"/api/audit/patients/{CT_PATIENT}", HTTP_ACCEPT="application/fhir+json")
    assert accept.json()["resourceType"] == "Bundle"
    # A worklist query carries no patient; its FHIR form names the filters, not their values.
    query = AuditEvent.objects.get(event_id="110112")
    from viewer.api import fhir

    (entity,) = fhir.audit_event(query)["entity"]
    assert entity["role"]["code"] == "24"
    assert json.loads(base64.b64decode(entity["query"])) == ["patient_id"]


def test_login_event_as_fhir_has_its_subtype(radiologist: Any) -> None:
    Client().post("/login/", {"username": "radiologist", "password": PASSWORD})
    from viewer.api import fhir

    resource = fhir.audit_event(AuditEvent.objects.get(event_id="110114"))
    assert resource["subtype"] == [
        {
            "system": "http://dicom.nema.org/resources/ontology/DCM",
            "code": "110122",
            "display": "Login",
        }
    ]
    assert "entity" not in resource


def test_the_patient_id_in_the_path_is_not_logged(
    radiologist: Any, administrator: Any, ct: list[Instance], caplog: Any
) -> None:
    path = f"/api/audit/patients/{CT_PATIENT}"
    with caplog.at_level(logging.INFO):
        assert Client().get(path).status_code == 401
        assert client_for(radiologist).get(path).status_code == 403
        assert client_for(administrator).get(path, {"page": 9}).status_code == 404
    messages = [r.getMessage() for r in caplog.records if r.name == "django.request"]
    assert messages == [
        "Unauthorized: /api/audit/patients/[redacted]",
        "Forbidden: /api/audit/patients/[redacted]",
        "Not Found: /api/audit/patients/[redacted]",
    ]
    assert CT_PATIENT not in caplog.text


def test_audit_admin_is_read_only(administrator: Any, ct: list[Instance]) -> None:
    administrator.is_superuser = True
    administrator.save()
    client = client_for(administrator)
    assert client.get(f"/viewer/{study_uid(ct[0])}/").status_code == 200
    listing = client.get("/admin/viewer/auditevent/", {"q": CT_PATIENT, "outcome__exact": "0"})
    assert listing.status_code == 200 and CT_PATIENT.encode() in listing.content
    event = AuditEvent.objects.filter(patient_id=CT_PATIENT).first()
    assert event is not None
    assert client.get("/admin/viewer/auditevent/add/").status_code == 403
    assert client.post(f"/admin/viewer/auditevent/{event.pk}/delete/").status_code == 403
    change = client.post(f"/admin/viewer/auditevent/{event.pk}/change/", {"outcome": 12})
    assert change.status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).outcome == 0
    assert requester.channel(None) == "direct"
