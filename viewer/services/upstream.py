"""A PACS behind Loupe: upstream DICOMweb archives (LOUPE_UPSTREAM_DICOMWEB) searched
beside the local archive and fetched from on demand into it, kept in a bounded cache.

Search (``search_for_worklist``, ``remote_priors``): a QIDO-RS Search for Studies
(PS3.18 §10.6.1) of each archive with the worklist's filters mapped to matching keys
((0010,0010) PatientName, (0010,0020) PatientID, (0008,0050) AccessionNumber,
(0008,0020) StudyDate as a range, (0008,0061) ModalitiesInStudy; PS3.18 §8.3.4) and
``limit``. Studies held locally are left out (they show once, as local). Each query is
recorded as an A.5.3.10 Query with the names of its matching keys, never their values.
An archive that does not answer is reported by name (``errors``), never as an empty list.

Scope (``viewer.access``): radiologists and administrators see every remote study; a
launched clinician only those of the launched patient: each archive is asked with that
(0010,0020) Patient ID, and each answer's Patient ID and (0010,0021) Issuer of Patient ID
are checked again against the launch (an archive's answer is not trusted to have
matched). A share session, or a session with no role, never queries upstream.

Fetch (``open_remote``, ``fetch_study``): the study is confirmed in scope by the
archive's own QIDO-RS answer, then retrieved series by series with WADO-RS (PS3.18
§10.4.1.1.2) in a background thread, each object through
``viewer.services.ingest.ingest_bytes`` (source ``upstream:<name>``); progress is an
``UpstreamCacheEntry`` row, polled by the progress page. The transfer is recorded as
A.5.3.7 DICOM Instances Transferred.

Cache: an object the fetch stored (it was not already held) is recorded as cached
(``UpstreamCachedInstance``); one already held, whatever way it came in, is local and
stays. When the cached objects exceed LOUPE_UPSTREAM_CACHE_MB, whole studies are
evicted, least recently opened first: their cached rows, and each file once no row
refers to it (the store is content-addressed). Never the study just opened, never a
study still being fetched, never an object with a measurement on it, never a local one.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Sum
from django.http import HttpRequest
from django.utils import timezone

from viewer import access
from viewer.errors import NotFound, ViewerError
from viewer.models import (
    Instance,
    Measurement,
    Series,
    Study,
    UpstreamCachedInstance,
    UpstreamCacheEntry,
)
from viewer.roles import ADMINISTRATOR, CLINICIAN, RADIOLOGIST
from viewer.services import audit, ingest, storage
from viewer.upstream import client
from viewer.upstream.client import RemoteStudy, UpstreamError
from viewer.upstream.config import Upstream, UpstreamConfigError, parse_upstreams

log = logging.getLogger(__name__)

#: The session key listing the remote studies this session was shown in scope
#: ("<upstream>/<study uid>"), so that polling the fetch's status asks no archive.
SESSION_OPENED = "loupe_remote_opened"
MAX_OPENED = 200
#: A fetch whose entry has not moved for this long is taken as dead (its process ended).
STALE_AFTER = dt.timedelta(minutes=10)
State = UpstreamCacheEntry.State


class UpstreamUnavailable(ViewerError):
    """An archive did not answer while opening a remote study (502)."""

    status = 502
    code = "upstream_unavailable"


def configured() -> tuple[Upstream, ...]:
    """The archives of settings.LOUPE_UPSTREAM_DICOMWEB (parsed objects, or the raw JSON
    text or list of dicts a test or a caller may put there)."""
    value: Any = getattr(settings, "LOUPE_UPSTREAM_DICOMWEB", ())
    if isinstance(value, str):
        return parse_upstreams(value)
    if isinstance(value, list | tuple) and all(isinstance(v, Upstream) for v in value):
        return tuple(value)
    if isinstance(value, list | tuple | dict):
        import json

        return parse_upstreams(json.dumps(value))
    raise UpstreamConfigError("LOUPE_UPSTREAM_DICOMWEB must be a list of archives")


def upstream_named(name: str) -> Upstream | None:
    return next((u for u in configured() if u.name == name), None)


@dataclass(frozen=True)
class RemoteScope:
    """What this session may see upstream: everything, or these (Patient ID, issuer)."""

    everything: bool
    patients: tuple[tuple[str, str], ...] = ()

    def admits(self, study: RemoteStudy) -> bool:
        if self.everything:
            return True
        return (study.patient_id, study.issuer_of_patient_id) in set(self.patients)


def remote_scope(request: HttpRequest) -> RemoteScope | None:
    """None where this session never queries upstream (a share, no role)."""
    if not request.user.is_authenticated or access.share_scope(request) is not None:
        return None
    role = access.role_of(request)
    scope = access.scope_of(request)
    if role in (RADIOLOGIST, ADMINISTRATOR):
        return RemoteScope(everything=True)
    if role == CLINICIAN and scope is not None:
        patients = tuple(p for p in scope.patients if p[0])
        return RemoteScope(everything=False, patients=patients) if patients else None
    return None


@dataclass
class RemoteResults:
    """Remote studies for a page, and the archives that did not answer (by message)."""

    studies: list[RemoteStudy] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _clean(value: str) -> str:
    """A typed filter value without QIDO-RS's wildcard characters and value separator."""
    return "".join(c for c in value if c not in "*?\\").strip()


