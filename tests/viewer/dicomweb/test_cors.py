"""CORS on DICOMweb (viewer.dicomweb.cors): exact origins of LOUPE_DICOMWEB_CORS_ORIGINS,
preflight answered without a login, headers on real answers and on errors, never
credentials; another origin gets no CORS headers."""

from __future__ import annotations

import importlib.util
import io
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db

VIEWER = "https://viewer.hospital.test"
OTHER = "https://evil.example"


@pytest.fixture(autouse=True)
def cors(settings: Any) -> None:
    settings.LOUPE_DICOMWEB_CORS_ORIGINS = [VIEWER, "http://127.0.0.1:3000"]


@pytest.fixture
def token() -> str:
    out = io.StringIO()
    call_command(
        "issue_api_token", "ohif", "--role", "radiologist", stdout=out, stderr=io.StringIO()
    )
    return out.getvalue().strip()


def preflight(url: str, origin: str) -> Any:
    return Client().options(
        url,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, accept",
        },
    )


def test_a_preflight_from_a_listed_origin_is_answered_without_login(patient_a: Any) -> None:
    response = preflight(f"/dicom-web/studies/{patient_a.study}/thumbnail", VIEWER)
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == VIEWER
    assert set(response["Access-Control-Allow-Methods"].split(", ")) == {"GET", "POST", "OPTIONS"}
    allowed = {h.strip().lower() for h in response["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "accept", "content-type"} <= allowed
    assert int(response["Access-Control-Max-Age"]) > 0
    assert "Origin" in response["Vary"]
    assert "Access-Control-Allow-Credentials" not in response


def test_a_preflight_from_another_origin_is_refused_without_cors_headers(
    patient_a: Any,
) -> None:
    response = preflight(f"/dicom-web/studies/{patient_a.study}/thumbnail", OTHER)
    assert response.status_code == 403
    assert response.json()["code"] == "cors_origin_not_allowed"
    assert not [h for h in response.headers if h.lower().startswith("access-control-")]


def test_an_actual_get_with_a_bearer_token_gets_the_cors_headers(
    patient_a: Any, token: str
) -> None:
    response = Client().get(
        f"/dicom-web/studies/{patient_a.study}/thumbnail",
        headers={"Origin": VIEWER, "Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert response["Access-Control-Allow-Origin"] == VIEWER
    exposed = {h.strip() for h in response["Access-Control-Expose-Headers"].split(",")}
    assert {"Content-Type", "Content-Length"} <= exposed
    assert "Origin" in response["Vary"]
    assert "Access-Control-Allow-Credentials" not in response


def test_errors_carry_the_cors_headers_too(patient_a: Any, token: str) -> None:
    url = f"/dicom-web/studies/{patient_a.study}/thumbnail"
    unauthenticated = Client().get(url, headers={"Origin": VIEWER})
    assert unauthenticated.status_code == 401
    assert unauthenticated["Access-Control-Allow-Origin"] == VIEWER
    bad_token = Client().get(url, headers={"Origin": VIEWER, "Authorization": "Bearer loupe_x"})
    assert bad_token.status_code == 401 and bad_token.json()["code"] == "invalid_token"
    assert bad_token["Access-Control-Allow-Origin"] == VIEWER
    assert "WWW-Authenticate" in bad_token["Access-Control-Expose-Headers"]
    missing = Client().get(
        "/dicom-web/studies/1.2.3.999/thumbnail",
        headers={"Origin": VIEWER, "Authorization": f"Bearer {token}"},
    )
    assert missing.status_code == 404
    assert missing["Access-Control-Allow-Origin"] == VIEWER


def test_another_origin_gets_the_answer_but_no_cors_headers(patient_a: Any, token: str) -> None:
    response = Client().get(
        f"/dicom-web/studies/{patient_a.study}/thumbnail",
        headers={"Origin": OTHER, "Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200  # the browser will not let the other origin read it
    assert "Access-Control-Allow-Origin" not in response


def test_no_cors_outside_dicomweb_and_when_unset(settings: Any, patient_a: Any) -> None:
    page = preflight("/api/instances", VIEWER)
    assert "Access-Control-Allow-Origin" not in page
    settings.LOUPE_DICOMWEB_CORS_ORIGINS = []
    unset = preflight(f"/dicom-web/studies/{patient_a.study}/thumbnail", VIEWER)
    assert "Access-Control-Allow-Origin" not in unset
    assert unset.status_code != 204


def test_origins_must_be_exact(monkeypatch: Any) -> None:
    from config.environment import ImproperlyConfiguredEnv

    # config/settings.py read again, as at start-up, with each bad value.
    spec = importlib.util.find_spec("config.settings")
    assert spec is not None and spec.loader is not None
    for bad in ("*", "https://*.hospital.test", "viewer.hospital.test", "https://v.test/app"):
        monkeypatch.setenv("LOUPE_DICOMWEB_CORS_ORIGINS", bad)
        with pytest.raises(ImproperlyConfiguredEnv, match="not an exact origin"):
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
