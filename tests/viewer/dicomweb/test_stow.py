"""STOW-RS (PS3.18 §10.5): dicomweb-client against the live server, and the edge cases
(size cap, media types, malformed multipart, who may store, CSRF) through real requests."""

from __future__ import annotations

import io
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from django.conf import settings
from django.test import Client, RequestFactory

from tests.conftest import client_for
from tests.factories import corpus_files, ct_small
from viewer.dicomweb import stow
from viewer.errors import TooLarge
from viewer.models import AuditEvent, Instance

pytestmark = pytest.mark.django_db

BOUNDARY = "loupe-test-boundary-7d1f"
CONTENT_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'


def multipart(parts: list[bytes], *, media_type: str = "application/dicom") -> bytes:
    out = b""
    for part in parts:
        out += f"--{BOUNDARY}\r\nContent-Type: {media_type}\r\n\r\n".encode() + part + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def post(client: Client, body: bytes, path: str = "/dicom-web/studies", **extra: Any) -> Any:
    """POST ``body`` (``extra``: WSGI environ keys, ``content_type`` the media type)."""
    return client.generic(
        "POST", path, body, content_type=extra.pop("content_type", CONTENT_TYPE), **extra
    )


def sop_uid(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def web_client(live_server: Any, user: Any) -> DICOMwebClient:
    """dicomweb-client with the session cookie of ``user`` and a CSRF token (the
    double-submit cookie and header Django checks)."""
    logged_in = client_for(user)
    session = requests.Session()
    session.cookies.set(
        settings.SESSION_COOKIE_NAME, logged_in.cookies[settings.SESSION_COOKIE_NAME].value
    )
    token = "t" * 32
    session.cookies.set(settings.CSRF_COOKIE_NAME, token)
    session.headers["X-CSRFToken"] = token
    # A chunk size above the bodies sent: the client then sends a Content-Length.
    return DICOMwebClient(f"{live_server.url}/dicom-web", session=session, chunk_size=10**9)


def failures(answer: pydicom.Dataset) -> dict[str, int]:
    return {
        str(item.ReferencedSOPInstanceUID): int(item.FailureReason)
        for item in answer.get("FailedSOPSequence", [])
    }


def referenced(answer: pydicom.Dataset) -> dict[str, str]:
    return {
        str(item.ReferencedSOPInstanceUID): str(item.RetrieveURL)
        for item in answer.get("ReferencedSOPSequence", [])
    }


def test_dicomweb_client_stores_good_instances_and_reports_the_failed_ones(
    live_server: Any, radiologist: Any, shared_dicom: Path
) -> None:
    good = corpus_files(shared_dicom, "mr-series", 2)
    bad_pixel_module = shared_dicom / "malformed" / "badVR_NumberOfFrames_1A.dcm"
    too_large = shared_dicom / "malformed" / "oob_rows_cols_46341.dcm"
    datasets = [pydicom.dcmread(p) for p in [good[0], bad_pixel_module, good[1], too_large]]

    answer = web_client(live_server, radiologist).store_instances(datasets)

    stored = referenced(answer)
    assert set(stored) == {sop_uid(p) for p in good}
    study = str(datasets[0].StudyInstanceUID)
    # Absolute URLs on the Host the client sent (dicomweb-client sends its host without
    # the port): their paths are the WADO-RS resources.
    assert urlsplit(answer.RetrieveURL).path == f"/dicom-web/studies/{study}"
    for uid, url in stored.items():
        row = Instance.objects.select_related("series__study").get(sop_instance_uid=uid)
        assert urlsplit(url).path == (
            f"/dicom-web/studies/{study}/series/{row.series.series_instance_uid}/instances/{uid}"
        )
    for item in answer.ReferencedSOPSequence:
        assert item.ReferencedSOPClassUID == "1.2.840.10008.5.1.4.1.1.4"  # MR Image Storage
    # Table 10.5.3-1: the data set contradicts its Image Pixel module; a frame too large.
    assert failures(answer) == {sop_uid(bad_pixel_module): 0xA900, sop_uid(too_large): 0xA700}
    assert Instance.objects.count() == 2
    event = AuditEvent.objects.get(event_id=AuditEvent.EventId.INSTANCES_TRANSFERRED)
    assert (event.user_id, event.outcome, event.instance_count) == ("radiologist", 4, 2)
    assert event.study_uids == [study]


def test_all_stored_is_200_and_an_identical_resend_succeeds_as_a_duplicate(
    live_server: Any, radiologist: Any, shared_dicom: Path
) -> None:
    files = corpus_files(shared_dicom, "mr-series", 2)
    body = multipart([p.read_bytes() for p in files])
    session = web_client(live_server, radiologist)._session
    url = f"{live_server.url}/dicom-web/studies"
    headers = {"Content-Type": CONTENT_TYPE}

    first = session.post(url, data=body, headers=headers, timeout=60)
    again = session.post(url, data=body, headers=headers, timeout=60)

    for response in (first, again):
        assert response.status_code == 200, response.content[:300]
        assert response.headers["Content-Type"] == "application/dicom+json"
        answer = pydicom.Dataset.from_json(response.json())
        assert set(referenced(answer)) == {sop_uid(p) for p in files}
        assert "FailedSOPSequence" not in answer
        assert "Warning" not in response.headers
    assert Instance.objects.count() == 2


def test_none_stored_is_409(live_server: Any, radiologist: Any, shared_dicom: Path) -> None:
    bad = shared_dicom / "malformed" / "badVR_NumberOfFrames_1A.dcm"
    with pytest.raises(requests.HTTPError) as raised:
        web_client(live_server, radiologist).store_instances([pydicom.dcmread(bad)])
    response = raised.value.response
    assert response is not None
    assert response.status_code == 409
    answer = pydicom.Dataset.from_json(response.json())
    assert failures(answer) == {sop_uid(bad): 0xA900}
    assert "ReferencedSOPSequence" not in answer
    assert "bad_pixel_module" in response.headers["Warning"]
    assert Instance.objects.count() == 0


def test_unparseable_parts_fail_as_cannot_understand(radiologist: Any, shared_dicom: Path) -> None:
    good = corpus_files(shared_dicom, "mr-series", 1)[0]
    nested = shared_dicom / "malformed" / "deeply_nested_sequence.dcm"
    no_meta = shared_dicom / "malformed" / "CT_no_meta_misaligned_odd_length.dcm"
    truncated = shared_dicom / "malformed" / "MR_truncated_pixeldata.dcm"
    body = multipart([p.read_bytes() for p in (nested, good, no_meta, truncated)])

    response = post(client_for(radiologist), body)

    assert response.status_code == 202, response.content[:300]
    answer = pydicom.Dataset.from_json(response.json())
    assert set(referenced(answer)) == {sop_uid(good)}
    reasons = [int(item.FailureReason) for item in answer.FailedSOPSequence]
    assert reasons == [0xC000, 0xC000, 0xC000]
    # Where the header still reads, the failure names the instance.
    assert str(answer.FailedSOPSequence[2].ReferencedSOPInstanceUID) == sop_uid(truncated)
    warning = response.headers["Warning"]
    assert "part 1: nesting_too_deep" in warning and "part 4: truncated" in warning
    assert list(Instance.objects.values_list("sop_instance_uid", flat=True)) == [sop_uid(good)]


def test_to_a_study_an_instance_of_another_study_fails_and_is_not_stored(
    radiologist: Any, shared_dicom: Path
) -> None:
    mr = corpus_files(shared_dicom, "mr-series", 1)[0]
    study = str(pydicom.dcmread(mr, stop_before_pixels=True).StudyInstanceUID)
    other = ct_small()

    response = post(
        client_for(radiologist), multipart([mr.read_bytes(), other]), f"/dicom-web/studies/{study}"
    )

    assert response.status_code == 202
    answer = pydicom.Dataset.from_json(response.json())
    assert answer.RetrieveURL == f"http://testserver/dicom-web/studies/{study}"
    other_uid = str(pydicom.dcmread(io.BytesIO(other)).SOPInstanceUID)
    assert failures(answer) == {other_uid: 0xA900}
    assert answer.FailedSOPSequence[0].ReferencedSOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    assert "other_study" in response.headers["Warning"]
    assert not Instance.objects.filter(sop_instance_uid=other_uid).exists()
    assert Instance.objects.count() == 1


def test_a_declared_length_over_the_cap_is_refused_before_the_body_is_read(
    live_server: Any, radiologist: Any, settings: Any
) -> None:
    settings.LOUPE_STOW_MAX_BYTES = 1000
    session_id = client_for(radiologist).cookies[settings.SESSION_COOKIE_NAME].value
    token = "t" * 32
    where = urlsplit(live_server.url)
    head = (
        "POST /dicom-web/studies HTTP/1.1\r\n"
        f"Host: {where.hostname}:{where.port}\r\n"
        f"Content-Type: {CONTENT_TYPE}\r\n"
        "Content-Length: 5000000\r\n"
        f"Cookie: {settings.SESSION_COOKIE_NAME}={session_id}; {settings.CSRF_COOKIE_NAME}={token}\r\n"
        f"X-CSRFToken: {token}\r\n"
        "Connection: close\r\n\r\n"
    )
    with socket.create_connection((where.hostname, where.port), timeout=20) as sock:
        # Ten bytes of the five million declared: a server that read the body would wait.
        sock.sendall(head.encode() + b"--" + BOUNDARY.encode()[:8])
        # The answer comes while the rest of the body is still unsent (the development
        # server then drains the body before it closes: so read the answer, not to EOF).
        answer = b""
        while b"upload_too_large" not in answer:
            chunk = sock.recv(65536)
            assert chunk, answer
            answer += chunk
    status_line = answer.split(b"\r\n", 1)[0]
    assert b" 413 " in status_line, answer[:300]
    assert b"upload_too_large" in answer
    assert Instance.objects.count() == 0


def test_the_413_names_the_limit(radiologist: Any, settings: Any) -> None:
    settings.LOUPE_STOW_MAX_BYTES = 1000

    class Unread(io.BytesIO):
        def read(self, *args: Any) -> bytes:
            raise AssertionError("the body was read")

    environ: dict[str, Any] = {"CONTENT_LENGTH": "5000000", "wsgi.input": Unread()}
    response = post(client_for(radiologist), b"x", **environ)
    assert response.status_code == 413
    assert response.json()["code"] == "upload_too_large"
    assert "the limit is 1000 (LOUPE_STOW_MAX_MB)" in response.json()["message"]


def test_a_stream_longer_than_the_cap_stops_being_read() -> None:
    reads: list[int] = []
    stream = io.BytesIO(multipart([b"x" * 3_000_000]))

    def read(n: int) -> bytes:
        reads.append(n)
        return stream.read(n)

    reader = stow.MultipartReader(read, BOUNDARY.encode(), limit=1_000_000, max_part_bytes=10**9)
    with pytest.raises(TooLarge, match="exceeds 1000000 bytes"):
        list(reader.parts())
    assert sum(reads) <= 1_000_000 + stow.CHUNK_BYTES


def test_parts_past_the_memory_budget_go_to_temp_files(monkeypatch: Any) -> None:
    monkeypatch.setattr(stow, "MEMORY_BUDGET_BYTES", 250_000)
    payloads = [bytes([i]) * 100_000 for i in range(4)]
    reader = stow.MultipartReader(
        io.BytesIO(multipart(payloads)).read, BOUNDARY.encode(), limit=10**9, max_part_bytes=10**9
    )
    parts = list(reader.parts())
    try:
        # Two parts fit the budget; the third would pass it, so it and the fourth are
        # files on disk from their first byte. Every part reads back whole.
        on_disk = [part.body._rolled for part in parts]  # type: ignore[union-attr]
        assert on_disk == [False, False, True, True]
        assert [part.data() for part in parts] == payloads
    finally:
        for part in parts:
            assert part.body is not None
            part.body.close()


@pytest.mark.parametrize(
    ("content_type", "named"),
    [
        ("application/dicom", "'application/dicom'"),
        ("multipart/form-data; boundary=x", "'multipart/form-data'"),
        (
            'multipart/related; type="application/dicom+json"; boundary=x',
            "'application/dicom+json'",
        ),
    ],
)
def test_another_media_type_is_415_naming_it(
    radiologist: Any, content_type: str, named: str
) -> None:
    response = post(client_for(radiologist), ct_small(), content_type=content_type)
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    assert named in response.json()["message"]
    assert Instance.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"no boundary anywhere", "boundary never occurs"),
        (f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode(), "closing boundary"),
        (
            f"--{BOUNDARY}\r\nContent-Type application/dicom\r\n\r\nx\r\n--{BOUNDARY}--".encode(),
            "malformed header",
        ),
        (f"--{BOUNDARY}--\r\n".encode(), "holds no part"),
    ],
)
def test_a_malformed_multipart_is_400_and_stores_nothing(
    radiologist: Any, body: bytes, message: str
) -> None:
    response = post(client_for(radiologist), body)
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_multipart"
    assert message in response.json()["message"]


