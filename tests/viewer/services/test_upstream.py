"""viewer.upstream and viewer.services.upstream: the LOUPE_UPSTREAM_DICOMWEB parser, the
archive client's errors and multipart reader, and the bounded cache of fetched studies,
which never removes a local object (real corpus files, stored through ingest)."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from config.environment import ImproperlyConfiguredEnv
from tests.factories import corpus_files
from tests.servers import free_port
from viewer.dicomweb.multipart import Multipart, Part
from viewer.models import Instance, Series, Study, UpstreamCachedInstance, UpstreamCacheEntry
from viewer.services import ingest, storage, upstream
from viewer.upstream import client
from viewer.upstream.config import Upstream, UpstreamConfigError, parse_upstreams

# The parser.


def test_archives_are_parsed_with_their_auth_and_timeout() -> None:
    archives = parse_upstreams(
        json.dumps(
            [
                {"name": "pacs", "url": "http://127.0.0.1:8042/dicom-web/", "auth": None},
                {"name": "vna-2", "url": "https://vna.example/wado", "auth": {"basic": ["u", "p"]}},
                {
                    "name": "cloud",
                    "url": "http://127.0.0.1:9/dw",
                    "auth": {"bearer": "t0k"},
                    "timeout": 2.5,
                },
            ]
        )
    )
    assert [(a.name, a.url, a.timeout) for a in archives] == [
        ("pacs", "http://127.0.0.1:8042/dicom-web", 10.0),
        ("vna-2", "https://vna.example/wado", 10.0),
        ("cloud", "http://127.0.0.1:9/dw", 2.5),
    ]
    assert archives[1].basic == ("u", "p") and archives[1].headers() == {}
    assert archives[2].headers() == {"Authorization": "Bearer t0k"}
    assert "t0k" not in repr(archives[2]) and "'p'" not in repr(archives[1])
    assert parse_upstreams(None) == () and parse_upstreams("  ") == ()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("[{", "not JSON"),
        ('"pacs"', "must be a JSON array"),
        ('[{"url": "http://h/dw"}]', "name must be"),
        ('[{"name": "a b", "url": "http://h/dw"}]', "name must be"),
        (
            '[{"name": "p", "url": "http://h/dw"}, {"name": "p", "url": "http://h/x"}]',
            "given twice",
        ),
        ('[{"name": "p"}]', "url is required"),
        ('[{"name": "p", "url": "ftp://h/dw"}]', "not an http(s) URL"),
        ('[{"name": "p", "url": "http://u:secret@h/dw"}]', "no query, fragment or credentials"),
        ('[{"name": "p", "url": "http://h/dw", "auth": {"basic": "u:secret"}}]', "auth.basic"),
        ('[{"name": "p", "url": "http://h/dw", "auth": {"bearer": ""}}]', "auth.bearer"),
        ('[{"name": "p", "url": "http://h/dw", "auth": {"digest": "x"}}]', "unknown auth"),
        ('[{"name": "p", "url": "http://h/dw", "timeout": 0}]', "timeout 0 is outside"),
        ('[{"name": "p", "url": "http://h/dw", "timeout": "10"}]', "timeout must be a number"),
        ('[{"name": "p", "url": "http://h/dw", "user": "x"}]', "unknown key(s) user"),
    ],
)
def test_a_malformed_value_is_refused_naming_the_problem(value: str, message: str) -> None:
    with pytest.raises(UpstreamConfigError) as raised:
        parse_upstreams(value)
    assert message in str(raised.value)
    assert "secret" not in str(raised.value)


def test_settings_refuse_a_malformed_value_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    import config.settings

    monkeypatch.setenv("LOUPE_DEBUG", "1")
    monkeypatch.setenv("LOUPE_UPSTREAM_DICOMWEB", '[{"name": "pacs", "url": "nowhere"}]')
    try:
        with pytest.raises(
            ImproperlyConfiguredEnv, match="LOUPE_UPSTREAM_DICOMWEB: archive 'pacs'"
        ):
            importlib.reload(config.settings)
    finally:
        monkeypatch.delenv("LOUPE_UPSTREAM_DICOMWEB")
        importlib.reload(config.settings)


# The client: failures are named, never an empty answer.


class _Archive(BaseHTTPRequestHandler):
    """A stand-in archive on loopback answering each path as the test set it."""

    answers: dict[str, tuple[int, str, bytes]] = {}
    delay = threading.Event()
    counting = threading.Lock()
    in_flight = 0
    most_in_flight = 0  # of the slow requests at once

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path.endswith("/slow/studies"):
            with self.counting:
                _Archive.in_flight += 1
                _Archive.most_in_flight = max(_Archive.most_in_flight, _Archive.in_flight)
            self.delay.wait(5)
            with self.counting:
                _Archive.in_flight -= 1
        status, content_type, body = self.answers.get(path, (404, "text/plain", b"no"))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def archive() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Archive)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    _Archive.delay.set()
    server.shutdown()
    server.server_close()
    _Archive.delay.clear()


def _study_json(uid: str, pid: str) -> dict[str, Any]:
    return {
        "0020000D": {"vr": "UI", "Value": [uid]},
        "00100020": {"vr": "LO", "Value": [pid]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "DOE^JANE"}]},
        "00080020": {"vr": "DA", "Value": ["20240131"]},
        "00080030": {"vr": "TM", "Value": ["101500.5"]},
        "00080061": {"vr": "CS", "Value": ["CT", "SR"]},
        "00201208": {"vr": "IS", "Value": [12]},
    }


def test_a_search_answer_is_read_as_remote_studies(archive: str) -> None:
    body = json.dumps([_study_json("1.2.3", "P1"), {"00100020": {"vr": "LO"}}]).encode()
    _Archive.answers = {"/ok/studies": (200, "application/dicom+json", body)}
    (study,) = client.search_studies(Upstream("pacs", f"{archive}/ok"), [], limit=5)
    assert study.study_instance_uid == "1.2.3" and study.patient_id == "P1"
    assert study.patient_name == "DOE^JANE" and study.modalities_in_study == "CT\\SR"
    assert study.study_date == dt.date(2024, 1, 31) and study.study_time == dt.time(10, 15)
    assert study.number_of_study_related_instances == 12


@pytest.mark.parametrize(
    ("path", "answer", "problem"),
    [
        ("/e500", (500, "text/plain", b"boom"), "HTTP 500"),
        ("/e401", (401, "text/plain", b"no"), "HTTP 401"),
        ("/html", (200, "text/html", b"<html>"), "not JSON"),
        ("/obj", (200, "application/dicom+json", b"{}"), "not a JSON array"),
    ],
)
def test_an_archive_that_answers_badly_is_named(
    archive: str, path: str, answer: tuple[int, str, bytes], problem: str
) -> None:
    _Archive.answers = {f"{path}/studies": answer}
    with pytest.raises(client.UpstreamError) as raised:
        client.search_studies(Upstream("pacs", f"{archive}{path}"), [], limit=5)
    assert str(raised.value).startswith("the archive 'pacs' did not answer: ")
    assert problem in str(raised.value)


def test_a_refused_connection_and_a_timeout_are_named(archive: str) -> None:
    with pytest.raises(client.UpstreamError, match="connection was refused"):
        client.search_studies(Upstream("pacs", f"http://127.0.0.1:{free_port()}/dw"), [], limit=5)
    slow = Upstream("slow", f"{archive}/slow", timeout=0.3)
    with pytest.raises(client.UpstreamError, match=r"no answer within 0\.3 s"):
        client.search_studies(slow, [], limit=5)


def test_the_worklist_filters_become_matching_keys_without_wildcards_typed() -> None:
    from viewer.worklist import WorklistQuery

    query = WorklistQuery.from_params(
        {
            "name": "do*e",
            "patient_id": "P?1",
            "date_from": "2024-01-01",
            "date_to": "2024-02-01",
            "modality": "ct",
        }
    )
    assert upstream.worklist_params(query) == [
        ("PatientName", "*doe*"),
        ("PatientID", "P1*"),
        ("StudyDate", "20240101-20240201"),
        ("ModalitiesInStudy", "CT"),
    ]


# The multipart reader, on the bodies Loupe's own WADO-RS writes, with real objects.


@pytest.mark.parametrize("chunk", [1, 7, 4096, 10**7])
def test_the_parts_are_read_as_the_body_streams(shared_dicom: Path, chunk: int) -> None:
    objects = [p.read_bytes() for p in corpus_files(shared_dicom, "ct-series", 3)]
    if chunk == 1:
        objects = [o[:3000] for o in objects]  # byte by byte: short parts
    body = Multipart("application/dicom")
    raw = b"".join(body.stream([Part("application/dicom", [o]) for o in objects]))
    chunks = [raw[i : i + chunk] for i in range(0, len(raw), chunk)]
    parts = list(client.read_parts(chunks, body.boundary, max_part_bytes=10**8))
    assert [content for _, content in parts] == objects
    assert all(headers["content-type"] == "application/dicom" for headers, _ in parts)


def test_a_truncated_or_oversized_body_is_refused(shared_dicom: Path) -> None:
    data = corpus_files(shared_dicom, "ct-series", 1)[0].read_bytes()
    body = Multipart("application/dicom")
    raw = b"".join(body.stream([Part("application/dicom", [data])]))
    with pytest.raises(ValueError, match="ends before its closing boundary"):
        list(client.read_parts([raw[: len(raw) // 2]], body.boundary, max_part_bytes=10**8))
    with pytest.raises(ValueError, match="larger than 1000 bytes"):
        list(
            client.read_parts(
                [raw[i : i + 4096] for i in range(0, len(raw), 4096)],
                body.boundary,
                max_part_bytes=1000,
            )
        )


# The cache: whole studies, least recently used first, never a local object.


def _fetched(paths: list[Path], *, name: str = "pacs") -> UpstreamCacheEntry:
    """What a fetch does with these objects: ingest each, record those it stored."""
    uid = ""
    results = [ingest.ingest_bytes(p.read_bytes(), source=f"upstream:{name}") for p in paths]
    assert all(r.ok for r in results), [r.as_dict() for r in results]
    uid = results[0].study_instance_uid
    entry = UpstreamCacheEntry.objects.create(
        upstream=name, study_instance_uid=uid, state=UpstreamCacheEntry.State.CACHED
    )
    for path, result in zip(paths, results, strict=True):
        if result.status == ingest.STORED:
            upstream.record_cached(entry.pk, result.sop_instance_uid, path.read_bytes())
    size = sum(c.size_bytes for c in entry.cached_instances.all())
    UpstreamCacheEntry.objects.filter(pk=entry.pk).update(bytes=size)
    entry.refresh_from_db()
    return entry


def _files_of(study_uid: str) -> list[str]:
    return list(
        Instance.objects.filter(series__study__study_instance_uid=study_uid).values_list(
            "storage_key", flat=True
        )
    )


@pytest.mark.django_db
def test_eviction_removes_the_least_recently_used_cached_study(shared_dicom: Path) -> None:
    mr = _fetched(corpus_files(shared_dicom, "mr-series", 2))
    cr = _fetched(corpus_files(shared_dicom, "cr-monochrome1", 1))
    mr_keys = _files_of(mr.study_instance_uid)
    UpstreamCacheEntry.objects.filter(pk=mr.pk).update(
        last_used_at=timezone.now() - dt.timedelta(days=1)
    )
    upstream.touch(cr.study_instance_uid)
    assert upstream.cache_bytes() == mr.bytes + cr.bytes
    evicted = upstream.evict_over_cap(cap=cr.bytes)
    assert evicted == [mr.study_instance_uid]
    assert not Study.objects.filter(study_instance_uid=mr.study_instance_uid).exists()
    assert not any(storage.exists(key) for key in mr_keys)
    assert all(storage.exists(key) for key in _files_of(cr.study_instance_uid))
    assert upstream.cache_bytes() == cr.bytes
    # Under the cap nothing more goes; the study just opened is never evicted.
    assert upstream.evict_over_cap(cap=cr.bytes) == []
    assert upstream.evict_over_cap(cap=1, keep={cr.study_instance_uid}) == []


@pytest.mark.django_db
def test_eviction_never_touches_a_local_instance(shared_dicom: Path) -> None:
    ct = corpus_files(shared_dicom, "ct-series", 5)
    for path in ct[:3]:  # uploaded here first: local
        assert ingest.ingest_file(path).status == ingest.STORED
    local_keys = set(Instance.objects.values_list("storage_key", flat=True))
    entry = _fetched(ct)  # the same study fetched: 3 duplicates, 2 new
    assert UpstreamCachedInstance.objects.filter(entry=entry).count() == 2
    assert upstream.evict_over_cap(cap=0) == [entry.study_instance_uid]
    study = Study.objects.get(study_instance_uid=entry.study_instance_uid)
    assert study.number_of_study_related_instances == 3
    assert Series.objects.get(study=study).number_of_series_related_instances == 3
    assert set(_files_of(study.study_instance_uid)) == local_keys
    assert all(storage.exists(key) for key in local_keys)
    assert sorted(storage.all_keys()) == sorted(local_keys)
    assert not UpstreamCacheEntry.objects.exists()


@pytest.mark.django_db
def test_eviction_keeps_a_file_another_row_still_refers_to(shared_dicom: Path) -> None:
    entry = _fetched(corpus_files(shared_dicom, "mr-series", 1))
    row = Instance.objects.get(series__study__study_instance_uid=entry.study_instance_uid)
    # Another row holding the same stored file (content-addressed: one file, two rows).
    local = store_other_row_on(row)
    upstream.evict(entry)
    assert not Instance.objects.filter(pk=row.pk).exists()
    assert storage.exists(local.storage_key)


def store_other_row_on(row: Instance) -> Instance:
    """A local row of another study pointing at ``row``'s stored file."""
    patient = row.series.study.patient
    study = Study.objects.create(study_instance_uid="1.2.826.0.1.3680043.9.7.1", patient=patient)
    series = Series.objects.create(series_instance_uid="1.2.826.0.1.3680043.9.7.2", study=study)
    return Instance.objects.create(
        sop_instance_uid="1.2.826.0.1.3680043.9.7.3",
        series=series,
        sop_class_uid=row.sop_class_uid,
        transfer_syntax_uid=row.transfer_syntax_uid,
        storage_key=row.storage_key,
        sha256=row.sha256,
        size_bytes=row.size_bytes,
    )


