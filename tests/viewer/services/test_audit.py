"""The audit trail's records (PS3.15 A.5.3 fields) and its append-only guarantees."""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.db import DatabaseError, connection, transaction
from django.http import HttpRequest
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from tests.conftest import PROJECT_DIR
from tests.servers import Server, migrated_database
from viewer import requester
from viewer.dicom.patients import PatientRef
from viewer.log_redaction import RedactPatientPaths
from viewer.lru import Lru
from viewer.models import AppendOnlyError, AuditEvent, Study
from viewer.services import audit, ingest

pytestmark = pytest.mark.django_db

CT_PATIENT = "C3N-00247"
ADDRESS = "192.0.2.10"  # TEST-NET-1: a documentation address, never contacted


@pytest.fixture
def ct_study(shared_dicom: Path) -> Study:
    for path in sorted((shared_dicom / "ct-series").glob("*.dcm"))[:2]:
        assert ingest.ingest_file(path).ok
    return Study.objects.select_related("patient").get()


def request_for(
    user: Any, *, session: dict[str, str] | None = None, meta: dict[str, str] | None = None
) -> HttpRequest:
    """A request as the middleware leaves it: a saved session and its user."""
    request = RequestFactory().get("/")
    request.META.update({"REMOTE_ADDR": ADDRESS, **(meta or {})})
    store = SessionStore()
    store.update(session or {})
    store.save()
    request.session = store
    request.user = user
    return request


def only_row(**filters: Any) -> AuditEvent:
    rows = list(AuditEvent.objects.filter(**filters))
    assert len(rows) == 1, rows
    return rows[0]


def test_instances_accessed_carries_the_a536_fields(radiologist: Any, ct_study: Study) -> None:
    request = request_for(radiologist)
    before = dt.datetime.now(dt.UTC)
    audit.record_instances_accessed(request, ct_study, count=2)
    row = only_row(event_id="110103")
    assert (row.action, row.outcome, row.event_type) == ("R", 0, "")
    assert row.user_id == "radiologist" and row.alternative_user_id == ""
    assert row.client_address == ADDRESS
    assert (row.patient_id, row.issuer_of_patient_id) == (CT_PATIENT, "")
    assert row.study_uids == [ct_study.study_instance_uid]
    assert row.channel == "direct" and row.instance_count == 2
    assert len(row.request_id) == 32 and row.aggregation_key
    # The session is named by an HMAC, never by its key.
    key = request.session.session_key
    assert key and len(row.session_hash) == 64 and key not in row.session_hash
    assert row.recorded_at.utcoffset() == dt.timedelta(0)
    assert before <= row.recorded_at <= dt.datetime.now(dt.UTC)


def test_oidc_subject_ehr_user_and_channel_come_from_the_session(
    radiologist: Any, ct_study: Study
) -> None:
    session = {
        requester.SESSION_CHANNEL: "ehr",
        requester.SESSION_SUBJECT: "https://idp.example.org|248289761001",
        requester.SESSION_ALTERNATIVE_USER: "EHR-USER-7",
    }
    audit.record_instances_accessed(request_for(radiologist, session=session), ct_study)
    row = only_row(event_id="110103")
    assert row.user_id == "https://idp.example.org|248289761001"
    assert row.alternative_user_id == "EHR-USER-7"
    assert row.channel == "ehr"
    assert (
        requester.channel(request_for(radiologist, session={requester.SESSION_CHANNEL: "x"}))
        == "direct"
    )


def test_reads_aggregate_but_openings_and_changes_are_one_row_each(
    radiologist: Any, ct_study: Study
) -> None:
    request = request_for(radiologist)
    for _ in range(3):
        audit.record_instances_accessed(request, ct_study)
        audit.recent_keys.clear()  # as if each came to another worker process
        audit.record_study_opened(request, ct_study, view="viewer")
        audit.record_instances_accessed(request, ct_study, action=audit.Action.UPDATE)
    assert AuditEvent.objects.filter(action="R", detail={}).count() == 1
    opened = AuditEvent.objects.filter(detail={"opened": "viewer"})
    assert opened.count() == 3 and all(e.aggregation_key is None for e in opened)
    assert all(e.instance_count == 2 for e in opened)
    assert AuditEvent.objects.filter(event_id="110103", action="U").count() == 3