def test_a_truncated_multipart_stores_none_of_its_complete_parts(
    radiologist: Any, shared_dicom: Path
) -> None:
    good = corpus_files(shared_dicom, "mr-series", 1)[0].read_bytes()
    body = multipart([good])[: -len(f"--{BOUNDARY}--\r\n") - 2] + multipart([good])[:200]
    response = post(client_for(radiologist), body)
    assert response.status_code == 400
    assert Instance.objects.count() == 0


def test_a_part_of_another_type_fails(radiologist: Any) -> None:
    body = multipart([b"{}"], media_type="application/json")
    response = post(client_for(radiologist), body)
    assert response.status_code == 409
    assert (
        int(pydicom.Dataset.from_json(response.json()).FailedSOPSequence[0].FailureReason) == 0xC000
    )
    assert "not application/dicom" in response.headers["Warning"]


def test_a_clinician_may_not_store(clinician_for_patient_a: Any) -> None:
    before = Instance.objects.count()
    response = post(clinician_for_patient_a, multipart([ct_small()]))
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert Instance.objects.count() == before


def test_without_a_session_it_is_401() -> None:
    response = post(Client(), multipart([ct_small()]))
    assert response.status_code == 401
    assert response["WWW-Authenticate"]
    assert Instance.objects.count() == 0