def _date_range(date_from: dt.date | None, date_to: dt.date | None) -> str:
    start = date_from.strftime("%Y%m%d") if date_from else ""
    end = date_to.strftime("%Y%m%d") if date_to else ""
    return f"{start}-{end}" if start != end else start


def worklist_params(query: Any) -> list[tuple[str, str]]:
    """A ``viewer.worklist.WorklistQuery`` as QIDO-RS matching keys (PS3.18 §8.3.4.1):
    a name anywhere in (0010,0010), IDs and accession numbers by their start, the dates
    as a DA range."""
    params: list[tuple[str, str]] = []
    if _clean(query.name):
        params.append(("PatientName", f"*{_clean(query.name)}*"))
    if _clean(query.patient_id):
        params.append(("PatientID", f"{_clean(query.patient_id)}*"))
    if _clean(query.accession):
        params.append(("AccessionNumber", f"{_clean(query.accession)}*"))
    if query.date_from or query.date_to:
        params.append(("StudyDate", _date_range(query.date_from, query.date_to)))
    if _clean(query.modality):
        params.append(("ModalitiesInStudy", _clean(query.modality)))
    return params


def _scoped_queries(
    scope: RemoteScope, params: list[tuple[str, str]]
) -> list[list[tuple[str, str]]]:
    """The queries to send: one, or for a clinician one per launched Patient ID (the
    typed Patient ID must be a start of it, else none)."""
    if scope.everything:
        return [params]
    typed = next((v.rstrip("*") for k, v in params if k == "PatientID"), "")
    others = [(k, v) for k, v in params if k != "PatientID"]
    pids = sorted({pid for pid, _ in scope.patients if pid.startswith(typed)})
    return [[*others, ("PatientID", pid)] for pid in pids]


def search(
    request: HttpRequest, params: list[tuple[str, str]], *, limit: int, purpose: str
) -> RemoteResults:
    """Every configured archive searched with ``params`` within this session's scope;
    studies held locally left out, each study once (the first archive's)."""
    results = RemoteResults()
    scope = remote_scope(request)
    upstreams = configured()
    if scope is None or not upstreams:
        return results
    queries = _scoped_queries(scope, params)

    def ask(upstream: Upstream) -> list[RemoteStudy] | UpstreamError:
        found: list[RemoteStudy] = []
        try:
            for query in queries:
                found += client.search_studies(upstream, query, limit=limit)
        except UpstreamError as error:
            return error
        return found

    # The archives are asked at once (each bounded by its timeout), so the slowest one,
    # not their sum, is what the worklist waits for; answers are taken in their order.
    if len(upstreams) == 1:
        answers = [ask(upstreams[0])]
    else:
        with ThreadPoolExecutor(max_workers=min(len(upstreams), 8)) as pool:
            answers = list(pool.map(ask, upstreams))
    seen: set[str] = set()
    for upstream, answer in zip(upstreams, answers, strict=True):
        names = sorted({key for key, _ in params} | {f"upstream:{upstream.name}", purpose})
        if isinstance(answer, UpstreamError):
            audit.record_query(
                request, filters=names, count=0, outcome=audit.Outcome.SERIOUS_FAILURE
            )
            results.errors.append(str(answer))
            continue
        found = answer
        admitted = [s for s in found if scope.admits(s) and s.study_instance_uid not in seen]
        audit.record_query(request, filters=names, count=len(admitted))
        for study in admitted:
            seen.add(study.study_instance_uid)
            results.studies.append(study)
    local = set(
        Study.objects.filter(study_instance_uid__in=sorted(seen)).values_list(
            "study_instance_uid", flat=True
        )
    )
    results.studies = [s for s in results.studies if s.study_instance_uid not in local]
    results.studies.sort(
        key=lambda s: (s.study_date or dt.date.min, s.study_time or dt.time.min), reverse=True
    )
    return results