def test_a_series_uid_that_is_not_a_uid_never_reaches_a_retrieve_path(archive: str) -> None:
    body = json.dumps([{"0020000E": {"vr": "UI", "Value": ["../../instances"]}}]).encode()
    _Archive.answers = {"/dw/studies/1.2.3/series": (200, "application/dicom+json", body)}
    with pytest.raises(client.UpstreamError, match="malformed Series UID"):
        client.search_series(Upstream("pacs", f"{archive}/dw"), "1.2.3")
    good = json.dumps(
        [{"0020000E": {"vr": "UI", "Value": ["1.2.3.4"]}, "00201209": {"vr": "IS", "Value": [2]}}]
    ).encode()
    _Archive.answers = {"/dw/studies/1.2.3/series": (200, "application/dicom+json", good)}
    assert client.search_series(Upstream("pacs", f"{archive}/dw"), "1.2.3") == [("1.2.3.4", 2)]


@pytest.mark.django_db
def test_what_a_failed_fetch_stored_is_evictable(shared_dicom: Path) -> None:
    entry = _fetched(corpus_files(shared_dicom, "mr-series", 2))
    UpstreamCacheEntry.objects.filter(pk=entry.pk).update(state=UpstreamCacheEntry.State.FAILED)
    assert upstream.cache_bytes() == entry.bytes > 0
    assert upstream.evict_over_cap(cap=0) == [entry.study_instance_uid]
    assert storage.all_keys() == []