def test_a_recorded_key_costs_no_query(
    radiologist: Any, ct_study: Study, django_capture_on_commit_callbacks: Any
) -> None:
    request = request_for(radiologist)
    with django_capture_on_commit_callbacks(execute=True):
        audit.record_instances_accessed(request, ct_study)
    with CaptureQueriesContext(connection) as queries:
        audit.record_instances_accessed(request, ct_study)
    assert len(queries) == 0


def test_recent_keys_are_bounded_and_drop_the_least_recently_used() -> None:
    keys: Lru[str, bool] = Lru(entries=2)
    for key in ("a", "b"):
        keys.set(key, True)
    assert "a" in keys  # now the most recent
    keys.set("c", True)
    assert "b" not in keys and "a" in keys and "c" in keys


def test_refused_names_the_patient_only_when_the_study_exists(
    radiologist: Any, ct_study: Study
) -> None:
    audit.record_refused(request_for(radiologist), "frame-tile", ct_study.study_instance_uid)
    audit.record_refused(request_for(radiologist), "api-study", "1.2.3.999")
    known = only_row(study_uids=[ct_study.study_instance_uid])
    unknown = only_row(study_uids=["1.2.3.999"])
    assert (known.event_id, known.action, known.outcome) == ("110103", "R", 4)
    assert known.patient_id == CT_PATIENT and known.detail == {"refused": "frame-tile"}
    assert unknown.outcome == 4 and unknown.patient_id == ""


def test_query_keeps_filter_names_not_values(radiologist: Any) -> None:
    audit.record_query(request_for(radiologist), filters=["patient_id", "modality"], count=3)
    row = only_row(event_id="110112")
    assert (row.action, row.outcome, row.instance_count) == ("E", 0, 3)
    assert row.detail == {"filters": ["modality", "patient_id"]}
    assert row.patient_id == "" and row.study_uids == []


def test_launch_records_application_start_for_the_patient(radiologist: Any) -> None:
    request = request_for(radiologist, session={requester.SESSION_CHANNEL: "ehr"})
    audit.record_launch(
        request,
        radiologist,
        patient=PatientRef(CT_PATIENT, "HOSPITAL-A"),
        study_uids=["1.2.3", "2.3.4"],
        channel="ehr",
        outcome=audit.Outcome.SUCCESS,
        alternative_user_id="EHR-USER-7",
    )
    row = only_row(event_id="110100")
    assert (row.event_type, row.action, row.outcome) == ("110120", "E", 0)
    assert (row.patient_id, row.issuer_of_patient_id) == (CT_PATIENT, "HOSPITAL-A")
    assert row.study_uids == ["1.2.3", "2.3.4"]
    assert (row.user_id, row.alternative_user_id, row.channel) == (
        "radiologist",
        "EHR-USER-7",
        "ehr",
    )
    assert str(PatientRef(CT_PATIENT, "HOSPITAL-A")) == f"{CT_PATIENT}^^^HOSPITAL-A"


def test_export_of_a_share_link_names_its_id(radiologist: Any, ct_study: Study) -> None:
    audit.record_export(
        request_for(radiologist), ct_study, outcome=0, kind="share", share_link_id="42"
    )
    row = only_row(event_id="110106")
    assert (row.action, row.outcome, row.patient_id) == ("R", 0, CT_PATIENT)
    assert row.study_uids == [ct_study.study_instance_uid]
    assert row.detail == {"kind": "share", "share_link_id": "42"}


def test_transfer_is_one_row_per_patient(shared_dicom: Path, radiologist: Any) -> None:
    paths = sorted((shared_dicom / "ct-series").glob("*.dcm"))[:2]
    paths += sorted((shared_dicom / "ct-prior-pair-mini").glob("*.dcm"))
    results = [ingest.ingest_file(p) for p in paths]
    results.append(ingest.ingest_bytes(b"not dicom", source="junk"))
    audit.record_transfer(request_for(radiologist), results)
    rows = {r.patient_id: r for r in AuditEvent.objects.filter(event_id="110104")}
    assert set(rows) == {CT_PATIENT, "TEST_1"}
    assert all(r.action == "C" and r.outcome == 4 for r in rows.values())  # one was rejected
    assert rows["TEST_1"].study_uids == ["1.2.3", "2.3.4"]
    assert rows["TEST_1"].instance_count == 2 and rows[CT_PATIENT].instance_count == 2
    assert rows[CT_PATIENT].detail == {"stored": 4, "rejected": 1}


