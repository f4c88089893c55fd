"""The audit trail: who saw or changed which patient's images, when, from where, and how.

Each record is an :class:`~viewer.models.AuditEvent` row carrying the fields of a DICOM
PS3.15 A.5.3 audit message; the functions here are its only writers. The requestor (user,
alternative user, client address, channel, request ID, session hash) is read from the
request by ``viewer.requester``.

Image access is aggregated, as PS3.15 A.5.3.6 allows one message to summarise a patient's
activity: one row per (user, patient, study, session, outcome), made unique by its
``aggregation_key`` and inserted with insert-or-ignore. Each process also remembers
(bounded) the keys it has committed, so the next tile of a recorded study costs no write.

Fail closed: a record that cannot be written raises :class:`AuditUnavailable` (503), so
the request that needed it returns no patient data.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError, transaction
from django.http import HttpRequest

from viewer import requester
from viewer.dicom.index import LO, UI
from viewer.dicom.patients import PatientRef
from viewer.errors import AuditUnavailable
from viewer.lru import Lru
from viewer.models import AuditEvent, AuditEventQuerySet, Study

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser

    from viewer.services.ingest import IngestResult

log = logging.getLogger(__name__)

Event = AuditEvent.EventId
EventType = AuditEvent.EventType
Action = AuditEvent.Action
Outcome = AuditEvent.Outcome
Channel = AuditEvent.Channel

REMEMBERED_KEYS = 10_000


# The writer.


# Aggregation keys this process has committed (their rows exist): a repeat is skipped.
recent_keys: Lru[str, bool] = Lru(entries=REMEMBERED_KEYS)


def _aggregation_key(row: AuditEvent) -> str:
    """(event, action, outcome, user, patient, studies, session): a session-less request
    (a 401) is told apart by its client address instead."""
    parts = [
        row.event_id,
        row.action,
        str(row.outcome),
        row.user_id,
        row.alternative_user_id,
        row.patient_id,
        row.issuer_of_patient_id,
        *row.study_uids,
        row.session_hash or f"address:{row.client_address}",
    ]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


SESSION_SHARE = "loupe_share"  # viewer.services.sharing: {"id", "created_by"}, never the token


def _share_detail(request: HttpRequest | None) -> dict[str, str]:
    """A share session's link id and creator, for every record it causes."""
    session = getattr(request, "session", None)
    share = session.get(SESSION_SHARE) if session is not None else None
    if not isinstance(share, dict):
        return {}
    return {
        "share_link_id": str(share.get("id", ""))[:64],
        "share_created_by": str(share.get("created_by", ""))[:255],
    }


def _record(
    request: HttpRequest | None,
    event: str,
    action: str,
    outcome: int,
    *,
    event_type: str = "",
    patient: PatientRef | None = None,
    study_uids: Sequence[str] = (),
    count: int = 0,
    detail: dict[str, Any] | None = None,
    user: str | None = None,
    alternative_user_id: str | None = None,
    via: str | None = None,
    address: str | None = None,
    aggregate: bool = False,
) -> None:
    row = AuditEvent(
        event_id=event,
        event_type=event_type,
        action=action,
        outcome=outcome,
        user_id=(requester.user_id(request) if user is None else user)[:255],
        alternative_user_id=(
            requester.alternative_user_id(request)
            if alternative_user_id is None
            else alternative_user_id
        )[:255],
        client_address=(requester.client_address(request) if address is None else address)[:64],
        patient_id=patient.patient_id[:LO] if patient else "",
        issuer_of_patient_id=patient.issuer[:LO] if patient else "",
        study_uids=[uid[:UI] for uid in study_uids],
        channel=via or requester.channel(request),
        request_id=requester.request_id(request),
        session_hash=requester.session_hash(request),
        instance_count=count,
        detail={**_share_detail(request), **(detail or {})},
    )
    key = _aggregation_key(row) if aggregate else None
    if key is not None and key in recent_keys:
        return
    row.aggregation_key = key
    try:
        with transaction.atomic():
            if key is None:
                row.save(force_insert=True)
            else:  # ON CONFLICT DO NOTHING / INSERT OR IGNORE: another worker may have it
                AuditEvent.objects.bulk_create([row], ignore_conflicts=True)
    except DatabaseError as error:
        # The class only: a database message may quote the row's values.
        log.error("audit: a %s record could not be written (%s)", event, type(error).__name__)
        raise AuditUnavailable(
            "the audit trail cannot be written, so no patient data is served until it can"
        ) from error
    if key is not None:
        transaction.on_commit(lambda: recent_keys.set(key, True))


# What happened. Section numbers are those of DICOM PS3.15 Annex A.5.3.


def record_instances_accessed(
    request: HttpRequest,
    study: Study,
    *,
    outcome: int = Outcome.SUCCESS,
    count: int = 1,
    action: str = Action.READ,
) -> None:
    """A.5.3.6 DICOM Instances Accessed (110103) for ``study``: reads are aggregated, one
    row per user, patient, study, session and outcome (``count`` is what the first request
    revealed); creates, updates and deletes (measurements) are one row each."""
    _record(
        request,
        Event.INSTANCES_ACCESSED,
        action,
        outcome,
        patient=PatientRef.of(study),
        study_uids=[study.study_instance_uid],
        count=count,
        aggregate=action == Action.READ,
    )


