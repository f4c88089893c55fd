"""The operations log (viewer/logjson.py, settings.LOGGING, config/gunicorn.py).

The scrubbing filter on records of every shape Loupe's loggers make; the JSON format
through the configured handlers, with real requests through Django's test client; the
settings' wiring in a fresh process (LOUPE_LOG_FORMAT=json); and gunicorn's access and
error logs of a real server, where every line must be JSON and no token, query string or
patient name may appear.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import logging.config
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import requests
from django.conf import settings as django_settings
from django.test import Client

from tests.conftest import PROJECT_DIR
from tests.factories import changed, ct_small
from tests.servers import manage, start_loupe
from viewer.logjson import REDACTED, JsonFormatter, ScrubSecrets, scrub
from viewer.services import ingest

TOKEN = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.c2lnbmF0dXJlLXNlY3JldA"
QUERY_TOKEN = "q-token-3f9a1c77d2b54e0e8a6b"
SHARE_TOKEN = "S7kP2vXq9LmN4rT8wZ1yB6cD3fG5hJ0k"
PATIENT_NAME = "Logtest^Jane"


def record(msg: str, *args: Any, name: str = "viewer.test", **extra: Any) -> logging.LogRecord:
    made = logging.LogRecord(name, logging.WARNING, __file__, 1, msg, args, None)
    made.__dict__.update(extra)
    return made


def scrubbed(made: logging.LogRecord) -> str:
    assert ScrubSecrets().filter(made) is True
    return made.getMessage()


# -- the filter ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (f"Authorization: Bearer {TOKEN}", f"Authorization: Bearer {REDACTED}"),
        (f"upstream said: bearer {TOKEN}", f"upstream said: bearer {REDACTED}"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", f"Authorization: Basic {REDACTED}"),
        ("authorization=opaque-key-1234", f"authorization={REDACTED}"),
        (
            f"GET /dicom-web/studies?access_token={QUERY_TOKEN}&PatientName={PATIENT_NAME}",
            f"GET /dicom-web/studies?{REDACTED}",
        ),
        (
            f"fetch https://pacs.example.org/dicom-web/studies?PatientID=12345&token={QUERY_TOKEN}",
            f"fetch https://pacs.example.org/dicom-web/studies?{REDACTED}",
        ),
        (
            f"token exchange: code={QUERY_TOKEN} state=xyz",
            f"token exchange: code={REDACTED} state={REDACTED}",
        ),
        (
            f"id_token={TOKEN}; access_token={TOKEN}",
            f"id_token={REDACTED}; access_token={REDACTED}",
        ),
        (
            f"Cookie: sessionid={QUERY_TOKEN}; csrftoken=abc",
            f"Cookie: sessionid={REDACTED}; csrftoken={REDACTED}",
        ),
        (f"__Host-sessionid={QUERY_TOKEN}", f"__Host-sessionid={REDACTED}"),
        (
            f'{{"access_token": "{TOKEN}", "expires_in": 300}}',
            f'{{"access_token": "{REDACTED}", "expires_in": 300}}',
        ),
        (f"Gone: /s/{SHARE_TOKEN}", f"Gone: /s/{REDACTED}"),
        ("Not Found: /s/continue/", "Not Found: /s/continue/"),
        (
            "Forbidden: /api/audit/patients/C3N-00247^^^HOSP",
            f"Forbidden: /api/audit/patients/{REDACTED}",
        ),
        # Words that only look alike stay.
        ("zip_code=12345 postcode=1 barcode=2", "zip_code=12345 postcode=1 barcode=2"),
        ("Not Found: /api/studies/1.2.840.113619", "Not Found: /api/studies/1.2.840.113619"),
    ],
)
def test_the_filter_scrubs_secrets_from_messages(message: str, expected: str) -> None:
    assert scrubbed(record(message)) == expected


def test_the_filter_scrubs_the_arguments_of_a_message() -> None:
    made = record("launch %s for %s", f"/ehrlaunch/launch?launch={TOKEN}", f"Bearer {TOKEN}")
    assert scrubbed(made) == f"launch /ehrlaunch/launch?{REDACTED} for Bearer {REDACTED}"
    assert made.args == ()


def test_the_filter_scrubs_exception_text() -> None:
    try:
        raise ValueError(f"refused https://idp.example.org/token?code={QUERY_TOKEN}")
    except ValueError:
        made = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    ScrubSecrets().filter(made)
    assert made.exc_text is not None
    assert QUERY_TOKEN not in made.exc_text
    assert "ValueError: refused https://idp.example.org/token?[redacted]" in made.exc_text
    # Any formatter writes the scrubbed text.
    assert QUERY_TOKEN not in logging.Formatter().format(made)


def test_scrubbing_twice_changes_nothing() -> None:
    once = scrub(f"GET /s/{SHARE_TOKEN}?access_token={TOKEN} Bearer {TOKEN}")
    assert scrub(once) == once


def test_gunicorn_access_records_keep_their_fields_without_the_query() -> None:
    atoms = {
        "h": "127.0.0.1",
        "m": "GET",
        "U": f"/s/{SHARE_TOKEN}",
        "q": f"access_token={QUERY_TOKEN}",
        "s": "302",
        "B": 0,
        "M": 12,
    }
    made = record('%(h)s "%(m)s %(U)s" %(s)s', atoms, name="gunicorn.access")
    made.args = atoms  # LogRecord unwraps a lone mapping argument; gunicorn's is one
    ScrubSecrets().filter(made)
    line = json.loads(JsonFormatter().format(made))
    assert line["message"] == f'127.0.0.1 "GET /s/{REDACTED}" 302'
    assert line["http"] == {
        "method": "GET",
        "path": f"/s/{REDACTED}",
        "status": 302,
        "bytes": 0,
        "duration_ms": 12,
        "client": "127.0.0.1",
    }
    assert QUERY_TOKEN not in json.dumps(line) and SHARE_TOKEN not in json.dumps(line)


# -- the JSON format -------------------------------------------------------------------


def test_a_json_line_has_time_level_logger_and_message() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        made = logging.LogRecord(
            "viewer.x", logging.ERROR, __file__, 1, "it %s", ("broke",), sys.exc_info()
        )
    text = JsonFormatter().format(made)
    assert "\n" not in text
    line = json.loads(text)
    assert line["level"] == "ERROR" and line["logger"] == "viewer.x"
    assert line["message"] == "it broke"
    assert line["time"].endswith("+00:00")
    assert datetime.fromisoformat(line["time"]).utcoffset() == timedelta(0)
    assert line["exc_info"].startswith("Traceback") and "RuntimeError: boom" in line["exc_info"]
    assert "request_id" not in line  # not made during a request


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """settings.LOGGING as LOUPE_LOG_FORMAT=json makes it, its console writing to a buffer;
    the test's configuration is put back afterwards."""
    configured = cast(dict[str, Any], copy.deepcopy(django_settings.LOGGING))
    configured["handlers"]["console"]["formatter"] = "json"
    logging.config.dictConfig(configured)
    buffer = io.StringIO()
    console = next(h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler))
    console.setStream(buffer)
    try:
        yield buffer
    finally:
        logging.config.dictConfig(django_settings.LOGGING)


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


