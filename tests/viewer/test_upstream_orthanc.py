"""A PACS behind Loupe, against a real Orthanc with its DICOMweb plugin on loopback
(tests/servers.py ``start_orthanc``): a study held only by Orthanc is listed on the
worklist as remote, fetched on opening (WADO-RS) into the archive, then shown by the
API and the viewer; out of scope it is not listed and not opened; a stopped archive is
named on the worklist beside the local studies."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
import requests
from django.test import Client

from tests.conftest import client_for, require
from tests.factories import corpus_files
from tests.servers import ORTHANC_DICOMWEB, Server, orthanc_available, start_orthanc
from viewer.models import AuditEvent, Instance, Study, UpstreamCacheEntry
from viewer.services import upstream

pytestmark = pytest.mark.django_db

MR_COUNT = 3


def _upload(server: Server, paths: list[Path]) -> None:
    for path in paths:
        answer = requests.post(f"{server.url}/instances", data=path.read_bytes(), timeout=30)
        assert answer.status_code == 200, answer.text[:300]


@pytest.fixture(scope="module")
def orthanc() -> Iterator[Server]:
    require(orthanc_available())
    require(
        None
        if ORTHANC_DICOMWEB.exists()
        else f"Orthanc's DICOMweb plugin is not at {ORTHANC_DICOMWEB} (apt-get install orthanc-dicomweb)"
    )
    server = start_orthanc()
    yield server
    server.stop()


@pytest.fixture
def pacs(orthanc: Server, shared_dicom: Path, settings: Any) -> Server:
    """Orthanc holding patient B's MR (three slices) and patient A's CT (the same three
    slices Loupe holds, once patient_a is stored), configured as the archive "pacs"."""
    _upload(orthanc, corpus_files(shared_dicom, "mr-series", MR_COUNT))
    _upload(orthanc, corpus_files(shared_dicom, "ct-series", 3))
    settings.LOUPE_UPSTREAM_DICOMWEB = [
        {"name": "pacs", "url": f"{orthanc.url}/dicom-web", "auth": None, "timeout": 10}
    ]
    return orthanc


@pytest.fixture
def fetch_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fetch runs in the request's thread (the test database is one transaction)."""
    monkeypatch.setattr(upstream, "launch", lambda work: work())


def _uid_of(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID)


def _remote_rows(html: str) -> dict[str, str]:
    """study UID -> upstream name of the worklist's remote rows."""
    rows = re.findall(r'<tr class="remote" data-remote="([^"]+)">(.*?)</tr>', html, re.S)
    found: dict[str, str] = {}
    for name, row in rows:
        link = re.search(r'href="/remote/[^/]+/([^/]+)/"', row)
        assert link, row
        found[link.group(1)] = name
    return found


def test_a_study_held_only_upstream_is_listed_remote_and_a_local_one_once(
    pacs: Server, patient_a: Any, radiologist: Any, shared_dicom: Path
) -> None:
    mr_uid = _uid_of(corpus_files(shared_dicom, "mr-series", 1)[0])
    answer = client_for(radiologist).get("/")
    assert answer.status_code == 200
    html = answer.content.decode()
    rows = _remote_rows(html)
    assert rows[mr_uid] == "pacs"
    assert patient_a.study not in rows  # held here too: it shows once, local
    assert f"/viewer/{patient_a.study}/" in html
    assert 'class="badge remote"' in html
    assert "did not answer" not in html
    queries = AuditEvent.objects.filter(event_id=AuditEvent.EventId.QUERY)
    details = [row.detail for row in queries]
    assert any("upstream:pacs" in d.get("filters", []) for d in details), details
    # Filters reach the archive as matching keys: a modality it does not hold finds none.
    assert _remote_rows(client_for(radiologist).get("/", {"modality": "US"}).content.decode()) == {}
    assert mr_uid in _remote_rows(
        client_for(radiologist).get("/", {"modality": "MR"}).content.decode()
    )