def record_study_opened(request: HttpRequest, study: Study, *, view: str) -> None:
    """A.5.3.6 (110103, R): a study's page or viewer (``view``) opened; one row each time."""
    _record(
        request,
        Event.INSTANCES_ACCESSED,
        Action.READ,
        Outcome.SUCCESS,
        patient=PatientRef.of(study),
        study_uids=[study.study_instance_uid],
        count=study.number_of_study_related_instances,
        detail={"opened": view},
    )


def record_patient_opened(
    request: HttpRequest, patient: PatientRef, study_uids: Sequence[str], *, view: str
) -> None:
    """A.5.3.6 (110103, R): a page that shows one patient's data (``view``, e.g. the
    admin's Patient page) with the patient's stored studies; one row each time."""
    _record(
        request,
        Event.INSTANCES_ACCESSED,
        Action.READ,
        Outcome.SUCCESS,
        patient=patient,
        study_uids=study_uids,
        detail={"opened": view},
    )


def record_refused(request: HttpRequest, what: str, uid: str) -> None:
    """A.5.3.6 (110103, R) with outcome 4 (minor failure): a request for study ``uid``
    refused (401, 403, or the 404 of a study this session may not see), with the study's
    patient when it exists; ``what`` names the route. Aggregated like image access."""
    study = (
        Study.objects.select_related("patient").filter(study_instance_uid=uid).first()
        if uid
        else None
    )
    _record(
        request,
        Event.INSTANCES_ACCESSED,
        Action.READ,
        Outcome.MINOR_FAILURE,
        patient=PatientRef.of(study) if study else None,
        study_uids=[uid] if uid else [],
        detail={"refused": what},
        aggregate=True,
    )


def record_query(
    request: HttpRequest, *, filters: Iterable[str], count: int, outcome: int = Outcome.SUCCESS
) -> None:
    """A.5.3.10 Query (110112, E): a worklist search. The *names* of its filters are kept,
    never their values (a name typed into a filter is PHI); ``count`` studies matched."""
    _record(
        request,
        Event.QUERY,
        Action.EXECUTE,
        outcome,
        count=count,
        detail={"filters": sorted(filters)},
    )


def record_login(request: HttpRequest | None, user: str, *, outcome: int, channel: str) -> None:
    """A.5.3.12 User Authentication (110114, E), type Login (110122); ``user`` is the user
    ID that logged in, or the one a failed attempt claimed."""
    _record(
        request,
        Event.USER_AUTHENTICATION,
        Action.EXECUTE,
        outcome,
        event_type=EventType.LOGIN,
        user=user,
        via=channel,
    )


def record_logout(
    request: HttpRequest | None, user: AbstractBaseUser | AnonymousUser | None
) -> None:
    """A.5.3.12 User Authentication (110114, E), type Logout (110123)."""
    _record(
        request,
        Event.USER_AUTHENTICATION,
        Action.EXECUTE,
        Outcome.SUCCESS,
        event_type=EventType.LOGOUT,
        user=requester.user_id(request, user),
    )


def record_launch(
    request: HttpRequest,
    user: AbstractBaseUser,
    *,
    patient: PatientRef,
    study_uids: Sequence[str],
    channel: str,
    outcome: int,
    alternative_user_id: str = "",
) -> None:
    """A.5.3.1 Application Activity (110100, E), type Application Start (110120): the EHR
    (or SSO, or a share link: ``channel``) launched the viewer for ``patient`` and
    ``study_uids``; ``alternative_user_id`` is the EHR's own ID of its user."""
    _record(
        request,
        Event.APPLICATION_ACTIVITY,
        Action.EXECUTE,
        outcome,
        event_type=EventType.APPLICATION_START,
        patient=patient,
        study_uids=study_uids,
        user=requester.user_id(request, user),
        alternative_user_id=alternative_user_id,
        via=channel,
    )


def record_launch_refused(request: HttpRequest, *, channel: str, reason: str) -> None:
    """A.5.3.1 Application Start (110100/110120) with outcome 4: a launch refused before
    anything in it could be trusted, so no user or patient from it is recorded; ``reason``
    is the refusal's code (expired, replayed, bad signature ...), never the token."""
    _record(
        request,
        Event.APPLICATION_ACTIVITY,
        Action.EXECUTE,
        Outcome.MINOR_FAILURE,
        event_type=EventType.APPLICATION_START,
        detail={"refused": reason},
        via=channel,
    )


