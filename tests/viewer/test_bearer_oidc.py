"""OIDC access tokens as ``Authorization: Bearer`` on DICOMweb (viewer.apitokens), from the
real test OpenID provider (tests/idp, npm oidc-provider): a user signs in there (the
authorization code flow with PKCE, driven over HTTP), the viewer asks for a JWT access
token for Loupe's DICOMweb (resource indicator, RFC 8707 / RFC 9068), and Loupe checks it
against the provider's key set."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import jwt
import pytest
import requests
from django.contrib.sessions.models import Session
from django.test import Client

from config.sso import sso_settings
from ehrlaunch.models import SsoIdentity
from tests.conftest import require
from tests.servers import Server, oidc_provider_available, start_oidc_provider
from viewer import apitokens
from viewer.models import AuditEvent
from viewer.roles import user_role

pytestmark = pytest.mark.django_db

CLIENT_ID = "web-viewer"
CLIENT_SECRET = "web-viewer-test-secret-0123456789abcdef"
REDIRECT_URI = "http://127.0.0.1:9/callback"  # never served: the flow stops at the redirect
RESOURCE = "http://127.0.0.1:8000/dicom-web/"
PASSWORD = "idp-test-password-42"
USERS = {
    "rad": {"sub": "u-1001", "name": "Rita Radiologist", "roles": ["imaging-md"]},
    "cli": {"sub": "u-2002", "name": "Carl Clinician", "roles": ["ward-md"]},
}


@pytest.fixture(scope="module")
def idp() -> Iterator[Server]:
    require(oidc_provider_available())
    server = start_oidc_provider(
        clients=[
            {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [REDIRECT_URI],
                "token_endpoint_auth_method": "client_secret_basic",
            },
            {  # Loupe's own SSO client: the settings need one
                "client_id": "loupe",
                "client_secret": "loupe-test-client-secret-0123456789abcdef",
                "redirect_uris": ["http://127.0.0.1:9/oidc/callback/"],
            },
        ],
        users=[{"username": u, "password": PASSWORD, "claims": c} for u, c in USERS.items()],
    )
    yield server
    server.stop()


@pytest.fixture
def sso(settings: Any, idp: Server) -> Server:
    """Loupe configured for the provider, as an administrator would from the environment."""
    document = requests.get(f"{idp.url}/.well-known/openid-configuration", timeout=10).json()
    environment = {
        "LOUPE_OIDC_ISSUER": idp.url,
        "LOUPE_OIDC_CLIENT_ID": "loupe",
        "LOUPE_OIDC_CLIENT_SECRET": "loupe-test-client-secret-0123456789abcdef",
        "LOUPE_OIDC_AUTHORIZATION_ENDPOINT": document["authorization_endpoint"],
        "LOUPE_OIDC_TOKEN_ENDPOINT": document["token_endpoint"],
        "LOUPE_OIDC_USERINFO_ENDPOINT": document["userinfo_endpoint"],
        "LOUPE_OIDC_JWKS_URI": document["jwks_uri"],
        "LOUPE_OIDC_ROLE_MAP": "imaging-md=radiologist,ward-md=clinician",
    }
    for name, value in sso_settings(environment).items():
        setattr(settings, name, value)
    settings.LOUPE_OIDC_ACCESS_TOKEN_AUDIENCE = ""
    apitokens.forget_keys()
    return idp


def sign_in(idp: Server, username: str, *, resource: str | None = RESOURCE) -> dict[str, Any]:
    """The provider's token response for ``username``, signed in as a browser would."""
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    query: dict[str, str] = {
        "client_id": CLIENT_ID,
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": "openid roles dicomweb",
        "state": secrets.token_urlsafe(16),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if resource:
        query["resource"] = resource
    browser = requests.Session()
    page = browser.get(f"{idp.url}/auth", params=query, timeout=10)
    assert page.status_code == 200, page.text[:300]
    action = re.search(r'action="([^"]+/login)"', page.text)
    assert action, page.text[:300]
    response = browser.post(
        urljoin(page.url, html.unescape(action.group(1))),
        data={"username": username, "password": PASSWORD},
        allow_redirects=False,
        timeout=10,
    )
    for _ in range(10):  # login → authorization → consent → authorization → redirect_uri
        location = urljoin(response.url, response.headers["Location"])
        if location.startswith(REDIRECT_URI):
            break
        response = browser.get(location, allow_redirects=False, timeout=10)
    else:
        raise AssertionError("the provider never redirected back")
    code = parse_qs(urlsplit(location).query)["code"][0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
    }
    if resource:
        form["resource"] = resource
    token = requests.post(
        f"{idp.url}/token", data=form, auth=(CLIENT_ID, CLIENT_SECRET), timeout=10
    )
    assert token.status_code == 200, token.text[:300]
    body: dict[str, Any] = token.json()
    return body


def thumbnail(stored: Any) -> str:
    return f"/dicom-web/studies/{stored.study}/thumbnail"


def get(url: str, token: str) -> Any:
    return Client().get(url, headers={"Authorization": f"Bearer {token}"})


def test_a_radiologists_access_token_reads_images_as_that_user(sso: Server, patient_a: Any) -> None:
    access = sign_in(sso, "rad")["access_token"]
    assert jwt.get_unverified_header(access)["typ"].lower() == "at+jwt"
    sessions = Session.objects.count()

    response = get(thumbnail(patient_a), access)

    assert response.status_code == 200, response.content[:300]
    assert Session.objects.count() == sessions and "sessionid" not in response.cookies
    identity = SsoIdentity.objects.get(issuer=sso.url, subject="u-1001")
    assert user_role(identity.user) == "radiologist"  # from the token's roles claim
    rows = [r for r in AuditEvent.objects.filter(outcome=0) if patient_a.study in r.study_uids]
    assert rows and all(r.user_id == f"{sso.url}|u-1001" for r in rows)
    assert all(r.channel == AuditEvent.Channel.API for r in rows)
    # The same token again is answered from the checked-token memory, still as the user.
    assert get(thumbnail(patient_a), access).status_code == 200


def test_a_clinicians_access_token_sees_nothing_without_a_launch(
    sso: Server, patient_a: Any
) -> None:
    access = sign_in(sso, "cli")["access_token"]
    assert get(thumbnail(patient_a), access).status_code == 404


def test_a_tampered_token_an_id_token_and_an_opaque_token_are_refused(
    sso: Server, patient_a: Any
) -> None:
    tokens = sign_in(sso, "rad")
    head, _payload, signature = tokens["access_token"].split(".")
    forged_claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    forged_claims["sub"] = "u-2002"
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged_claims).encode())
    forged = f"{head}.{forged_payload.rstrip(b'=').decode()}.{signature}"
    for token, message in [
        (forged, "the access token's signature does not match"),
        (tokens["id_token"], "the JWT is not an access token (typ at+jwt, RFC 9068)"),
        (sign_in(sso, "rad", resource=None)["access_token"], "neither a Loupe API token nor"),
    ]:
        response = get(thumbnail(patient_a), token)
        assert response.status_code == 401, response.content[:300]
        assert response.json()["code"] == "invalid_token"
        assert message in response.json()["message"]
        assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_the_audience_is_checked_when_configured(
    settings: Any, sso: Server, patient_a: Any
) -> None:
    access = sign_in(sso, "rad")["access_token"]
    settings.LOUPE_OIDC_ACCESS_TOKEN_AUDIENCE = "https://another-archive.test/dicom-web/"
    refused = get(thumbnail(patient_a), access)
    assert refused.status_code == 401
    assert refused.json()["message"] == "the access token is meant for another audience (aud)"
    settings.LOUPE_OIDC_ACCESS_TOKEN_AUDIENCE = RESOURCE
    apitokens.forget_keys()
    assert get(thumbnail(patient_a), access).status_code == 200


def test_without_sso_a_jwt_is_not_accepted(settings: Any, sso: Server, patient_a: Any) -> None:
    access = sign_in(sso, "rad")["access_token"]
    settings.LOUPE_OIDC_ENABLED = False
    response = get(thumbnail(patient_a), access)
    assert response.status_code == 401
    assert response.json()["message"] == "the bearer token is not a Loupe API token"
