"""Ingest: the one way DICOM data enters Loupe.

``ingest_bytes`` validates an object (``viewer.dicom.io``), checks that its compressed
frames decode (``viewer.services.decoding``: the first frame by default; an object that
does not decode is refused with 422 ``undecodable``, or stored flagged where the operator
keeps such objects), stores its bytes unchanged in the content-addressed store (``viewer.services.storage``) and then creates or updates
the Patient / Study / Series / Instance rows in one transaction. The file is durable
(written and fsync'ed, linked under its key, its folder fsync'ed) before its row
commits, and removed again if the object is refused or the transaction fails while no
row refers to it, so there is never a row without its file; a crash between the two
leaves an unreferenced file, which ``manage.py verify_storage`` reports and can sweep.

The common case, one more object of a series already stored under the same study and
patient, is one statement (``viewer.services.known_series``: the row and the series and
study counts; on PostgreSQL one prepared round trip); everything else (the first object
of a series, a re-sent or conflicting SOP Instance UID, a series that would change
parents) takes the general path here, which decides every case the fast path declines.

Duplicates (the same (0008,0018) SOP Instance UID):

* identical bytes: nothing changes, the result is ``duplicate`` (idempotent re-send);
* different bytes: refused with 409 under the default policy ``reject``
  (settings.LOUPE_DUPLICATE_POLICY); under ``overwrite`` the new object replaces the old
  one and the result is ``replaced``.

Two processes ingesting the same object at once are serialised by the unique
constraints: the loser sees an IntegrityError, re-reads the winner's row and reports a
duplicate (or a conflict).
"""

from __future__ import annotations

import itertools
import logging
import struct
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Count

from viewer.dicom.archive import Item, Limits
from viewer.dicom.index import IndexFields, index_fields
from viewer.dicom.io import read_object
from viewer.errors import Conflict, InvalidDicom, TooLarge, UndecodableFrame, ViewerError
from viewer.models import Instance, OtherPatientId, Patient, Series, Study
from viewer.services import decoding, identity, known_series, storage

log = logging.getLogger(__name__)

STORED = "stored"
DUPLICATE = "duplicate"
REPLACED = "replaced"
REJECTED = "rejected"


@dataclass(frozen=True)
class IngestResult:
    """What happened to one object. ``source`` is the client's name for it (display only)."""

    source: str
    status: str
    sop_instance_uid: str = ""
    study_instance_uid: str = ""
    code: str = ""
    reason: str = ""
    http_status: int = 200
    # The accepted object's patient, for the audit record (never in the answer).
    patient_id: str = ""
    issuer_of_patient_id: str = ""
    # Frames stored although they do not decode (LOUPE_INGEST_UNDECODABLE=keep).
    undecodable: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status != REJECTED

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"source": self.source, "status": self.status}
        if self.sop_instance_uid:
            result["sop_instance_uid"] = self.sop_instance_uid
            result["study_instance_uid"] = self.study_instance_uid
        if self.status == REJECTED:
            result["code"] = self.code
            result["reason"] = self.reason
        if self.undecodable:
            result["undecodable"] = self.undecodable
        return result


def rejected(source: str, error: ViewerError) -> IngestResult:
    return IngestResult(
        source=source,
        status=REJECTED,
        code=error.code,
        reason=error.message,
        http_status=error.status,
    )


def ingest_file(path: Path, *, source: str | None = None) -> IngestResult:
    """Ingest the file at ``path`` (read whole; size-capped before reading)."""
    name = source or str(path)
    try:
        size = path.stat().st_size
        if size > settings.LOUPE_MAX_INSTANCE_BYTES:
            raise TooLarge(
                f"the object is {size} bytes; the limit is {settings.LOUPE_MAX_INSTANCE_BYTES} bytes",
                code="object_too_large",
            )
        data = path.read_bytes()
    except ViewerError as error:
        return rejected(name, error)
    except OSError as exc:
        return rejected(
            name, ViewerError(f"cannot read the file: {exc.strerror}", code="unreadable")
        )
    return ingest_bytes(data, source=name)