def record_export(
    request: HttpRequest | None,
    study: Study,
    *,
    outcome: int,
    kind: str,
    share_link_id: str = "",
    count: int | None = None,
    user: str | None = None,
) -> None:
    """A.5.3.4 Data Export (110106, R): ``study`` left Loupe's control: ``kind`` is
    "download", or "share" for a share link (its *ID*, never its token). ``count``: the
    instances that left (one for one object's file); the whole study's when not given."""
    detail = {"kind": kind, **({"share_link_id": share_link_id} if share_link_id else {})}
    _record(
        request,
        Event.EXPORT,
        Action.READ,
        outcome,
        patient=PatientRef.of(study),
        study_uids=[study.study_instance_uid],
        count=study.number_of_study_related_instances if count is None else count,
        detail=detail,
        user=user,
    )


def record_transfer(
    request: HttpRequest | None,
    results: Sequence[IngestResult],
    *,
    user: str | None = None,
    aggregate: bool = False,
) -> None:
    """A.5.3.7 DICOM Instances Transferred (110104, C): one upload or import, one row per
    patient (the message holds a single patient); outcome 0 when every object was
    accepted, 4 when some were, 8 when none was (one row without a patient).

    ``aggregate``: for uploads of one object per request, one row per (user, patient,
    study, session, outcome), like image access; its count is the first request's."""
    accepted = [r for r in results if r.ok]
    outcome = (
        Outcome.SUCCESS
        if len(accepted) == len(results)
        else Outcome.MINOR_FAILURE
        if accepted
        else Outcome.SERIOUS_FAILURE
    )
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    by_patient: dict[PatientRef | None, list[str]] = {}
    for result in accepted:  # an accepted object's patient is its study's (ingest's rule)
        uids = by_patient.setdefault(PatientRef(result.patient_id, result.issuer_of_patient_id), [])
        if result.study_instance_uid not in uids:
            uids.append(result.study_instance_uid)
    for patient, uids in by_patient.items() or [(None, [])]:
        _record(
            request,
            Event.INSTANCES_TRANSFERRED,
            Action.CREATE,
            outcome,
            patient=patient,
            study_uids=sorted(uids),
            count=sum(1 for r in accepted if r.study_instance_uid in uids),
            detail=counts,
            user=user,
            aggregate=aggregate,
        )


def record_audit_log_used(request: HttpRequest, patient: PatientRef, *, outcome: int) -> None:
    """A.5.3.2 Audit Log Used (110101, R): someone read (or was refused) ``patient``'s trail."""
    _record(request, Event.AUDIT_LOG_USED, Action.READ, outcome, patient=patient)


def record_patient_record(
    request: HttpRequest | None,
    *,
    a: tuple[str, str],
    b: tuple[str, str],
    action: str,
    detail: dict[str, Any],
    user_id: str,
    client_address: str = "",
    channel: str = Channel.DIRECT,
) -> None:
    """A.5.3.9 Patient Record (110110): the identities ``a`` and ``b`` (Patient ID with its
    issuer) linked (C), merged (U: ``b`` into ``a``) or unlinked (D) by ``user_id``
    (a user, or ``hl7:<sending application>``) at ``client_address``.

    The message holds one patient, so one row is written for each, naming the other in
    its detail (``other_patient``, PatientID^^^issuer) beside ``kind``, ``source`` and
    ``reference``: each patient's trail shows the change. IDs only, never names."""
    refs = (PatientRef(*a), PatientRef(*b))
    for patient, other in (refs, refs[::-1]):
        _record(
            request,
            Event.PATIENT_RECORD,
            action,
            Outcome.SUCCESS,
            patient=patient,
            detail={**detail, "other_patient": str(other)},
            user=user_id,
            via=channel if channel in Channel.values else Channel.DIRECT,
            address=client_address if request is None or client_address else None,
        )


def events_for_patient(patient_id: str, issuer: str | None = None) -> AuditEventQuerySet:
    """Every record about this patient, newest first (any issuer when ``issuer`` is None)."""
    events = AuditEvent.objects.filter(patient_id=patient_id)
    if issuer is not None:
        events = events.filter(issuer_of_patient_id=issuer)
    return events.order_by("-recorded_at", "-id")


# Django's authentication signals (connected in viewer.apps).


def on_user_logged_in(
    sender: Any, request: HttpRequest | None, user: AbstractBaseUser, **kwargs: Any
) -> None:
    try:
        record_login(
            request,
            requester.user_id(request, user),
            outcome=Outcome.SUCCESS,
            channel=requester.channel(request),
        )
    except AuditUnavailable:
        # No session without its record. Django saves no session on a 5xx answer; undo
        # the log-in here as well, so that nothing of it outlives this request.
        if request is not None and hasattr(request, "session"):
            request.session.flush()
            request.user = AnonymousUser()
        raise


def on_user_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    claimed = credentials.get("username", "")
    record_login(
        request,
        claimed if isinstance(claimed, str) else "",
        outcome=Outcome.MINOR_FAILURE,
        channel=requester.channel(request),
    )


def on_user_logged_out(
    sender: Any,
    request: HttpRequest | None,
    user: AbstractBaseUser | AnonymousUser | None,
    **kwargs: Any,
) -> None:
    try:
        record_logout(request, user)
    except AuditUnavailable:
        # Logging out must work even then: it ends access, it reveals nothing.
        log.warning("audit: a logout went unrecorded")
