"""``/healthz`` and ``/readyz`` (viewer/health.py).

In-process (Django's test client): both answer with no session and nothing audited,
``/healthz`` without touching the database, ``/readyz`` naming each failing check. Then
against Loupe under its gunicorn configuration on a PostgreSQL and a Redis of the test's
own: ready while both answer; a Redis or a PostgreSQL that hangs (SIGSTOP: connections
are accepted by the kernel and never answered) makes its check answer "timeout" within
the time bound, and one that is gone makes it "unreachable"; ``/healthz`` answers
throughout.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.test import Client

from tests.conftest import require
from tests.servers import (
    Server,
    manage,
    migrated_database,
    postgres_available,
    start_loupe,
    start_postgres,
)
from viewer.models import AuditEvent

TIMEOUT = 30
READY = {"status": "ready", "checks": {"database": "ok", "cache": "ok", "storage": "ok"}}


def body(response: Any) -> dict[str, Any]:
    assert response["Content-Type"] == "application/json"
    parsed: dict[str, Any] = json.loads(response.content)
    return parsed


# -- in-process ------------------------------------------------------------------------


def test_healthz_answers_with_no_session_and_no_database(client: Client) -> None:
    # No django_db mark: any database access in the request would fail the test.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert body(response) == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


def test_healthz_and_readyz_answer_get_and_head_only(client: Client) -> None:
    assert client.head("/healthz").status_code == 200
    assert client.post("/healthz").status_code == 405
    assert client.put("/readyz").status_code == 405


@pytest.mark.django_db
def test_readyz_is_ready_when_database_cache_and_storage_answer(client: Client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert body(response) == READY
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_neither_is_audited_nor_opens_a_session(client: Client) -> None:
    before = AuditEvent.objects.count()
    for path in ("/healthz", "/readyz"):
        response = client.get(path)
        assert response.status_code == 200
        assert "Set-Cookie" not in response.headers
        assert not response.cookies
    assert AuditEvent.objects.count() == before


@pytest.mark.django_db
def test_readyz_names_a_missing_objects_folder(
    client: Client, settings: Any, tmp_path: Path
) -> None:
    settings.LOUPE_STORAGE_DIR = tmp_path / "gone"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert body(response) == {
        "status": "not ready",
        "checks": {"database": "ok", "cache": "ok", "storage": "objects folder missing"},
    }


@pytest.mark.django_db
def test_readyz_names_a_temp_folder_that_is_no_folder(
    client: Client, settings: Any, tmp_path: Path
) -> None:
    settings.LOUPE_TEMP_DIR = tmp_path / "a-file"
    settings.LOUPE_TEMP_DIR.write_bytes(b"")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert body(response)["checks"]["storage"] == "temp folder missing"


def _mount_tmpfs(folder: Path, size: str) -> str | None:
    """None when a tmpfs of ``size`` is mounted on ``folder``, else why it could not be."""
    if os.geteuid() != 0:
        return "mounting a small tmpfs (a full disk) needs root"
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    return None if done.returncode == 0 else f"cannot mount a tmpfs: {done.stderr.strip()}"


@pytest.mark.django_db
def test_readyz_says_a_full_disk_is_full(client: Client, settings: Any, tmp_path: Path) -> None:
    full = tmp_path / "full"
    full.mkdir()
    require(_mount_tmpfs(full, "64k"))
    try:
        with open(full / "filler", "wb", buffering=0) as filler:  # to the last block
            with contextlib.suppress(OSError):
                while True:
                    filler.write(b"\0" * 4096)
        settings.LOUPE_STORAGE_DIR = full
        response = client.get("/readyz")
        assert response.status_code == 503
        assert body(response)["checks"] == {
            "database": "ok",
            "cache": "ok",
            "storage": "objects folder not writable: OSError [ENOSPC]",
        }
        assert [p.name for p in full.iterdir()] == ["filler"]  # its probe file is gone
    finally:
        subprocess.run(["umount", str(full)], check=True)


# -- a real server on PostgreSQL and Redis -----------------------------------------------


def _redis_available() -> str | None:
    from tests import servers

    if not hasattr(servers, "redis_available"):
        return "tests.servers has no Redis starter"
    missing: str | None = servers.redis_available()
    return missing


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Loupe under gunicorn on a PostgreSQL and a Redis of this test's own."""
    require(postgres_available())
    require(_redis_available())
    from tests.servers import start_redis

    postgres = start_postgres()
    redis = start_redis()
    loupe: Server | None = None
    try:
        env = migrated_database(postgres, "health", tmp_path / "data")
        env.update(
            {
                "LOUPE_SECRET_KEY": "health-test-" + "k" * 40,
                "LOUPE_EMBED": "0",
                "LOUPE_REDIS_URL": redis.url,
                "LOUPE_DECODER_PROCESSES": "0",
            }
        )
        loupe = start_loupe(env, tmp_path / "loupe")
        yield {"loupe": loupe, "postgres": postgres, "redis": redis, "env": env}
    finally:
        for server in (loupe, redis, postgres):
            if server is not None:
                _resume(server)
                server.stop()