def ingest_bytes(data: bytes, *, source: str, study_uid: str | None = None) -> IngestResult:
    """Validate, store and index one object; never raises for bad input.

    The order keeps the disk busy while this thread works: the bytes are written to a
    temp file first and a worker thread fsyncs it while this thread hashes (hashlib lets
    the worker start meanwhile), parses and validates them. Only a valid object is then
    linked under its key, its folder fsync'ed, and its row committed after that; the
    temp file of an invalid one is removed before the answer.

    Why only the fsync runs on a worker: a thread coming back from a system call waits
    for the interpreter lock, up to ``sys.getswitchinterval()`` (5 ms), while another
    thread runs Python code. Hashing, writing and linking on workers beside the parse
    therefore ran after it, step by step, not beside it (measured: 1.6 to 2.9 ms of
    waiting after a 1.4 ms parse, against 0.3 to 0.4 ms in this order).

    ``study_uid``: the object must belong to that study (STOW-RS to
    ``/studies/{study}``, PS3.18 §10.5); one of another study is refused with 409
    ``other_study`` and nothing of it is stored.
    """
    pending: storage.Pending | None = None
    write_error: OSError | None = None  # reported once the object is known to be valid
    try:
        if 0 < len(data) <= settings.LOUPE_MAX_INSTANCE_BYTES:  # read_object refuses the rest
            try:
                pending = storage.begin_write(data)
            except OSError as exc:
                write_error = exc
        sha256 = storage.sha256_hex(data)
        fields = read_and_index(data)
        if study_uid is not None and fields.study["study_instance_uid"] != study_uid:
            raise Conflict(
                f"the object belongs to study {fields.study['study_instance_uid']}, "
                f"not to the study {study_uid} it was sent to",
                code="other_study",
            )
        if pending is None:  # read_object refuses empty and oversized data
            assert write_error is not None
            raise _storage_error(write_error)
        stored = _finish_write(pending, sha256)
    except BaseException as error:
        if pending is not None:
            pending.discard()
        if isinstance(error, ViewerError):
            return rejected(source, error)
        if isinstance(error, UNREADABLE_VALUE):
            # pydicom converts values lazily: one it cannot convert (an unknown VR, a
            # number that is not one, a binary value of the wrong length) surfaces only
            # when the checks or the index read it. The bytes are at fault: a 400.
            return rejected(
                source,
                InvalidDicom(
                    f"an attribute's value cannot be read: {type(error).__name__}: "
                    f"{str(error)[:200]}",
                    code="unparseable",
                ),
            )
        raise
    try:
        result = _store(stored, fields, source)
    except ViewerError as error:
        return rejected(source, error)
    except DatabaseError as exc:
        if _batch.get() is not None:
            raise  # the batch's transaction is lost: batch() reports it for all
        log.warning("ingest: the database failed: %s", type(exc).__name__)
        # A connection the failure broke (the server restarted) is dropped, so that the
        # next object connects again instead of failing on it too.
        _drop_broken_connection()
        return rejected(source, _database_error())
    batch_files = _batch.get()
    if batch_files is not None and stored.created and result.status in (STORED, REPLACED):
        batch_files.append(stored.sha256)
    if settings.LOUPE_UPSTREAM_DICOMWEB and not source.startswith("upstream:"):
        # Came in here (upload, import, STOW-RS, C-STORE): local, never evicted from the
        # cache of studies fetched upstream (viewer.services.upstream).
        from viewer.services import upstream

        upstream.claim_local(result.sop_instance_uid)
    return result


UNREADABLE_VALUE = (NotImplementedError, ValueError, struct.error)

# The SHA-256 of the files written by the objects of the running batch (``batch()``).
_batch: ContextVar[list[str] | None] = ContextVar("ingest_batch", default=None)


class BatchFailed(Exception):
    """The batch's transaction did not commit: nothing of it is stored. ``error`` is the
    refusal to report for each object of the batch that had been stored."""

    def __init__(self, error: ViewerError):
        super().__init__(error.message)
        self.error = error


def _database_error() -> ViewerError:
    return ViewerError(
        "the archive's database failed while storing the object; nothing of it was "
        "stored: send it again",
        code="database_error",
        status=503,
    )