@pytest.fixture
def stored_patient(tmp_path: Path) -> str:
    """A CT slice of patient "Logtest^Jane", stored: its Study Instance UID."""
    path = tmp_path / "ct.dcm"
    path.write_bytes(changed(ct_small(), PatientName=PATIENT_NAME, PatientID="LOG-1"))
    result = ingest.ingest_file(path)
    assert result.ok, result.as_dict()
    return str(result.study_instance_uid)


@pytest.mark.django_db
def test_requests_log_json_lines_without_tokens_or_names(
    json_log: io.StringIO, stored_patient: str
) -> None:
    client = Client()
    # A bearer token and an access_token in the query on a study's metadata: 401.
    refused = client.get(
        f"/dicom-web/studies/{stored_patient}/metadata",
        {"access_token": QUERY_TOKEN, "PatientName": PATIENT_NAME},
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
    )
    assert refused.status_code == 401
    # A share link's token in the path: 404 for an unknown one (Django logs the path).
    unknown = client.get(f"/s/{SHARE_TOKEN}", {"access_token": QUERY_TOKEN})
    assert unknown.status_code in (404, 410)
    # A record made inside the request by the application: it carries the request.
    logging.getLogger("viewer.test").warning("while handling: Bearer %s", TOKEN)

    written = json_log.getvalue()
    assert written, "nothing was logged"
    for secret in (TOKEN, QUERY_TOKEN, SHARE_TOKEN, PATIENT_NAME, "Logtest", "access_token"):
        assert secret not in written
    found = lines(json_log)  # every line parses
    by_path = {line.get("path"): line for line in found if line["logger"] == "django.request"}
    metadata = by_path[f"/dicom-web/studies/{stored_patient}/metadata"]
    assert metadata["status"] == 401 and metadata["level"] == "WARNING"
    assert len(metadata["request_id"]) == 32
    share = by_path[f"/s/{REDACTED}"]
    assert share["message"].endswith(f"/s/{REDACTED}")
    assert share["request_id"] != metadata["request_id"]