def search_for_worklist(request: HttpRequest, query: Any, *, limit: int) -> RemoteResults:
    """The worklist's remote rows (``viewer.worklist.WorklistQuery`` filters)."""
    return search(request, worklist_params(query), limit=limit, purpose="worklist")


def remote_priors(request: HttpRequest, study: Study, *, limit: int = 20) -> RemoteResults:
    """The earlier studies of ``study``'s patient held upstream only: same (0010,0020)
    Patient ID and issuer, dated before it (``viewer.services.priors`` decides relevance
    on local studies; a remote one is listed for fetching)."""
    patient = study.patient
    if not patient.patient_id or study.study_date is None:
        return RemoteResults()
    before = study.study_date - dt.timedelta(days=1)
    params = [("PatientID", patient.patient_id), ("StudyDate", f"-{before:%Y%m%d}")]
    found = search(request, params, limit=limit, purpose="priors")
    issuer = patient.issuer_of_patient_id
    found.studies = [
        s
        for s in found.studies
        if s.patient_id == patient.patient_id and s.issuer_of_patient_id == issuer
    ]
    return found


# Opening a remote study.


def _remember(request: HttpRequest, key: str) -> None:
    opened = [k for k in request.session.get(SESSION_OPENED, []) if k != key]
    request.session[SESSION_OPENED] = [*opened, key][-MAX_OPENED:]


def was_opened(request: HttpRequest, upstream_name: str, study_uid: str) -> bool:
    """Whether this session was shown this remote study in scope (``find_remote``)."""
    return f"{upstream_name}/{study_uid}" in request.session.get(SESSION_OPENED, [])


def find_remote(request: HttpRequest, upstream_name: str, study_uid: str) -> RemoteStudy:
    """The remote study, confirmed in this session's scope by the archive's own QIDO-RS
    answer; the same 404 for an unknown archive or study as for one out of scope."""
    upstream = upstream_named(upstream_name)
    scope = remote_scope(request)
    if upstream is None or scope is None:
        audit.record_refused(request, "remote-study", study_uid)
        raise NotFound("no such study", code="not_found")
    params = [("StudyInstanceUID", study_uid)]
    names = ["StudyInstanceUID", f"upstream:{upstream.name}", "open"]
    try:
        found: list[RemoteStudy] = []
        for query in _scoped_queries(scope, params):
            found += client.search_studies(upstream, query, limit=2)
    except UpstreamError as error:
        audit.record_query(request, filters=names, count=0, outcome=audit.Outcome.SERIOUS_FAILURE)
        raise UpstreamUnavailable(str(error)) from None
    match = next((s for s in found if s.study_instance_uid == study_uid and scope.admits(s)), None)
    audit.record_query(request, filters=names, count=1 if match else 0)
    if match is None:
        audit.record_refused(request, "remote-study", study_uid)
        raise NotFound("no such study", code="not_found")
    _remember(request, f"{upstream.name}/{study_uid}")
    return match


def _launch_thread(work: Callable[[], None]) -> None:
    def run() -> None:
        try:
            work()
        finally:
            connection.close()  # this thread's own connection

    threading.Thread(target=run, name="loupe-upstream-fetch", daemon=True).start()


#: How a fetch is run: in a thread of its own (tests may run it in place).
launch: Callable[[Callable[[], None]], None] = _launch_thread


def open_remote(
    request: HttpRequest, upstream_name: str, study_uid: str
) -> UpstreamCacheEntry | None:
    """Open a remote study: None when it is held locally (fetched or not: the viewer
    shows it now); else its fetch's entry, the fetch started unless one is running."""
    remote = find_remote(request, upstream_name, study_uid)
    entry = UpstreamCacheEntry.objects.filter(study_instance_uid=study_uid).first()
    held = Study.objects.filter(study_instance_uid=study_uid).exists()
    if held and (entry is None or entry.state == State.CACHED):
        touch(study_uid)
        return None
    now = timezone.now()
    if entry is not None and entry.state == State.FETCHING and now - entry.updated_at < STALE_AFTER:
        return entry
    total = remote.number_of_study_related_instances or 0
    with transaction.atomic():
        entry, _ = UpstreamCacheEntry.objects.select_for_update().get_or_create(
            study_instance_uid=study_uid, defaults={"upstream": upstream_name}
        )
        if (
            entry.state == State.FETCHING
            and entry.instances_fetched
            and now - entry.updated_at < STALE_AFTER
        ):
            return entry
        entry.upstream = upstream_name
        entry.state = State.FETCHING
        entry.instances_total = total
        entry.instances_fetched = entry.instances_failed = 0
        entry.message = ""
        entry.started_at = entry.last_used_at = now
        entry.save()
    upstream = upstream_named(upstream_name)
    assert upstream is not None  # find_remote checked it
    user = request.user.get_username()
    entry_id = entry.pk
    # The entry has committed (autocommit outside the block above): the fetch sees it.
    launch(lambda: fetch_study(upstream, study_uid, entry_id, user=user))
    return entry


