"""Patient identity: which stored identities are one person (an enterprise patient index).

An identity is (0010,0020) *Patient ID* within its issuer: (0010,0021) *Issuer of Patient
ID*, else the (0040,0032) *Universal Entity ID* of the (0010,0024) *Issuer of Patient ID
Qualifiers Sequence* ("" = none) (PS3.3 C.7.1.1). A Patient row whose objects name both
spellings of its issuer is known under both.

Identities of one person are connected by

- PatientLink rows (the admin, ``POST /api/patient-links``, HL7 v2 ADT A24 link and A40
  merge: :func:`link`; ADT A37 and DELETE: :func:`unlink`), and
- the indexed items of a patient's (0010,1002) *Other Patient IDs Sequence*, where the item
  names an issuer (an ID without its issuer names nobody in particular and never links).

A person is the connected component of an identity (:func:`person`), found breadth-first
with a visited set, so cycles end; a component above :data:`MAX_PERSON_IDENTITIES` is
refused with ``person_too_large``. Every Patient row keeps the key of its person
(``Patient.person_key``, :func:`person_key`) so the gate and the priors compare one
indexed column. A link or merge never deletes or rewrites a stored object: it writes the
link, recomputes the keys, and writes the audit record (PS3.15 A.5.3.9 Patient Record) of
who linked what, in one transaction. A name never links anyone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from django.db import connection, transaction
from django.db.models import Q

from viewer.dicom.index import LO
from viewer.errors import ViewerError
from viewer.models import OtherPatientId, Patient, PatientLink

if TYPE_CHECKING:
    from django.http import HttpRequest

Identity = tuple[str, str]  # (Patient ID, issuer); issuer "" = none

MAX_PERSON_IDENTITIES = 1000
_CHUNK = 500  # values per IN (...) list
# pg_advisory_xact_lock key: identity changes (and new Patient rows' keys) one at a time.
_LOCK_KEY = 0x10CE_0110
# LO (PS3.5 6.2): no backslash, no control characters (ESC aside, which we refuse too).
_LO_FORBIDDEN = re.compile(r"[\\\x00-\x1f\x7f]")


def identity_of(patient: Patient) -> Identity:
    """(Patient ID, Issuer of Patient ID or else the qualifiers' Universal Entity ID)."""
    return (patient.patient_id, patient.issuer_of_patient_id or _universal_id(patient))


def _universal_id(patient: Patient) -> str:
    return patient.issuer_of_patient_id_qualifiers.split("&", 1)[0]


def spellings(patient: Patient) -> frozenset[Identity]:
    """Every identity a Patient row is known under: its issuer, and the qualifiers'
    Universal Entity ID where it names one besides."""
    universal = _universal_id(patient)
    names = {identity_of(patient)}
    if universal:
        names.add((patient.patient_id, universal))
    return frozenset(names)


def person_key(identities: Iterable[Identity]) -> str:
    """The key of a person: its least identity as a JSON list (stable, readable)."""
    return json.dumps(list(min(identities)), ensure_ascii=False)


def _chunks(values: Iterable[str]) -> Iterator[list[str]]:
    items = sorted(set(values))
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _patients_named(identities: set[Identity]) -> list[Patient]:
    """The Patient rows known under any of ``identities``."""
    found: list[Patient] = []
    for ids in _chunks(pid for pid, _ in identities):
        for patient in Patient.objects.filter(patient_id__in=ids).only(
            "id",
            "patient_id",
            "issuer_of_patient_id",
            "issuer_of_patient_id_qualifiers",
            "person_key",
        ):
            if spellings(patient) & identities:
                found.append(patient)
    return found


def _neighbours(frontier: set[Identity]) -> set[Identity]:
    """Identities one step from ``frontier``: across a PatientLink, from a Patient row to
    its other spellings and the Other Patient IDs (with an issuer) of its objects, and
    from an Other Patient ID back to the Patient row that carries it."""
    found: set[Identity] = set()
    ids = {pid for pid, _ in frontier}
    for chunk in _chunks(ids):
        for row in PatientLink.objects.filter(
            Q(patient_id__in=chunk) | Q(other_patient_id__in=chunk)
        ).values_list(
            "patient_id", "issuer_of_patient_id", "other_patient_id", "other_issuer_of_patient_id"
        ):
            a, b = (row[0], row[1]), (row[2], row[3])
            if a in frontier:
                found.add(b)
            if b in frontier:
                found.add(a)
    patients = _patients_named(frontier)
    for patient in patients:
        found |= spellings(patient)
    patient_ids = [p.pk for p in patients]
    for start in range(0, len(patient_ids), _CHUNK):
        found.update(
            OtherPatientId.objects.filter(patient_record_id__in=patient_ids[start : start + _CHUNK])
            .exclude(patient_id="")
            .exclude(issuer_of_patient_id="")
            .values_list("patient_id", "issuer_of_patient_id")
        )
    for chunk in _chunks(ids):
        for item in (
            OtherPatientId.objects.filter(patient_id__in=chunk)
            .exclude(issuer_of_patient_id="")
            .select_related("patient_record")
        ):
            if (item.patient_id, item.issuer_of_patient_id) in frontier:
                found |= spellings(item.patient_record)
    return found


def person(identity: Identity) -> frozenset[Identity]:
    """Every identity of the person ``identity`` belongs to (itself included): the
    connected component over PatientLink rows and indexed Other Patient IDs. An empty
    Patient ID identifies nobody and links to nothing."""
    if not identity[0]:
        return frozenset({identity})
    seen: set[Identity] = {identity}
    frontier: set[Identity] = {identity}
    while frontier:
        step = {i for i in _neighbours(frontier) if i[0]} - seen
        seen |= step
        if len(seen) > MAX_PERSON_IDENTITIES:
            raise ViewerError(
                f"more than {MAX_PERSON_IDENTITIES} patient identities are linked into one "
                "person; remove wrong links before adding more",
                code="person_too_large",
                status=409,
            )
        frontier = step
    return frozenset(seen)


def _lock() -> None:
    """Serialise identity changes on PostgreSQL (SQLite has one writer anyway)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])


def refresh_person_keys(identities: Iterable[Identity]) -> None:
    """Recompute ``person_key`` of every Patient row in the persons of ``identities``."""
    done: set[Identity] = set()
    for identity in identities:
        if identity in done:
            continue
        component = person(identity)
        done |= component
        key = person_key(component)
        stale = [p.pk for p in _patients_named(set(component)) if p.person_key != key]
        for start in range(0, len(stale), _CHUNK):
            Patient.objects.filter(pk__in=stale[start : start + _CHUNK]).update(person_key=key)


def assign_person_key(patient: Patient) -> None:
    """Give a new Patient row (and its person's rows) the key of its person: ingest's call,
    inside its transaction, when it creates a row or indexes its Other Patient IDs."""
    with transaction.atomic():
        _lock()
        refresh_person_keys(spellings(patient))
        patient.person_key = (
            Patient.objects.filter(pk=patient.pk).values_list("person_key", flat=True).get()
        )


def clean(identity: Identity, field: str) -> Identity:
    """``identity`` stripped, or ``bad_patient_link`` (400) naming ``field``: an empty
    Patient ID, a value longer than LO (64) or holding a backslash or control character."""
    try:
        patient_id, issuer = identity
    except (TypeError, ValueError):
        raise ViewerError(
            f"{field} must be a (Patient ID, issuer) pair", code="bad_patient_link"
        ) from None
    if not isinstance(patient_id, str) or not isinstance(issuer, str):
        raise ViewerError(f"{field}: Patient ID and issuer must be text", code="bad_patient_link")
    patient_id, issuer = patient_id.strip(), issuer.strip()
    if not patient_id:
        raise ViewerError(f"{field}: the Patient ID is empty", code="bad_patient_link")
    for name, text in (("patient_id", patient_id), ("issuer_of_patient_id", issuer)):
        if len(text) > LO:
            raise ViewerError(
                f"{field}.{name} is longer than {LO} characters", code="bad_patient_link"
            )
        if _LO_FORBIDDEN.search(text):
            raise ViewerError(
                f"{field}.{name} holds a backslash or a control character",
                code="bad_patient_link",
            )
    return (patient_id, issuer)


def _pair(a: Identity, b: Identity) -> tuple[Identity, Identity]:
    a, b = clean(a, "patient"), clean(b, "other_patient")
    if a == b:
        raise ViewerError("a patient cannot be linked to itself", code="bad_patient_link")
    return (a, b) if a <= b else (b, a)


def _lookup(first: Identity, second: Identity) -> Q:
    return Q(
        patient_id=first[0],
        issuer_of_patient_id=first[1],
        other_patient_id=second[0],
        other_issuer_of_patient_id=second[1],
    )


def link_or_existing(
    a: Identity,
    b: Identity,
    *,
    kind: str = PatientLink.Kind.LINK,
    source: str,
    user_id: str,
    client_address: str = "",
    reference: str = "",
    channel: str = "direct",
    request: HttpRequest | None = None,
) -> tuple[PatientLink, bool]:
    """:func:`link`, and whether it created the link (False: it existed already)."""
    from viewer.services import audit  # audit imports the models; keep this module light

    if kind not in PatientLink.Kind.values:
        raise ViewerError(f"unknown kind of link {kind!r}", code="bad_patient_link")
    if source not in PatientLink.Source.values:
        raise ViewerError(f"unknown source of link {source!r}", code="bad_patient_link")
    first, second = _pair(a, b)
    with transaction.atomic():
        _lock()
        existing = PatientLink.objects.filter(_lookup(first, second)).first()
        if existing is not None:
            return existing, False
        row = PatientLink.objects.create(
            patient_id=first[0],
            issuer_of_patient_id=first[1],
            other_patient_id=second[0],
            other_issuer_of_patient_id=second[1],
            kind=kind,
            source=source,
            created_by=user_id[:255],
            reference=reference[:255],
        )
        refresh_person_keys([first])  # one component now; raises when it grew too large
        # A merge names the surviving identity first (a) and the merged one second (b).
        audit.record_patient_record(
            request,
            a=clean(a, "patient"),
            b=clean(b, "other_patient"),
            action=(audit.Action.UPDATE if kind == PatientLink.Kind.MERGE else audit.Action.CREATE),
            detail={"kind": kind, "source": source, "reference": reference, "link_id": row.pk},
            user_id=user_id,
            client_address=client_address,
            channel=channel,
        )
    return row, True


def link(
    a: Identity,
    b: Identity,
    *,
    kind: str = PatientLink.Kind.LINK,
    source: str,
    user_id: str,
    client_address: str = "",
    reference: str = "",
    channel: str = "direct",
    request: HttpRequest | None = None,
) -> PatientLink:
    """Record that identities ``a`` and ``b`` are one person (``kind`` "merge": ``b`` was
    merged into ``a``, HL7 ADT A40; "link": ADT A24, the admin, the API).

    Idempotent: an existing link (either way round) is returned unchanged and nothing is
    recorded. ``a == b`` or an empty Patient ID is ``bad_patient_link`` (400). Recomputes
    the person key of every Patient row of the joined person and writes the audit record
    (A.5.3.9 Patient Record, action C, U for a merge: ``user_id`` at ``client_address``,
    both patients, ``source`` and ``reference``), all in one transaction. No Study,
    Series or Instance row is touched."""
    row, _ = link_or_existing(
        a,
        b,
        kind=kind,
        source=source,
        user_id=user_id,
        client_address=client_address,
        reference=reference,
        channel=channel,
        request=request,
    )
    return row


def unlink(
    a: Identity,
    b: Identity,
    *,
    source: str,
    user_id: str,
    client_address: str = "",
    reference: str = "",
    channel: str = "direct",
    request: HttpRequest | None = None,
) -> bool:
    """Remove the link of ``a`` and ``b`` (HL7 ADT A37, DELETE, the admin); whether it
    existed. Recomputes the person keys of both resulting persons and writes the audit
    record (A.5.3.9, action D). Identities that are still connected otherwise (another
    link, an Other Patient ID) stay one person. Never deletes or changes a stored object."""
    from viewer.services import audit

    if source not in PatientLink.Source.values:
        raise ViewerError(f"unknown source of link {source!r}", code="bad_patient_link")
    first, second = _pair(a, b)
    with transaction.atomic():
        _lock()
        existing = PatientLink.objects.filter(_lookup(first, second)).first()
        if existing is None:
            return False
        detail = {
            "kind": existing.kind,
            "source": source,
            "reference": reference,
            "link_id": existing.pk,
            "linked_by": existing.created_by,
        }
        existing.delete()
        refresh_person_keys([first, second])
        audit.record_patient_record(
            request,
            a=clean(a, "patient"),
            b=clean(b, "other_patient"),
            action=audit.Action.DELETE,
            detail=detail,
            user_id=user_id,
            client_address=client_address,
            channel=channel,
        )
    return True


def links_of(identity: Identity) -> list[PatientLink]:
    """The PatientLink rows within the person of ``identity``, oldest first."""
    component = person(identity)
    rows: list[PatientLink] = []
    for chunk in _chunks(pid for pid, _ in component):
        rows.extend(
            row
            for row in PatientLink.objects.filter(patient_id__in=chunk)
            if (row.patient_id, row.issuer_of_patient_id) in component
        )
    return sorted(rows, key=lambda r: (r.created_at, r.pk))
