"""``manage.py check --deploy`` is clean with the production settings (LOUPE_HTTPS=1, a
long random secret key, a real host name, no LOUPE_DEBUG, no LOUPE_DEMO), and those
settings do what the check asks for: cookies are Secure with ``__Host-`` names, HSTS is
sent, and with LOUPE_SSL_REDIRECT=1 http is redirected to https except the health checks
(nginx does that redirect otherwise). The demo's defaults
(plain http on loopback) stay as they were."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from tests.conftest import PROJECT_DIR

HOST = "loupe.example.org"


def production_env(data_dir: Path, **extra: str) -> dict[str, str]:
    # Nothing of the test run's own environment (its LOUPE_ values, its async override).
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LOUPE_", "DATABASE_URL", "DJANGO_"))
    }
    return {
        **clean,
        "LOUPE_DATA_DIR": str(data_dir),
        "LOUPE_SECRET_KEY": secrets.token_urlsafe(50),
        "LOUPE_HTTPS": "1",
        "LOUPE_ALLOWED_HOSTS": HOST,
        **extra,
    }


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_the_production_settings(tmp_path: Path) -> None:
    done = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env(tmp_path)
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "WARNING" not in output and "ERROR" not in output and "?: (" not in output, output
    assert "System check identified no issues" in done.stdout, output


def test_check_deploy_warns_without_https(tmp_path: Path) -> None:
    """The check is the one that tells a deployment without LOUPE_HTTPS what it lacks."""
    env = production_env(tmp_path)
    del env["LOUPE_HTTPS"]
    done = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)
    assert done.returncode != 0
    assert "security.W004" in done.stderr + done.stdout  # no HSTS
    assert "security.W008" in done.stderr + done.stdout  # no redirect to https


PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client
client = Client(HTTP_HOST="loupe.example.org")
answers = {}
for path in ("/healthz", "/dicom-web/"):
    plain = client.get(path)
    answers[path] = [plain.status_code, plain.headers.get("Location", "")]
behind_nginx = client.get("/healthz", HTTP_X_FORWARDED_PROTO="https")
answers["hsts"] = behind_nginx.headers.get("Strict-Transport-Security", "")
answers["cookies"] = [settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME,
                      settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE]
print(json.dumps(answers))
"""


def test_the_production_settings_send_hsts_and_secure_cookies_behind_nginx(
    tmp_path: Path,
) -> None:
    done = run(["-c", PROBE], production_env(tmp_path, DJANGO_SETTINGS_MODULE="config.settings"))
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout)
    # nginx redirects http to https; a node answers its own http port (probes, nginx).
    assert answers["/healthz"] == [200, ""]
    assert answers["/dicom-web/"] == [200, ""]
    assert answers["hsts"] == "max-age=31536000; includeSubDomains"
    assert answers["cookies"] == ["__Host-sessionid", "__Host-csrftoken", True, True]


def test_loupe_ssl_redirect_redirects_all_but_the_health_checks(tmp_path: Path) -> None:
    env = production_env(tmp_path, DJANGO_SETTINGS_MODULE="config.settings", LOUPE_SSL_REDIRECT="1")
    done = run(["-c", PROBE], env)
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout)
    assert answers["/healthz"] == [200, ""]
    assert answers["/dicom-web/"] == [301, f"https://{HOST}/dicom-web/"]
    checked = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_demo_defaults_stay_plain_http_on_loopback(tmp_path: Path) -> None:
    env = production_env(tmp_path, DJANGO_SETTINGS_MODULE="config.settings", LOUPE_DEMO="1")
    for name in ("LOUPE_HTTPS", "LOUPE_ALLOWED_HOSTS", "LOUPE_SECRET_KEY"):
        del env[name]
    probe = PROBE.replace("loupe.example.org", "127.0.0.1")
    done = run(["-c", probe], env)
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout)
    assert answers["/healthz"] == [200, ""]
    assert answers["/dicom-web/"] == [200, ""]
    assert answers["hsts"] == ""
    assert answers["cookies"][:2] == ["sessionid", "csrftoken"]