@contextmanager
def batch() -> Iterator[None]:
    """Ingest the objects of one request (a STOW-RS body) in one transaction.

    Each object is still stored whole or not at all: its rows are written in a savepoint
    (``_index`` and the fast path run in ``transaction.atomic()``), its file before them,
    so one refused object leaves nothing and the others stay. What the batch saves is a
    commit, and its sync of the database's log, per object (measured on the CT, SQLite
    WAL with synchronous=FULL: 5.4 to 4.7 CPU ms per object in-process).

    If the transaction fails (the database went away, the commit failed), nothing of the
    batch is stored: the files the batch wrote and no row holds are removed (where the
    database answers the question; else they stay for ``verify_storage`` to sweep) and
    BatchFailed is raised, carrying the refusal for the objects reported stored. Callers
    keep batches bounded (``BATCH_OBJECTS``): the transaction holds SQLite's write lock.
    """
    if _batch.get() is not None:  # nested: the outer batch decides
        yield
        return
    created: list[str] = []
    token = _batch.set(created)
    try:
        with transaction.atomic():
            yield
    except DatabaseError as exc:
        log.warning(
            "ingest: a batch of %d new file(s) failed: %s", len(created), type(exc).__name__
        )
        _remove_unreferenced(created)
        _drop_broken_connection()
        raise BatchFailed(_database_error()) from exc
    finally:
        _batch.reset(token)


BATCH_OBJECTS = 50


def _drop_broken_connection() -> None:
    """Close this thread's database connection if a failure broke it (the server was
    restarted), outside any transaction, so that the next object connects again."""
    if connection.connection is None or connection.in_atomic_block:
        return
    try:
        usable = connection.is_usable()
    except DatabaseError:
        usable = False
    if not usable:
        connection.close()


def _remove_unreferenced(sha256s: list[str]) -> None:
    try:
        held = set(Instance.objects.filter(sha256__in=sha256s).values_list("sha256", flat=True))
    except DatabaseError:
        return
    for sha256 in sha256s:
        if sha256 not in held:
            storage.delete(storage.key_for(sha256))


def failed_batch(results: list[IngestResult], error: ViewerError) -> list[IngestResult]:
    """The results of a batch whose transaction failed: what had been stored is refused
    with ``error`` (the refusals stand as they were)."""
    return [
        replace(
            r,
            status=REJECTED,
            code=error.code,
            reason=error.message,
            http_status=error.status,
            undecodable={},
        )
        if r.ok
        else r
        for r in results
    ]


def read_and_index(data: bytes) -> IndexFields:
    """Parse and validate one object under the configured caps, read its index fields and
    check that its compressed frames decode (``decoding.check_before_storing``); raises
    as ``read_object`` does, one of UNREADABLE_VALUE for a value pydicom cannot convert,
    or UndecodableFrame (422) for an object that does not decode, unless
    LOUPE_INGEST_UNDECODABLE=keep, which stores it with its failed frames in
    ``instance["undecodable"]``."""
    parsed = read_object(
        data,
        max_bytes=settings.LOUPE_MAX_INSTANCE_BYTES,
        max_frame_bytes=settings.LOUPE_MAX_FRAME_BYTES,
    )
    fields = index_fields(
        parsed.dataset,
        number_of_frames=parsed.number_of_frames,
        transfer_syntax_uid=parsed.transfer_syntax_uid,
    )
    undecodable = decoding.check_before_storing(parsed.dataset, parsed.number_of_frames)
    if undecodable and settings.LOUPE_INGEST_UNDECODABLE == "reject":
        reason = next(iter(undecodable.values()))
        raise UndecodableFrame(
            f"the object was not stored: its pixel data does not decode ({reason})"
        )
    fields.instance["undecodable"] = undecodable
    return fields


def _storage_error(exc: OSError) -> ViewerError:
    return ViewerError(
        f"the archive cannot write the object: {exc.strerror}", code="storage_error", status=507
    )


def _finish_write(pending: storage.Pending, sha256: str) -> storage.Stored:
    try:
        return pending.finish(sha256)
    except OSError as exc:
        raise _storage_error(exc) from None