def fetch_study(upstream: Upstream, study_uid: str, entry_id: int, *, user: str) -> None:
    """Retrieve the study series by series into the archive (the fetch's work); the
    entry says how far it got, and ends cached or failed with the reason."""
    results: list[ingest.IngestResult] = []
    source = f"upstream:{upstream.name}"
    entries = UpstreamCacheEntry.objects.filter(pk=entry_id)
    fetched = failed = 0
    refusals: dict[str, int] = {}
    try:
        series = client.search_series(upstream, study_uid)
        counted = [n for _, n in series if n is not None]
        if len(counted) == len(series) and series:
            entries.filter(instances_total=0).update(instances_total=sum(counted))
        for series_uid, _ in series:
            for data in client.retrieve_series(
                upstream, study_uid, series_uid, max_part_bytes=settings.LOUPE_MAX_INSTANCE_BYTES
            ):
                result = ingest.ingest_bytes(data, source=source, study_uid=study_uid)
                results.append(result)
                if result.status == ingest.STORED:  # new here; a replaced one was local
                    record_cached(entry_id, result.sop_instance_uid, data)
                if result.ok:
                    fetched += 1
                else:
                    failed += 1
                    refusals[result.code] = refusals.get(result.code, 0) + 1
                entries.update(instances_fetched=fetched, instances_failed=failed)
        size = (
            UpstreamCachedInstance.objects.filter(entry_id=entry_id).aggregate(s=Sum("size_bytes"))[
                "s"
            ]
            or 0
        )
        message = ""
        if refusals:
            message = "refused: " + ", ".join(f"{n} {code}" for code, n in sorted(refusals.items()))
        if not fetched and not failed:
            entries.update(
                state=State.FAILED, message=f"the archive '{upstream.name}' sent no object"
            )
        else:
            entries.update(
                state=State.CACHED if fetched else State.FAILED,
                bytes=size,
                message=message[:300],
                instances_total=fetched + failed,
                last_used_at=timezone.now(),
            )
    except UpstreamError as error:
        entries.update(state=State.FAILED, message=str(error)[:300])
    except Exception:
        log.exception("fetching a study from the archive '%s' failed", upstream.name)
        entries.update(state=State.FAILED, message="the fetch failed (see the server log)")
        raise
    finally:
        # What a failed fetch stored stays cached (evictable) too.
        stored = UpstreamCachedInstance.objects.filter(entry_id=entry_id)
        entries.update(bytes=stored.aggregate(s=Sum("size_bytes"))["s"] or 0)
        if results:
            audit.record_transfer(None, results, user=user)
        evict_over_cap(keep={study_uid})


def record_cached(entry_id: int, sop_uid: str, data: bytes) -> None:
    """Record an object a fetch stored (new here) as the cache's to remove."""
    UpstreamCachedInstance.objects.update_or_create(
        sop_instance_uid=sop_uid,
        defaults={
            "entry_id": entry_id,
            "sha256": storage.sha256_hex(data),
            "size_bytes": len(data),
        },
    )


def claim_local(sop_uid: str) -> None:
    """An object came in locally (``viewer.services.ingest``, any source but an upstream
    fetch): if a fetch had cached it, it is local from now on and never evicted."""
    if not sop_uid:
        return
    for cached in UpstreamCachedInstance.objects.filter(sop_instance_uid=sop_uid):
        UpstreamCacheEntry.objects.filter(pk=cached.entry_id, bytes__gte=cached.size_bytes).update(
            bytes=F("bytes") - cached.size_bytes
        )
        cached.delete()


def entry_of(study_uid: str) -> UpstreamCacheEntry | None:
    return UpstreamCacheEntry.objects.filter(study_instance_uid=study_uid).first()


