"""Shared fixtures: an isolated data folder per test, the shared DICOM corpus, users.

The environment Django starts with is set by ``tests/pytest_environment.py``.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.paths import ARTIFACTS, PROJECT_DIR, SHARED_DICOM

__all__ = ["ARTIFACTS", "PROJECT_DIR", "SHARED_DICOM", "client_for", "require"]


# CI (CI=true) has every component a test needs; there, a missing one is a failure.
IN_CI = os.environ.get("CI", "").strip().lower() == "true"


def require(missing: str | None) -> None:
    """Nothing where a test's component (the corpus, PostgreSQL, node, dcmtk …) is there;
    where ``missing`` says it is not: a skip with that reason on a developer's machine,
    a failure in CI, where a skip would hide a missing install step."""
    if missing is None:
        return
    if IN_CI:
        pytest.fail(f"{missing} (CI=true: every component must be installed)", pytrace=False)
    pytest.skip(missing)


@pytest.fixture
def shared_dicom() -> Path:
    """The shared test corpus (../shared/dicom); tests skip where it is absent."""
    present = (SHARED_DICOM / "manifest.json").exists()
    require(
        None
        if present
        else f"the shared DICOM corpus is not at {SHARED_DICOM} (set LOUPE_SHARED_DICOM)"
    )
    return SHARED_DICOM


@pytest.fixture
def manifest(shared_dicom: Path) -> list[dict[str, Any]]:
    files: list[dict[str, Any]] = json.loads((shared_dicom / "manifest.json").read_text())["files"]
    return files


@pytest.fixture(autouse=True)
def isolated_storage(settings: Any, tmp_path: Path) -> Path:
    """Every test stores its objects in a folder of its own."""
    settings.LOUPE_STORAGE_DIR = tmp_path / "objects"
    settings.LOUPE_TEMP_DIR = tmp_path / "tmp"
    settings.LOUPE_STORAGE_DIR.mkdir()
    settings.LOUPE_TEMP_DIR.mkdir()
    return tmp_path


@pytest.fixture(autouse=True)
def audit_memory() -> Iterator[None]:
    """Each test starts with no aggregation keys remembered from another test's rows."""
    from viewer.services import audit

    audit.recent_keys.clear()
    yield
    audit.recent_keys.clear()


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    """Each test starts with an empty default cache (local memory in tests): no rate-limit
    count, share-guess count or cached value left by another test from the same address."""
    from django.core.cache import cache

    cache.clear()
    yield


def purge_audit_rows() -> None:
    """Delete every audit row past the append-only triggers, in one transaction (tests only)."""
    from django.db import connection, transaction

    migration = importlib.import_module("viewer.migrations.0003_auditevent")
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            for sql in migration.SQLITE_DROP:
                cursor.execute(sql)
            cursor.execute("DELETE FROM viewer_auditevent")
            for sql in migration.SQLITE_TRIGGERS:
                cursor.execute(sql)
        else:
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute("DELETE FROM viewer_auditevent")


@pytest.fixture(autouse=True)
def audit_rows_flushable(request: pytest.FixtureRequest) -> Iterator[None]:
    """A transactional test ends with a flush that deletes every row, which the audit
    table's triggers refuse: its audit rows are purged first."""
    marker = request.node.get_closest_marker("django_db")
    transactional = bool(
        marker and (marker.kwargs.get("transaction") or (marker.args and marker.args[0]))
    ) or bool({"transactional_db", "live_server"} & set(request.fixturenames))
    if not transactional:
        yield
        return
    request.getfixturevalue("transactional_db")  # set up first, so flushed after the purge
    yield
    purge_audit_rows()


# Personas (ARCHITECTURE.md): who asks, and what each may see.

PASSWORD = "a-long-test-password"


def client_for(user: Any) -> Any:
    """A test client logged in as ``user`` (a password login: channel "direct")."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def radiologist(django_user_model: Any) -> Any:
    """A local account in no role group: a radiologist (LOUPE_LOCAL_ACCOUNT_ROLE's default)."""
    return django_user_model.objects.create_user("radiologist", password=PASSWORD)


@pytest.fixture
def logged_in_client(client: Any, radiologist: Any) -> Any:
    client.force_login(radiologist)
    return client


@pytest.fixture
def administrator(django_user_model: Any) -> Any:
    """A superuser: every study, the audit trail and the admin."""
    return django_user_model.objects.create_superuser("administrator", password=PASSWORD)


@pytest.fixture
def outsider(django_user_model: Any) -> Any:
    """An account with no role (made by single sign-on, no role claim): sees no study."""
    user = django_user_model.objects.create_user("outsider")
    user.set_unusable_password()
    user.save()
    return user


@pytest.fixture
def patient_a(shared_dicom: Path) -> Any:
    """Patient A's chest CT (three slices of ct-series), stored."""
    from tests.factories import corpus_files, store_files

    return store_files(corpus_files(shared_dicom, "ct-series", 3))


@pytest.fixture
def patient_b(shared_dicom: Path) -> Any:
    """Patient B's brain MR (two slices of mr-series), stored."""
    from tests.factories import corpus_files, store_files

    return store_files(corpus_files(shared_dicom, "mr-series", 2))


@pytest.fixture
def clinician_for_patient_a(client: Any, patient_a: Any) -> Any:
    """A clinician launched from the EHR for patient A's study: a test client whose
    session is bound to patient A (through the real signed-launch endpoint)."""
    from tests.factories import register_ehr, signed_launch

    register_ehr()
    response = client.get(
        "/ehrlaunch/launch", {"launch": signed_launch(patient_a.study)}, HTTP_ACCEPT="text/html"
    )
    assert response.status_code == 303, response.content[:300]
    return client


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """One PostgreSQL server on a private loopback port for the whole run (tests make
    their own databases in it with ``tests.servers.create_database``); skipped with the
    reason where the binaries are absent."""
    from tests.servers import postgres_available, start_postgres

    require(postgres_available())
    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def decoders() -> Iterator[Any]:
    """A decoder pool of two worker processes under the default limits, for the tests
    that call ``pixels.decode_frame`` directly (the server's own pool comes from settings)."""
    from viewer.dicom.decoder_pool import DecoderPool, Limits

    pool = DecoderPool(Limits(processes=2))
    yield pool
    pool.close()


@pytest.fixture
def artifacts_dir() -> Iterator[Path]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield ARTIFACTS


# Playwright: Debian's chromium, no outside lookups (pytest-playwright's fixture).
@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {
        **browser_type_launch_args,
        "executable_path": os.environ.get("LOUPE_CHROMIUM", "/usr/bin/chromium"),
        "args": [
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
        ],
    }


@pytest.fixture
def instance_insert_fails_for() -> Any:
    """A real database failure: a trigger aborting the insert of one SOP Instance UID
    (SQLite's RAISE(ABORT)), as a lost connection or a failed commit would end it."""
    from django.db import connection

    from viewer.models import Instance

    made: list[str] = []

    def make(uid: str) -> None:
        name = f"loupe_test_fail_{len(made)}"
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TRIGGER {name} BEFORE INSERT ON {Instance._meta.db_table} "
                f"WHEN NEW.sop_instance_uid = '{uid}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        made.append(name)

    yield make
    with connection.cursor() as cursor:
        for name in made:
            cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