def test_client_address_behind_a_trusted_proxy(radiologist: Any, settings: Any) -> None:
    forwarded = {"HTTP_X_FORWARDED_FOR": "198.51.100.66, 203.0.113.5"}
    assert requester.client_address(request_for(radiologist, meta=forwarded)) == ADDRESS
    settings.LOUPE_TRUSTED_PROXIES = frozenset({ADDRESS})
    # The last hop the trusted proxy saw; what the client wrote before it is not believed.
    assert requester.client_address(request_for(radiologist, meta=forwarded)) == "203.0.113.5"
    assert (
        requester.client_address(request_for(radiologist, meta={"REMOTE_ADDR": "not-an-ip"})) == ""
    )


def test_a_recorded_event_cannot_change_or_go(radiologist: Any, ct_study: Study) -> None:
    audit.record_instances_accessed(request_for(radiologist), ct_study)
    row = AuditEvent.objects.get()
    row.outcome = 12
    with pytest.raises(AppendOnlyError):
        row.save()
    with pytest.raises(AppendOnlyError):
        row.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=row.pk).update(outcome=12)
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get().outcome == 0


def test_sqlite_triggers_refuse_update_and_delete(radiologist: Any, ct_study: Study) -> None:
    assert connection.vendor == "sqlite"
    audit.record_instances_accessed(request_for(radiologist), ct_study)
    for sql in (
        "UPDATE viewer_auditevent SET outcome = 12",
        "UPDATE viewer_auditevent SET user_id = 'someone-else'",
        "DELETE FROM viewer_auditevent",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            connection.cursor().execute(sql)
    row = AuditEvent.objects.get()
    assert (row.outcome, row.user_id) == (0, "radiologist")


def test_request_logs_do_not_show_patient_ids() -> None:
    record = logging.LogRecord(
        "django.request", logging.WARNING, __file__, 1, "%s: %s", ("Forbidden", ""), None
    )
    record.args = ("Forbidden", f"/api/audit/patients/{CT_PATIENT}")
    assert RedactPatientPaths().filter(record)
    assert record.getMessage() == "Forbidden: /api/audit/patients/[redacted]"
    line = logging.LogRecord("django.server", logging.INFO, __file__, 1, '"%s" %s %s', None, None)
    line.args = (f"GET /api/audit/patients/{CT_PATIENT}?issuer=X HTTP/1.1", "403", "70")
    RedactPatientPaths().filter(line)
    assert CT_PATIENT not in line.getMessage() and "403" in line.getMessage()


# PostgreSQL: the same guarantees from the triggers of migration 0003, on a real server.


INSERT = """INSERT INTO viewer_auditevent (id, event_id, event_type, action, recorded_at,
    outcome, user_id, alternative_user_id, client_address, patient_id, issuer_of_patient_id,
    study_uids, channel, request_id, session_hash, aggregation_key, instance_count, detail)
    VALUES (gen_random_uuid(), '110103', '', 'R', now(), 0, 'radiologist', '', '192.0.2.10',
    'C3N-00247', '', '["1.2.3"]', 'direct', 'r1', '', %s, 1, '{}')"""


@pytest.mark.postgres
def test_postgresql_triggers_refuse_update_delete_and_truncate(
    postgres: Server, tmp_path: Path
) -> None:
    env = migrated_database(postgres, "audit_append_only", tmp_path)
    url = env["DATABASE_URL"]
    # Django's insert-or-ignore (ON CONFLICT DO NOTHING) keeps one row per aggregation key.
    twice = (
        "from viewer.models import AuditEvent as A\n"
        "for _ in range(2): A.objects.bulk_create("
        "[A(event_id='110103', action='R', outcome=0, aggregation_key='k')], ignore_conflicts=True)\n"
        "print(A.objects.filter(aggregation_key='k').count())"
    )
    shell = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v0", "-c", twice],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert shell.returncode == 0 and shell.stdout.strip() == "1", shell.stderr
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(INSERT, ("key-1",))
        for sql in (
            "UPDATE viewer_auditevent SET outcome = 12",
            "DELETE FROM viewer_auditevent",
            "TRUNCATE viewer_auditevent",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                db.execute(sql)
        row = db.execute("SELECT count(*), max(outcome) FROM viewer_auditevent").fetchone()
        assert row == (2, 0)