def _store(stored: storage.Stored, fields: IndexFields, source: str) -> IngestResult:
    sop_uid = fields.instance["sop_instance_uid"]
    study_uid = fields.study["study_instance_uid"]
    try:
        if known_series.insert(fields, stored):
            status = STORED
        else:
            status = _store_with_parents(fields, stored)
    except BaseException:
        if stored.created and not Instance.objects.filter(sha256=stored.sha256).exists():
            storage.delete(storage.key_for(stored.sha256))
        raise
    if status == DUPLICATE and stored.created:
        _settle_resent_file(sop_uid, stored)
    if fields.instance["undecodable"] or status == REPLACED:
        decoding.recount_undecodable(
            Study.objects.values_list("pk", flat=True).get(study_instance_uid=study_uid)
        )
    return IngestResult(
        source=source,
        status=status,
        sop_instance_uid=sop_uid,
        study_instance_uid=study_uid,
        patient_id=fields.patient["patient_id"],
        issuer_of_patient_id=fields.patient["issuer_of_patient_id"]
        or fields.patient["issuer_of_patient_id_qualifiers"].split("&", 1)[0],
        undecodable=fields.instance["undecodable"] if status != DUPLICATE else {},
    )


def _settle_resent_file(sop_uid: str, stored: storage.Stored) -> None:
    """A re-send of stored bytes put a new file under the key of their hash. If that is
    the row's key, the store had lost the file (disk fault, hand deletion) and the re-send
    repaired it. A row whose key is of the two-level layout (``storage``'s compatibility
    rule) keeps its own file, and the new copy is removed; if that file is gone, the row moves to the new one."""
    key = storage.key_for(stored.sha256)
    row_key = (
        Instance.objects.filter(sop_instance_uid=sop_uid, sha256=stored.sha256)
        .values_list("storage_key", flat=True)
        .first()
    )
    if row_key is not None and row_key != key and storage.exists(row_key):
        storage.delete(key)
        return
    if row_key is not None and row_key != key:
        Instance.objects.filter(sop_instance_uid=sop_uid, storage_key=row_key).update(
            storage_key=key
        )
    log.warning("a missing stored object was re-written from an identical re-send")


def _store_with_parents(fields: IndexFields, stored: storage.Stored) -> str:
    """The general case: a SOP Instance UID already stored, or a series not yet stored
    (or stored under other parents, which is refused)."""
    sop_uid = fields.instance["sop_instance_uid"]
    existing = _stored_sha256(sop_uid)
    if existing == stored.sha256:
        return DUPLICATE
    if existing is not None and settings.LOUPE_DUPLICATE_POLICY == "reject":
        raise _conflict(sop_uid)
    return _index(fields, stored, replacing=existing is not None)


def _conflict(sop_uid: str) -> Conflict:
    return Conflict(
        f"SOP Instance UID {sop_uid} is already stored with different content "
        f"(duplicate policy '{settings.LOUPE_DUPLICATE_POLICY}')",
        code="sop_instance_conflict",
    )