def status_json(entry: UpstreamCacheEntry | None, viewer_url: str) -> dict[str, Any]:
    """The progress page's poll: how far the fetch got."""
    if entry is None:
        return {
            "state": State.CACHED,
            "fetched": 0,
            "total": 0,
            "failed": 0,
            "message": "",
            "viewer_url": viewer_url,
        }
    return {
        "state": entry.state,
        "fetched": entry.instances_fetched,
        "total": max(entry.instances_total, entry.instances_fetched + entry.instances_failed),
        "failed": entry.instances_failed,
        "message": entry.message,
        "viewer_url": viewer_url if entry.state == State.CACHED else "",
    }


# The cache.


def touch(study_uid: str) -> None:
    """A cached study was opened: it becomes the most recently used."""
    UpstreamCacheEntry.objects.filter(study_instance_uid=study_uid).update(
        last_used_at=timezone.now()
    )


#: The entries the cache may evict: done fetching, whether all came or not.
SETTLED = (State.CACHED, State.FAILED)


def cache_bytes() -> int:
    total = UpstreamCacheEntry.objects.filter(state__in=SETTLED).aggregate(s=Sum("bytes"))["s"]
    return int(total or 0)


def evict_over_cap(*, keep: Iterable[str] = (), cap: int | None = None) -> list[str]:
    """Evict the least recently used cached studies until the cache fits under ``cap``
    (settings.LOUPE_UPSTREAM_CACHE_BYTES); never those in ``keep``. Their UIDs."""
    limit = settings.LOUPE_UPSTREAM_CACHE_BYTES if cap is None else cap
    kept = set(keep)
    evicted: list[str] = []
    total = cache_bytes()
    if total <= limit:
        return evicted
    for entry in UpstreamCacheEntry.objects.filter(state__in=SETTLED).order_by(
        "last_used_at", "pk"
    ):
        if total <= limit:
            break
        if entry.study_instance_uid in kept:
            continue
        total -= entry.bytes
        evict(entry)
        evicted.append(entry.study_instance_uid)
    return evicted


def evict(entry: UpstreamCacheEntry) -> None:
    """Remove a cached study's cached objects (rows, then files no row refers to), and
    its series and study once empty; local objects and measured ones stay."""
    keys: set[str] = set()
    with transaction.atomic():
        cached = {c.sop_instance_uid: c.sha256 for c in entry.cached_instances.all()}
        rows = list(
            Instance.objects.filter(sop_instance_uid__in=sorted(cached)).only(
                "pk", "sop_instance_uid", "sha256", "storage_key", "series_id"
            )
        )
        measured = set(
            Measurement.objects.filter(instance__in=[r.pk for r in rows]).values_list(
                "instance_id", flat=True
            )
        )
        doomed = [
            r for r in rows if r.sha256 == cached[r.sop_instance_uid] and r.pk not in measured
        ]
        series_ids = {r.series_id for r in doomed}
        keys = {r.storage_key for r in doomed}
        Instance.objects.filter(pk__in=[r.pk for r in doomed]).delete()
        _settle_parents(series_ids)
        entry.delete()
    referenced = set(
        Instance.objects.filter(storage_key__in=sorted(keys)).values_list("storage_key", flat=True)
    )
    for key in sorted(keys - referenced):
        try:
            storage.delete(key)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("an evicted object's file could not be removed: %s", exc.strerror)


def _settle_parents(series_ids: set[int]) -> None:
    """Recount the series and studies that lost instances; remove those left empty."""
    study_ids = set(
        Series.objects.filter(pk__in=sorted(series_ids)).values_list("study_id", flat=True)
    )
    for series in Series.objects.filter(pk__in=sorted(series_ids)).annotate(n=Count("instances")):
        if series.n == 0 and not Measurement.objects.filter(series=series).exists():
            series.delete()
        else:
            Series.objects.filter(pk=series.pk).update(number_of_series_related_instances=series.n)
    for study in Study.objects.filter(pk__in=sorted(study_ids)):
        per_series = list(Series.objects.filter(study=study).annotate(n=Count("instances")))
        if not per_series and not Measurement.objects.filter(study=study).exists():
            study.delete()
            continue
        modalities = sorted({s.modality for s in per_series if s.modality})
        Study.objects.filter(pk=study.pk).update(
            number_of_study_related_series=len(per_series),
            number_of_study_related_instances=sum(s.n for s in per_series),
            number_of_undecodable_instances=Instance.objects.filter(series__study=study)
            .exclude(undecodable={})
            .count(),
            modalities_in_study="\\".join(modalities),
        )