@pytest.mark.django_db
def test_a_record_made_during_a_request_carries_its_id(
    json_log: io.StringIO, client: Client
) -> None:
    from django.core.signals import request_started

    seen: list[str] = []

    def log_inside(sender: Any, **kwargs: Any) -> None:
        logging.getLogger("viewer.test").warning("inside a request")
        seen.append("yes")

    request_started.connect(log_inside)
    try:
        client.get("/healthz", HTTP_X_REQUEST_ID="from-anyone")  # not a trusted proxy
    finally:
        request_started.disconnect(log_inside)
    logging.getLogger("viewer.test").warning("outside any request")
    found = [line for line in lines(json_log) if line["logger"] == "viewer.test"]
    assert seen and [line["message"] for line in found] == [
        "inside a request",
        "outside any request",
    ]
    inside, outside = found
    assert inside["path"] == "/healthz" and len(inside["request_id"]) == 32
    assert inside["request_id"] != "from-anyone"
    assert "path" not in outside and "request_id" not in outside


def test_runserver_request_lines_lose_their_query(json_log: io.StringIO) -> None:
    # django.core.servers.basehttp.WSGIRequestHandler.log_message's record.
    logging.getLogger("django.server").info(
        '"%s" %s %s',
        f"GET /ehrlaunch/IHEInvokeImageDisplay?requestType=PATIENT&patientID=LOG-1&launch={TOKEN} HTTP/1.1",
        "200",
        "1234",
    )
    (line,) = lines(json_log)
    assert line["logger"] == "django.server"
    assert line["message"] == f'"GET /ehrlaunch/IHEInvokeImageDisplay?{REDACTED} HTTP/1.1" 200 1234'


# -- the settings, in a process of its own ---------------------------------------------


def _clean_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOUPE_", "DATABASE_URL"))}
    return {**env, **values}


def test_loupe_log_format_json_makes_every_record_a_json_line(tmp_path: Path) -> None:
    script = (
        "import logging, django; django.setup();"
        "logging.getLogger('viewer.x').warning('Authorization: Bearer %s', 'tok-123456789');"
        "logging.getLogger('django.request').error('Internal Server Error: /s/abcdefghijkl')"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_DIR,
        env=_clean_env(
            DJANGO_SETTINGS_MODULE="config.settings",
            LOUPE_DATA_DIR=str(tmp_path),
            LOUPE_SECRET_KEY="log-test-" + "k" * 40,
            LOUPE_LOG_FORMAT="json",
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    found = [json.loads(line) for line in done.stderr.splitlines()]
    assert [(line["logger"], line["message"]) for line in found] == [
        ("viewer.x", f"Authorization: Bearer {REDACTED}"),
        ("django.request", f"Internal Server Error: /s/{REDACTED}"),
    ]
    assert "tok-123456789" not in done.stderr and done.stdout == ""


def test_a_bad_log_format_stops_start_up_with_its_name(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=PROJECT_DIR,
        env=_clean_env(LOUPE_DATA_DIR=str(tmp_path), LOUPE_DEMO="1", LOUPE_LOG_FORMAT="xml"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "LOUPE_LOG_FORMAT='xml' must be one of: text, json" in done.stderr
    assert "Traceback" not in done.stderr


# -- gunicorn --------------------------------------------------------------------------


def test_gunicorn_writes_json_lines_without_tokens_or_queries(tmp_path: Path) -> None:
    env = _clean_env(
        LOUPE_DATA_DIR=str(tmp_path / "data"),
        LOUPE_SECRET_KEY="log-test-" + "k" * 40,
        LOUPE_EMBED="0",
        LOUPE_DECODER_PROCESSES="0",
        LOUPE_LOG_FORMAT="json",
    )
    manage(env, "migrate", "-v0")
    server = start_loupe(env, tmp_path / "loupe")
    try:
        asked = [
            (f"/s/{SHARE_TOKEN}", {"access_token": QUERY_TOKEN}),
            ("/dicom-web/studies", {"PatientName": PATIENT_NAME, "access_token": QUERY_TOKEN}),
            ("/ehrlaunch/launch", {"launch": TOKEN}),
            ("/healthz", {}),
        ]
        for path, params in asked:
            requests.get(
                f"{server.url}{path}",
                params=params,
                headers={"Authorization": f"Bearer {TOKEN}"},
                allow_redirects=False,
                timeout=30,
            )
    finally:
        server.process.terminate()
        server.process.wait(timeout=30)
        log = Path(server.extra["log"]).read_text()
        server.stop()
    found = [json.loads(line) for line in log.splitlines() if line.strip()]  # all JSON
    for secret in (TOKEN, QUERY_TOKEN, SHARE_TOKEN, PATIENT_NAME, "Logtest", "access_token"):
        assert secret not in log
    access = [line["http"] for line in found if line["logger"] == "gunicorn.access"]
    paths = [entry["path"] for entry in access]
    assert f"/s/{REDACTED}" in paths and "/dicom-web/studies" in paths and "/healthz" in paths
    assert {"gunicorn.error"} <= {line["logger"] for line in found}  # "Booting worker" …
    health = next(entry for entry in access if entry["path"] == "/healthz")
    assert health["status"] == 200 and health["method"] == "GET"
