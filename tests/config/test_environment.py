"""config.environment: settings parse strictly and fail with the variable's name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.environment import ImproperlyConfiguredEnv, env_bool, env_choice, env_int, env_list
from tests.conftest import PROJECT_DIR


def test_booleans() -> None:
    assert env_bool("X", False, {"X": "yes"}) is True
    assert env_bool("X", True, {"X": "0"}) is False
    assert env_bool("X", True, {}) is True
    with pytest.raises(ImproperlyConfiguredEnv, match="X='maybe' is not a boolean"):
        env_bool("X", False, {"X": "maybe"})


def test_integers_with_bounds() -> None:
    assert env_int("N", 5, environ={"N": " 12 "}) == 12
    with pytest.raises(ImproperlyConfiguredEnv, match="not an integer"):
        env_int("N", 5, environ={"N": "12MB"})
    with pytest.raises(ImproperlyConfiguredEnv, match="below the minimum 1"):
        env_int("N", 5, minimum=1, environ={"N": "0"})


def test_choices_and_lists() -> None:
    assert env_choice("P", "reject", ("reject", "overwrite"), {"P": "Overwrite"}) == "overwrite"
    with pytest.raises(ImproperlyConfiguredEnv, match="must be one of"):
        env_choice("P", "reject", ("reject", "overwrite"), {"P": "keep-both"})
    assert env_list("H", ["a"], {"H": "x.org, y.org,"}) == ["x.org", "y.org"]


def _start(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LOUPE_", "DATABASE_URL"))}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=PROJECT_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_secret_key_is_required_outside_the_demo(tmp_path: object) -> None:
    done = _start({"LOUPE_DATA_DIR": str(tmp_path)})
    assert done.returncode != 0
    assert "LOUPE_SECRET_KEY is not set" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_value_stops_start_up_with_its_name(tmp_path: object) -> None:
    done = _start(
        {
            "LOUPE_DATA_DIR": str(tmp_path),
            "LOUPE_SECRET_KEY": "k" * 50,
            "LOUPE_MAX_INSTANCE_MB": "lots",
        }
    )
    assert done.returncode != 0
    assert "LOUPE_MAX_INSTANCE_MB='lots' is not an integer" in done.stderr


def test_debug_is_off_by_default(tmp_path: object) -> None:
    from django.conf import settings

    assert settings.DEBUG is False
    done = _start({"LOUPE_DATA_DIR": str(tmp_path), "LOUPE_SECRET_KEY": "k" * 50})
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("ci", ["", "true"])
def test_a_missing_component_skips_on_a_developers_machine_and_fails_in_ci(
    ci: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "LOUPE_SHARED_DICOM": str(tmp_path / "no-corpus-here"),
        "CI": ci,
        "LOUPE_DATA_DIR": str(tmp_path / "data"),  # its own test database, not this run's
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/viewer/management/test_import_dicom.py::test_dicomdir_import_follows_its_records",
        ],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if ci:
        assert done.returncode == 1, done.stdout[-2000:]
        assert "the shared DICOM corpus is not at" in done.stdout
        assert "CI=true: every component must be installed" in done.stdout
    else:
        assert done.returncode == 0, done.stdout[-2000:]
        assert "1 skipped" in done.stdout
