"""viewer.sessions: a session and its user are read in one query, and everything that
ends a session on the server still ends it at once (tests/session_scenarios.py), on
SQLite here and on PostgreSQL, where the statement is prepared, in a process of its own."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests import session_scenarios
from tests.conftest import PROJECT_DIR
from tests.servers import Server, migrated_database
from viewer import sessions


@pytest.fixture(autouse=True)
def _forget_remembered_ids() -> None:
    sessions.user_ids.clear()


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(session_scenarios.SCENARIOS))
def test_session_scenario_on_sqlite(name: str) -> None:
    scenario: Callable[[], None] = session_scenarios.SCENARIOS[name]
    scenario()


@pytest.mark.django_db
def test_a_known_session_and_its_user_take_one_query() -> None:
    user, key = session_scenarios.logged_in("counted")
    with CaptureQueriesContext(connection) as first:
        assert session_scenarios.user_of(key) == user
    with CaptureQueriesContext(connection) as second:
        assert session_scenarios.user_of(key) == user
    assert len(first) == 2  # Django's path: the session, then the user
    assert len(second) == 1
    assert "LEFT JOIN" in second[0]["sql"] and "django_session" in second[0]["sql"]


@pytest.mark.postgres
def test_session_scenarios_on_postgres(postgres: Server, tmp_path: Path) -> None:
    env = migrated_database(postgres, "sessions", tmp_path)
    code = (
        "import django; django.setup()\n"
        "from django.db import connection\n"
        "from tests import session_scenarios\n"
        "assert connection.vendor == 'postgresql'\n"
        "print('\\n'.join(session_scenarios.run_all()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_DIR,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:-1] == list(session_scenarios.SCENARIOS)