def _stored_sha256(sop_uid: str) -> str | None:
    """The SHA-256 stored for a SOP Instance UID (plain SQL: this runs for every object)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT sha256 FROM {Instance._meta.db_table} WHERE sop_instance_uid = %s",  # noqa: S608
            [sop_uid],
        )
        row = cursor.fetchone()
    return str(row[0]) if row else None


def _index(fields: IndexFields, stored: storage.Stored, *, replacing: bool) -> str:
    """Create or update the rows for one object in one transaction (its file is already
    under its key). A new SOP Instance UID is inserted directly: the unique constraint
    catches a concurrent insert."""
    sop_uid = fields.instance["sop_instance_uid"]
    try:
        with transaction.atomic():
            parent = _parent_for(fields)
            previous = None
            if replacing:
                previous = (
                    Instance.objects.select_for_update().filter(sop_instance_uid=sop_uid).first()
                )
            if previous is not None:
                if previous.sha256 == stored.sha256:
                    return DUPLICATE
                if settings.LOUPE_DUPLICATE_POLICY == "reject":
                    raise _conflict(sop_uid)
                return _replace(previous, parent, fields, stored=stored)
            Instance.objects.create(
                series_id=parent.series_id,
                storage_key=storage.key_for(stored.sha256),
                sha256=stored.sha256,
                size_bytes=stored.size,
                **fields.instance,
            )
            # Last, so that the series and study rows are locked only until the commit.
            _count_new_instance(parent)
            return STORED
    except IntegrityError:
        # Another process committed the same SOP Instance UID between our check and insert.
        winner = _stored_sha256(sop_uid)
        if winner is None:
            raise
        if winner == stored.sha256:
            return DUPLICATE
        raise _conflict(sop_uid) from None


@dataclass(frozen=True)
class Parent:
    series_id: int
    study_id: int
    new_series: bool


def _replace(
    previous: Instance, parent: Parent, fields: IndexFields, *, stored: storage.Stored
) -> str:
    key = storage.key_for(stored.sha256)
    old_key, old_series_id = previous.storage_key, previous.series_id
    for name, value in fields.instance.items():
        setattr(previous, name, value)
    previous.series_id = parent.series_id
    previous.storage_key, previous.sha256, previous.size_bytes = key, stored.sha256, stored.size
    previous.save()
    _refresh_counts(parent.series_id)
    if old_series_id != parent.series_id:
        _refresh_counts(old_series_id)
    if old_key != key:
        transaction.on_commit(lambda: storage.delete(old_key))
    log.info("instance replaced under duplicate policy 'overwrite' (row %s)", previous.pk)
    return REPLACED


def _parent_for(fields: IndexFields) -> Parent:
    """The Series row for this object (created with its Study and Patient if needed).
    Refuses UIDs that would move a series or study to another parent."""
    series_uid = fields.series["series_instance_uid"]
    study_uid = fields.study["study_instance_uid"]
    with connection.cursor() as cursor:  # plain SQL: this runs for every object
        cursor.execute(
            f"SELECT se.id, se.study_id, st.study_instance_uid, pa.patient_id, "  # noqa: S608
            f"pa.issuer_of_patient_id, pa.issuer_of_patient_id_qualifiers "
            f"FROM {Series._meta.db_table} se "
            f"JOIN {Study._meta.db_table} st ON st.id = se.study_id "
            f"JOIN {Patient._meta.db_table} pa ON pa.id = st.patient_id "
            f"WHERE se.series_instance_uid = %s",
            [series_uid],
        )
        row = cursor.fetchone()
    if row is not None:
        _check_parents(row[2], (row[3], row[4], row[5]), series_uid, study_uid, fields)
        return Parent(series_id=row[0], study_id=row[1], new_series=False)
    patient_fields = dict(fields.patient)
    patient, patient_created = Patient.objects.get_or_create(
        patient_id=patient_fields.pop("patient_id"),
        issuer_of_patient_id=patient_fields.pop("issuer_of_patient_id"),
        issuer_of_patient_id_qualifiers=patient_fields.pop("issuer_of_patient_id_qualifiers"),
        defaults=patient_fields,
    )
    linking = _index_other_patient_ids(patient, fields)
    if patient_created or linking:  # its person: the identities linked to it (links may
        identity.assign_person_key(patient)  # come before the images)
    study_fields = dict(fields.study)
    del study_fields["study_instance_uid"]
    study, _ = Study.objects.select_related("patient").get_or_create(
        study_instance_uid=study_uid, defaults={"patient": patient, **study_fields}
    )
    _check_parents(
        study.study_instance_uid,
        _identity_fields(study.patient),
        series_uid,
        study_uid,
        fields,
    )
    series_fields = dict(fields.series)
    del series_fields["series_instance_uid"]
    series, created = Series.objects.get_or_create(
        series_instance_uid=series_uid, defaults={"study": study, **series_fields}
    )
    if series.study_id != study.pk:
        raise Conflict(
            f"series {series_uid} is already stored in another study", code="study_mismatch"
        )
    return Parent(series_id=series.pk, study_id=study.pk, new_series=created)


def _identity_fields(patient: Patient) -> tuple[str, str, str]:
    return (
        patient.patient_id,
        patient.issuer_of_patient_id,
        patient.issuer_of_patient_id_qualifiers,
    )


def _index_other_patient_ids(patient: Patient, fields: IndexFields) -> bool:
    """Index the object's (0010,1002) Other Patient IDs items not yet indexed for
    ``patient`` (the first object of each series is read: a patient's other IDs are the
    same in all objects of a series); whether one of them names an issuer, and so links
    (``viewer.services.identity``)."""
    if not fields.other_patient_ids:
        return False
    known = set(
        OtherPatientId.objects.filter(patient_record=patient).values_list(
            "patient_id", "issuer_of_patient_id"
        )
    )
    new = [item for item in fields.other_patient_ids if (item[0], item[1]) not in known]
    OtherPatientId.objects.bulk_create(
        [
            OtherPatientId(
                patient_record=patient,
                patient_id=patient_id,
                issuer_of_patient_id=issuer,
                type_of_patient_id=kind,
            )
            for patient_id, issuer, kind in new
        ],
        ignore_conflicts=True,
    )
    return any(issuer for _, issuer, _ in new)


def _check_parents(
    stored_study_uid: str,
    stored_patient: tuple[str, str, str],
    series_uid: str,
    study_uid: str,
    fields: IndexFields,
) -> None:
    if stored_study_uid != study_uid:
        raise Conflict(
            f"series {series_uid} is already stored in another study", code="study_mismatch"
        )
    sent = (
        fields.patient["patient_id"],
        fields.patient["issuer_of_patient_id"],
        fields.patient["issuer_of_patient_id_qualifiers"],
    )
    if stored_patient != sent:
        raise Conflict(
            f"study {study_uid} is already stored for another patient "
            "(Patient ID, its issuer or the issuer's qualifiers differ)",
            code="patient_mismatch",
        )


def _count_new_instance(parent: Parent) -> None:
    """Add one instance to the derived counts (atomic increments, safe under concurrency)."""
    if parent.new_series:
        _refresh_counts(parent.series_id)
        return
    with connection.cursor() as cursor:  # plain SQL: this runs for every object
        cursor.execute(
            f"UPDATE {Series._meta.db_table} SET number_of_series_related_instances = "  # noqa: S608
            "number_of_series_related_instances + 1 WHERE id = %s",
            [parent.series_id],
        )
        cursor.execute(
            f"UPDATE {Study._meta.db_table} SET number_of_study_related_instances = "  # noqa: S608
            "number_of_study_related_instances + 1 WHERE id = %s",
            [parent.study_id],
        )


def _refresh_counts(series_id: int) -> None:
    """Recompute the derived counts and modalities of a series and its study.

    The study row is locked first so that concurrent ingests that add series to one
    study recompute one after the other, each seeing the rows the previous one committed.
    """
    series = Series.objects.get(pk=series_id)
    study = Study.objects.select_for_update().get(pk=series.study_id)
    Series.objects.filter(pk=series_id).update(
        number_of_series_related_instances=Instance.objects.filter(series_id=series_id).count()
    )
    per_series = Series.objects.filter(study=study).annotate(n=Count("instances"))
    modalities = sorted({s.modality for s in per_series if s.modality})
    Study.objects.filter(pk=study.pk).update(
        number_of_study_related_series=len(per_series),
        number_of_study_related_instances=sum(s.n for s in per_series),
        modalities_in_study="\\".join(modalities),
    )


def archive_limits() -> Limits:
    return Limits(
        max_object_bytes=settings.LOUPE_MAX_INSTANCE_BYTES,
        zip_max_ratio=settings.LOUPE_ZIP_MAX_RATIO,
        zip_max_total_bytes=settings.LOUPE_ZIP_MAX_TOTAL_BYTES,
    )


def ingest_item(item: Item) -> IngestResult:
    """Ingest one item from ``viewer.dicom.archive`` (bytes, a file, or its read error)."""
    if item.error is not None:
        return rejected(item.name, item.error)
    if item.path is not None:
        return ingest_file(item.path, source=item.name)
    assert item.data is not None
    return ingest_bytes(item.data, source=item.name)


def ingest_items(items: Iterable[Item]) -> list[IngestResult]:
    """Ingest ``items`` in order, ``BATCH_OBJECTS`` to a transaction (``batch()``), taking
    them from the iterator one at a time (never a batch's bytes at once). A batch whose
    transaction fails is reported failed (``database_error``) and the next is tried."""
    results: list[IngestResult] = []
    remaining = iter(items)
    while (first := next(remaining, None)) is not None:
        done: list[IngestResult] = []
        current: Item | None = first  # taken, not yet answered for
        try:
            with batch():  # a database down fails here already, before ``first``
                chunk = itertools.chain([first], itertools.islice(remaining, BATCH_OBJECTS - 1))
                for current in chunk:
                    done.append(ingest_item(current))
                    current = None
        except BatchFailed as failure:
            done = failed_batch(done, failure.error)
            if current is not None:
                done.append(rejected(current.name, failure.error))
        results += done
    return results


def summarize(results: list[IngestResult]) -> dict[str, int]:
    counts = {STORED: 0, DUPLICATE: 0, REPLACED: 0, REJECTED: 0}
    for result in results:
        counts[result.status] += 1
    return counts