def test_a_session_post_without_the_csrf_token_is_refused(radiologist: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(radiologist)
    response = post(client, multipart([ct_small()]))
    assert response.status_code == 403
    assert "CSRF" in response.json()["message"]
    assert Instance.objects.count() == 0


def test_a_bearer_request_needs_no_csrf_token(radiologist: Any) -> None:
    """The bearer-token middleware marks its requests (``request.loupe_bearer``); they
    carry no cookie, so there is no CSRF to check."""
    request = RequestFactory().generic(
        "POST", "/dicom-web/studies", multipart([ct_small()]), content_type=CONTENT_TYPE
    )
    request.user = radiologist
    request.loupe_bearer = True  # type: ignore[attr-defined]
    response = stow.by_method("studies")(request)
    assert response.status_code == 200, response.content[:300]
    assert Instance.objects.count() == 1


def test_the_routes_pass_get_on_to_search_and_retrieve(radiologist: Any, patient_b: Any) -> None:
    """STOW-RS shares ``/studies`` with QIDO-RS and ``/studies/{study}`` with WADO-RS."""
    client = client_for(radiologist)
    searched = client.get("/dicom-web/studies", HTTP_ACCEPT="application/dicom+json")
    assert searched.status_code == 200
    assert patient_b.study in searched.content.decode()
    retrieved = client.get(f"/dicom-web/studies/{patient_b.study}")
    assert retrieved.status_code == 200
    assert retrieved["Content-Type"].startswith("multipart/related")
    refused = client.put("/dicom-web/studies")
    assert refused.status_code == 405
    assert refused["Allow"] == "GET, HEAD, POST"


def test_a_service_account_stores_with_its_api_token_and_no_csrf_token(
    shared_dicom: Path,
) -> None:
    """A machine client: ``Authorization: Bearer`` with an API token, no cookie, no CSRF."""
    from viewer import apitokens

    _, token = apitokens.issue(apitokens.service_account("router", "radiologist"), "router")
    good = corpus_files(shared_dicom, "mr-series", 1)[0]
    client = Client(enforce_csrf_checks=True)
    response = post(client, multipart([good.read_bytes()]), HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content[:300]
    assert Instance.objects.filter(sop_instance_uid=sop_uid(good)).exists()
    event = AuditEvent.objects.get(event_id=AuditEvent.EventId.INSTANCES_TRANSFERRED)
    assert event.user_id == "router"


def test_a_clinician_service_account_may_not_store() -> None:
    from viewer import apitokens

    _, token = apitokens.issue(apitokens.service_account("ehr-bot", "clinician"), "ehr-bot")
    response = post(Client(), multipart([ct_small()]), HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 403
    assert Instance.objects.count() == 0


def test_a_batch_whose_transaction_fails_stores_none_of_it_and_says_so(
    radiologist: Any, shared_dicom: Path, instance_insert_fails_for: Any
) -> None:
    from viewer.services import storage

    files = corpus_files(shared_dicom, "mr-series", 3)
    instance_insert_fails_for(sop_uid(files[1]))
    keys_before = set(storage.all_keys())

    response = post(client_for(radiologist), multipart([p.read_bytes() for p in files]))

    # The three share one transaction: the second's failure takes the first with it,
    # and the third is not tried. Each is reported failed (processing failure), by UID
    # where it was read, and nothing of them is stored, rows or files.
    assert response.status_code == 409, response.content[:300]
    answer = pydicom.Dataset.from_json(response.json())
    assert failures(answer) == {sop_uid(p): 0x0110 for p in files}
    assert "database_error" in response.headers["Warning"]
    assert Instance.objects.count() == 0
    assert set(storage.all_keys()) == keys_before


def test_the_next_batch_is_stored_after_a_failed_one(
    radiologist: Any, shared_dicom: Path, instance_insert_fails_for: Any, monkeypatch: Any
) -> None:
    from viewer.services import ingest

    monkeypatch.setattr(ingest, "BATCH_OBJECTS", 2)
    files = corpus_files(shared_dicom, "mr-series", 4)
    instance_insert_fails_for(sop_uid(files[0]))

    response = post(client_for(radiologist), multipart([p.read_bytes() for p in files]))

    assert response.status_code == 202, response.content[:300]
    answer = pydicom.Dataset.from_json(response.json())
    assert set(referenced(answer)) == {sop_uid(p) for p in files[2:]}
    assert failures(answer) == {sop_uid(files[0]): 0x0110, sop_uid(files[1]): 0x0110}
    assert set(Instance.objects.values_list("sop_instance_uid", flat=True)) == {
        sop_uid(p) for p in files[2:]
    }