@pytest.mark.django_db
def test_an_object_sent_here_after_its_fetch_is_local_and_stays(
    shared_dicom: Path, settings: Any
) -> None:
    settings.LOUPE_UPSTREAM_DICOMWEB = [{"name": "pacs", "url": "http://127.0.0.1:9/dw"}]
    files = corpus_files(shared_dicom, "mr-series", 2)
    entry = _fetched(files)
    assert entry.cached_instances.count() == 2
    resent = ingest.ingest_file(files[0])  # the same object uploaded: a duplicate, now local
    assert resent.status == ingest.DUPLICATE
    entry.refresh_from_db()
    assert entry.cached_instances.count() == 1
    assert entry.bytes == files[1].stat().st_size
    upstream.evict_over_cap(cap=0)
    (kept,) = Instance.objects.all()
    assert kept.sop_instance_uid == resent.sop_instance_uid
    assert storage.exists(kept.storage_key)
    assert Study.objects.get().number_of_study_related_instances == 1


@pytest.mark.django_db
def test_a_measured_object_is_not_evicted(shared_dicom: Path, radiologist: Any) -> None:
    from viewer.models import Measurement

    entry = _fetched(corpus_files(shared_dicom, "mr-series", 2))
    measured = Instance.objects.select_related("series__study").order_by("pk").first()
    assert measured is not None
    Measurement.objects.create(
        study=measured.series.study,
        series=measured.series,
        instance=measured,
        kind=Measurement.Kind.POINT,
        points=[[1, 1]],
        author=radiologist,
    )
    upstream.evict(entry)
    (kept,) = Instance.objects.all()
    assert kept.pk == measured.pk and storage.exists(kept.storage_key)
    assert Study.objects.get().number_of_study_related_instances == 1
    assert len(storage.all_keys()) == 1


@pytest.mark.django_db
def test_the_archives_are_asked_at_once_and_each_failure_is_named(
    archive: str, settings: Any, radiologist: Any
) -> None:
    from django.test import RequestFactory

    settings.LOUPE_UPSTREAM_DICOMWEB = [
        {"name": "east", "url": f"{archive}/east/slow", "timeout": 1},
        {"name": "west", "url": f"{archive}/west/slow", "timeout": 1},
    ]
    _Archive.most_in_flight = 0
    request = RequestFactory().get("/")
    request.user = radiologist
    request.session = {}  # type: ignore[assignment]
    found = upstream.search(request, [("PatientID", "P1")], limit=5, purpose="worklist")
    # Both hanging archives had their request open at the same time: the worklist waits
    # for the slower one, not for the sum. Each failure is named, none read as "no study".
    assert _Archive.most_in_flight == 2
    assert found.studies == []
    assert [e.split(":")[0] for e in found.errors] == [
        "the archive 'east' did not answer",
        "the archive 'west' did not answer",
    ]