def _resume(server: Server) -> None:
    if server.process.poll() is None:
        os.kill(server.process.pid, signal.SIGCONT)


def _postmaster(postgres: Server) -> int:
    """The postmaster's PID: the server's process, or its child where it was started
    through ``runuser`` (as root)."""
    pid = postgres.process.pid
    if Path(f"/proc/{pid}/comm").read_text().strip() == "postgres":
        return pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    (child,) = children
    return int(child)


def log_in(url: str, env: dict[str, str]) -> requests.Session:
    """A radiologist made in the test's database, signed in through the login form."""
    manage(
        env,
        "shell",
        "-c",
        "from django.contrib.auth.models import Group, User; "
        "u = User.objects.create_user('reader', password='reader-pass-1'); "
        "u.groups.add(Group.objects.get_or_create(name='radiologist')[0])",
    )
    session = requests.Session()
    form = session.get(f"{url}/login/", timeout=TIMEOUT)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    assert token, form.text[:300]
    answer = session.post(
        f"{url}/login/",
        data={"username": "reader", "password": "reader-pass-1", "csrfmiddlewaretoken": token[1]},
        headers={"Referer": f"{url}/login/"},
        timeout=TIMEOUT,
        allow_redirects=False,
    )
    assert answer.status_code == 302, answer.text[:300]
    return session


def readyz(url: str) -> tuple[int, dict[str, Any], float]:
    started = time.monotonic()
    response = requests.get(f"{url}/readyz", timeout=TIMEOUT)
    return response.status_code, response.json(), time.monotonic() - started


def wait_until_ready(url: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while True:
        status, answer, _ = readyz(url)
        if status == 200:
            assert answer == READY
            return
        assert time.monotonic() < deadline, answer
        time.sleep(0.5)


def assert_alive(url: str) -> None:
    response = requests.get(f"{url}/healthz", timeout=TIMEOUT)
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


@pytest.mark.postgres
def test_readyz_names_each_dependency_that_hangs_or_goes_away(stack: dict[str, Any]) -> None:
    url = stack["loupe"].url
    redis, postgres = stack["redis"], stack["postgres"]
    wait_until_ready(url)

    # Redis hangs: the cache check times out within the bound; the rest answers.
    os.kill(redis.process.pid, signal.SIGSTOP)
    try:
        status, answer, took = readyz(url)
        assert status == 503
        assert answer["status"] == "not ready"
        assert answer["checks"]["database"] == "ok"
        assert answer["checks"]["storage"] == "ok"
        # The cache fails open: a PING within its 0.5 s socket timeout says Redis hangs.
        assert answer["checks"]["cache"] == "unreachable: TimeoutError", answer
        assert took < 5
        assert_alive(url)
    finally:
        os.kill(redis.process.pid, signal.SIGCONT)
    wait_until_ready(url)

    # PostgreSQL hangs: the database check times out within the bound.
    postmaster = _postmaster(postgres)
    os.kill(postmaster, signal.SIGSTOP)
    try:
        status, answer, took = readyz(url)
        assert status == 503
        assert answer["checks"]["database"].startswith("timeout"), answer
        assert answer["checks"]["cache"] == "ok"
        assert took < 5
        assert_alive(url)
    finally:
        os.kill(postmaster, signal.SIGCONT)
    wait_until_ready(url)

    # Redis gone: unreachable, said with the error's class only; Loupe keeps serving
    # a signed-in user (sessions from the database, caches off).
    session = log_in(url, stack["env"])
    assert session.get(f"{url}/", timeout=TIMEOUT).status_code == 200
    redis.stop()
    for _ in range(3):
        page = session.get(f"{url}/", timeout=TIMEOUT, allow_redirects=False)
        assert page.status_code == 200, page.text[:300]
        assert "Worklist" in page.text or "worklist" in page.text
    status, answer, took = readyz(url)
    assert status == 503
    assert answer["checks"] == {
        "database": "ok",
        "cache": "unreachable: ConnectionError",
        "storage": "ok",
    }
    assert took < 5
    assert_alive(url)

    # PostgreSQL gone too.
    postgres.stop()
    status, answer, took = readyz(url)
    assert status == 503
    assert answer["checks"] == {
        "database": "unreachable: OperationalError",
        "cache": "unreachable: ConnectionError",
        "storage": "ok",
    }
    assert took < 5
    assert_alive(url)
    text = json.dumps(answer)
    assert "127.0.0.1" not in text and "Traceback" not in text