def test_opening_a_remote_study_fetches_it_into_the_archive(
    pacs: Server, radiologist: Any, shared_dicom: Path, fetch_in_place: None
) -> None:
    mr_uid = _uid_of(corpus_files(shared_dicom, "mr-series", 1)[0])
    client = client_for(radiologist)
    assert not Study.objects.filter(study_instance_uid=mr_uid).exists()
    page = client.get(f"/remote/pacs/{mr_uid}/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    assert b'id="remote-fetch"' in page.content
    assert f"/remote/pacs/{mr_uid}/status".encode() in page.content
    status = client.get(f"/remote/pacs/{mr_uid}/status").json()
    assert status == {
        "state": "cached",
        "fetched": MR_COUNT,
        "total": MR_COUNT,
        "failed": 0,
        "message": "",
        "viewer_url": f"/viewer/{mr_uid}/",
    }
    study = Study.objects.get(study_instance_uid=mr_uid)
    assert study.number_of_study_related_instances == MR_COUNT
    entry = UpstreamCacheEntry.objects.get(study_instance_uid=mr_uid)
    sizes = Instance.objects.filter(series__study=study).values_list("size_bytes", flat=True)
    assert entry.state == "cached" and entry.bytes == sum(sizes) > 0
    api = client.get(f"/api/studies/{mr_uid}")
    assert api.status_code == 200
    body = api.json()
    instances = [i for s in body["series"] for i in s["instances"]]
    assert len(instances) == MR_COUNT
    assert client.get(f"/viewer/{mr_uid}/", HTTP_ACCEPT="text/html").status_code == 200
    # Opened again: held here, straight to the viewer.
    again = client.get(f"/remote/pacs/{mr_uid}/", HTTP_ACCEPT="text/html")
    assert again.status_code == 302 and again["Location"] == f"/viewer/{mr_uid}/"
    transfers = AuditEvent.objects.filter(event_id=AuditEvent.EventId.INSTANCES_TRANSFERRED)
    assert [t.study_uids for t in transfers] == [[mr_uid]]
    # No longer remote on the worklist: it is held here.
    assert mr_uid not in _remote_rows(client.get("/").content.decode())


def test_a_clinician_launched_for_another_patient_neither_sees_nor_opens_it(
    pacs: Server, clinician_for_patient_a: Client, shared_dicom: Path, fetch_in_place: None
) -> None:
    mr_uid = _uid_of(corpus_files(shared_dicom, "mr-series", 1)[0])
    html = clinician_for_patient_a.get("/").content.decode()
    assert mr_uid not in html
    assert _remote_rows(html) == {}
    refused = clinician_for_patient_a.get(f"/remote/pacs/{mr_uid}/", HTTP_ACCEPT="text/html")
    assert refused.status_code == 404
    assert not UpstreamCacheEntry.objects.exists()
    assert not Study.objects.filter(study_instance_uid=mr_uid).exists()
    status = clinician_for_patient_a.get(f"/remote/pacs/{mr_uid}/status")
    assert status.status_code == 404


def test_an_unknown_archive_or_study_is_a_404(
    pacs: Server, radiologist: Any, fetch_in_place: None
) -> None:
    client = client_for(radiologist)
    assert client.get("/remote/nowhere/1.2.3/", HTTP_ACCEPT="text/html").status_code == 404
    assert client.get("/remote/pacs/1.2.3.4.5/", HTTP_ACCEPT="text/html").status_code == 404
    bad = client.get("/remote/pacs/not-a-uid/", HTTP_ACCEPT="application/json")
    assert bad.status_code == 400 and "UID" in bad.json()["message"]


def test_a_stopped_archive_is_named_beside_the_local_studies(
    shared_dicom: Path, patient_a: Any, radiologist: Any, settings: Any
) -> None:
    require(orthanc_available())
    server = start_orthanc()
    _upload(server, corpus_files(shared_dicom, "mr-series", 1))
    settings.LOUPE_UPSTREAM_DICOMWEB = [{"name": "pacs", "url": f"{server.url}/dicom-web"}]
    server.stop()
    html = client_for(radiologist).get("/").content.decode()
    assert "the archive &#x27;pacs&#x27; did not answer: the connection was refused" in html
    assert f"/viewer/{patient_a.study}/" in html
    assert _remote_rows(html) == {}
    opened = client_for(radiologist).get(
        f"/remote/pacs/{_uid_of(corpus_files(shared_dicom, 'mr-series', 1)[0])}/",
        HTTP_ACCEPT="text/html",
    )
    assert opened.status_code == 502
    assert b"did not answer" in opened.content


PRIOR_UID, CURRENT_UID = "1.2.3", "2.3.4"  # ct-prior-pair-mini: TEST_1, 2010 and 2015


@pytest.fixture
def launched_for_test_1(client: Client, shared_dicom: Path) -> Client:
    """A clinician launched for TEST_1's 2015 study (held here); its 2010 prior is not."""
    from tests.factories import register_ehr, signed_launch, store_files

    current = [p for p in corpus_files(shared_dicom, "ct-prior-pair-mini") if "2345" in p.name]
    store_files(current)
    register_ehr()
    launch = signed_launch(CURRENT_UID, patient="TEST_1")
    response = client.get("/ehrlaunch/launch", {"launch": launch}, HTTP_ACCEPT="text/html")
    assert response.status_code == 303, response.content[:300]
    return client


def test_a_launched_clinician_sees_and_opens_the_remote_prior_of_their_patient(
    pacs: Server, shared_dicom: Path, launched_for_test_1: Client, fetch_in_place: None
) -> None:
    _upload(pacs, [p for p in corpus_files(shared_dicom, "ct-prior-pair-mini") if "1234" in p.name])
    mr_uid = _uid_of(corpus_files(shared_dicom, "mr-series", 1)[0])
    client = launched_for_test_1
    rows = _remote_rows(client.get("/").content.decode())
    assert rows == {PRIOR_UID: "pacs"}  # neither the MR nor the CT of other patients
    assert mr_uid not in rows
    # The viewer's page tells its script to ask for remote priors (static/viewer/js/main.js).
    page = client.get(f"/viewer/{CURRENT_UID}/", HTTP_ACCEPT="text/html").content.decode()
    assert 'data-upstream="true"' in page
    priors = client.get(f"/api/studies/{CURRENT_UID}/priors", {"remote": "1"})
    assert priors.status_code == 200 and "Warning" not in priors
    remote = [p for p in priors.json() if p.get("remote")]
    assert [(p["study_instance_uid"], p["remote"], p["open_url"]) for p in remote] == [
        (PRIOR_UID, "pacs", f"/remote/pacs/{PRIOR_UID}/")
    ]
    assert client.get(f"/remote/pacs/{PRIOR_UID}/", HTTP_ACCEPT="text/html").status_code == 200
    assert client.get(f"/remote/pacs/{PRIOR_UID}/status").json()["state"] == "cached"
    assert client.get(f"/api/studies/{PRIOR_UID}").status_code == 200
    assert client.get(f"/remote/pacs/{mr_uid}/", HTTP_ACCEPT="text/html").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_the_fetch_runs_in_a_background_thread_while_the_page_polls(
    pacs: Server, radiologist: Any, shared_dicom: Path
) -> None:
    import time

    mr_uid = _uid_of(corpus_files(shared_dicom, "mr-series", 1)[0])
    client = client_for(radiologist)
    page = client.get(f"/remote/pacs/{mr_uid}/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200 and b'id="remote-fetch"' in page.content
    deadline = time.monotonic() + 60
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = client.get(f"/remote/pacs/{mr_uid}/status").json()
        if status["state"] != "fetching":
            break
        time.sleep(0.2)
    assert status["state"] == "cached", status
    assert status["fetched"] == status["total"] == MR_COUNT
    assert client.get(f"/api/studies/{mr_uid}").status_code == 200
