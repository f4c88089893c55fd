"""Fixtures for sign-in tests: the real OpenID provider (tests/idp, npm oidc-provider) on
loopback, Loupe's SSO settings pointing at it, and its test users.

Loupe runs at ``live_server.url`` (http://localhost:<port>); the provider at
http://127.0.0.1:<port>. Both Loupe host spellings are registered as redirect URIs, so a
test may use either (the cross-site frame test serves the EHR from 127.0.0.1).
"""

from __future__ import annotations

import html
import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from config.sso import sso_settings
from tests.conftest import require
from tests.servers import Server, oidc_provider_available, serve_page, start_oidc_provider

CLIENT_ID = "loupe"
CLIENT_SECRET = "loupe-test-client-secret-0123456789abcdef"
SMART_CLIENT_ID = "loupe-smart"
SMART_CLIENT_SECRET = "loupe-smart-test-secret-0123456789abcdef"
FHIR_CLIENT_ID = "fhir-server"
FHIR_CLIENT_SECRET = "fhir-server-test-secret-0123456789abcdef"
PASSWORD = "idp-test-password-42"
ROLE_MAP = "imaging-md=radiologist,ward-md=clinician,loupe-admin=administrator"

USERS: dict[str, dict[str, Any]] = {
    "rad": {
        "sub": "u-1001",
        "name": "Rita Radiologist",
        "given_name": "Rita",
        "family_name": "Radiologist",
        "email": "rita@hospital.test",
        "roles": ["imaging-md", "staff"],
        "fhirUser": "Practitioner/pr-1001",
    },
    "cli": {
        "sub": "u-2002",
        "name": "Carl Clinician",
        "roles": ["ward-md"],
        "fhirUser": "Practitioner/pr-2002",
    },
    "porter": {
        "sub": "u-3003",
        "name": "Paul Porter",
        "roles": ["facilities"],
        "fhirUser": "RelatedPerson/rp-3003",
    },
}


def loupe_bases(live_server: Any) -> list[str]:
    url = str(live_server.url)
    return [url, url.replace("://localhost:", "://127.0.0.1:")]


@pytest.fixture(scope="session")
def idp(live_server: Any) -> Iterator[Server]:
    """The test OpenID provider, one per test session (its state lives in memory)."""
    require(oidc_provider_available())
    bases = loupe_bases(live_server)
    clients = [
        {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uris": [f"{base}/oidc/callback/" for base in bases],
            "post_logout_redirect_uris": [f"{base}/login/" for base in bases],
            "token_endpoint_auth_method": "client_secret_basic",
        },
        {
            "client_id": SMART_CLIENT_ID,
            "client_secret": SMART_CLIENT_SECRET,
            "redirect_uris": [f"{base}/ehrlaunch/smart/callback" for base in bases],
            "token_endpoint_auth_method": "client_secret_basic",
        },
        {
            "client_id": FHIR_CLIENT_ID,
            "client_secret": FHIR_CLIENT_SECRET,
            "redirect_uris": [],
            "response_types": [],
            "grant_types": [],
        },
    ]
    users = [
        {"username": username, "password": PASSWORD, "claims": claims}
        for username, claims in USERS.items()
    ]
    server = start_oidc_provider(clients=clients, users=users)
    yield server
    server.stop()


def discovery(idp: Server) -> dict[str, Any]:
    url = f"{idp.url}/.well-known/openid-configuration"
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback)
        document: dict[str, Any] = json.load(response)
    return document


def sso_environment(idp: Server) -> dict[str, str]:
    """What an administrator would put in the environment for this provider."""
    document = discovery(idp)
    return {
        "LOUPE_OIDC_ISSUER": idp.url,
        "LOUPE_OIDC_CLIENT_ID": CLIENT_ID,
        "LOUPE_OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "LOUPE_OIDC_AUTHORIZATION_ENDPOINT": document["authorization_endpoint"],
        "LOUPE_OIDC_TOKEN_ENDPOINT": document["token_endpoint"],
        "LOUPE_OIDC_USERINFO_ENDPOINT": document["userinfo_endpoint"],
        "LOUPE_OIDC_JWKS_URI": document["jwks_uri"],
        "LOUPE_OIDC_END_SESSION_ENDPOINT": document["end_session_endpoint"],
        "LOUPE_OIDC_SCOPES": "openid profile email roles",
        "LOUPE_OIDC_ROLE_MAP": ROLE_MAP,
    }


@pytest.fixture
def sso(settings: Any, idp: Server) -> Server:
    """Loupe configured (through config/sso.py, as from the environment) for the provider."""
    for name, value in sso_settings(sso_environment(idp)).items():
        setattr(settings, name, value)
    return idp


class EhrChart:
    """A stand-in EHR on its own site (http://127.0.0.1:<port>, Loupe being on localhost):
    ``GET /chart`` is a chart page that frames ``frame_url``."""

    def __init__(self) -> None:
        self.frame_url = "about:blank"
        self.server = serve_page(self.page, path="/chart")
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = f"{self.origin}/chart"

    def page(self) -> str:
        return (
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<title>Test EHR chart</title></head><body><h1>Test EHR: patient chart</h1>"
            f"<iframe id='loupe' title='Images' src='{html.escape(self.frame_url)}' "
            "width='1100' height='620'></iframe></body></html>"
        )

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ehr_chart() -> Iterator[EhrChart]:
    chart = EhrChart()
    yield chart
    chart.stop()
