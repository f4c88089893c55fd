"""The SSO views without a browser: the login page, the authorization request, refusals at
the callback, the popup pages' opener policy, and ``manage.py oidc_discover``."""

from __future__ import annotations

import base64
import hashlib
import io
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client

from config.sso import sso_settings
from tests.servers import Server

OFFLINE = "http://127.0.0.1:9"  # a provider that is never contacted by these tests
OFFLINE_ENV = {
    "LOUPE_OIDC_ISSUER": OFFLINE,
    "LOUPE_OIDC_CLIENT_ID": "loupe",
    "LOUPE_OIDC_CLIENT_SECRET": "a-client-secret",
    "LOUPE_OIDC_AUTHORIZATION_ENDPOINT": f"{OFFLINE}/auth",
    "LOUPE_OIDC_TOKEN_ENDPOINT": f"{OFFLINE}/token",
    "LOUPE_OIDC_USERINFO_ENDPOINT": f"{OFFLINE}/me",
    "LOUPE_OIDC_JWKS_URI": f"{OFFLINE}/jwks",
    "LOUPE_OIDC_SCOPES": "openid profile roles",
}

pytestmark = pytest.mark.django_db


@pytest.fixture
def offline_sso(settings: Any) -> None:
    for name, value in sso_settings(OFFLINE_ENV).items():
        setattr(settings, name, value)


def test_the_login_page_offers_single_sign_on_only_when_configured(
    client: Client, settings: Any
) -> None:
    page = client.get("/login/?next=/viewer/1.2.3/").content.decode()
    assert "sso-signin" not in page and 'name="password"' in page
    for name, value in sso_settings(OFFLINE_ENV).items():
        setattr(settings, name, value)
    page = client.get("/login/?next=/viewer/1.2.3/").content.decode()
    assert 'href="/oidc/authenticate/?next=%2Fviewer%2F1.2.3%2F"' in page
    assert 'name="password"' in page  # local accounts keep their password login


def test_sso_routes_say_when_sso_is_not_configured(client: Client) -> None:
    for url in ("/oidc/authenticate/", "/oidc/callback/?code=c&state=s"):
        response = client.get(url, HTTP_ACCEPT="text/html")
        assert response.status_code == 404
        assert "single sign-on is not configured" in response.content.decode().lower()


def test_the_authorization_request_has_state_nonce_and_pkce(
    client: Client, offline_sso: None
) -> None:
    response = client.get("/oidc/authenticate/", {"next": "/viewer/1.2.3/"})
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{OFFLINE}/auth"
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["response_type"] == "code"
    assert query["redirect_uri"] == "http://testserver/oidc/callback/"
    assert query["scope"] == "openid profile roles"
    assert query["code_challenge_method"] == "S256"
    stored = client.session["oidc_states"][query["state"]]
    digest = hashlib.sha256(stored["code_verifier"].encode()).digest()
    assert query["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert stored["nonce"] == query["nonce"] and len(query["nonce"]) >= 32
    assert client.session["oidc_login_next"] == "/viewer/1.2.3/"
    assert response["Cache-Control"] == "no-store"


def test_a_foreign_state_is_refused_without_calling_the_provider(
    client: Client, offline_sso: None
) -> None:
    client.get("/oidc/authenticate/")
    response = client.get("/oidc/callback/", {"code": "stolen", "state": "forged"})
    assert response.status_code == 403
    page = response.content.decode()
    assert "unknown state" in page and "sso_state_mismatch" in page
    assert "_auth_user_id" not in client.session


def test_a_provider_error_is_shown_and_spends_the_state(client: Client, offline_sso: None) -> None:
    state = parse_qs(urlsplit(client.get("/oidc/authenticate/")["Location"]).query)["state"][0]
    response = client.get("/oidc/callback/", {"error": "access_denied", "state": state})
    assert response.status_code == 403
    assert "the identity provider denied the sign-in" in response.content.decode().lower()
    assert state not in client.session["oidc_states"]


def test_a_callback_without_code_is_a_bad_request(client: Client, offline_sso: None) -> None:
    response = client.get("/oidc/callback/", {"state": "s"})
    assert response.status_code == 400
    assert "lacks its code or state" in response.content.decode()


def test_the_oidc_backend_never_answers_a_password_login(
    rf: Any, offline_sso: None, django_user_model: Any
) -> None:
    user = django_user_model.objects.create_user("oidc:u-1")
    user.set_unusable_password()
    user.save()
    request = rf.post("/login/")
    assert authenticate(request, username="oidc:u-1", password="") is None
    assert authenticate(request, username="oidc:u-1", password="anything") is None
    local = User.objects.create_user("local", password="a-long-local-password")
    assert authenticate(request, username="local", password="a-long-local-password") == local


def test_the_popup_pages_keep_the_opener_and_others_do_not(
    client: Client, offline_sso: None, django_user_model: Any
) -> None:
    start = client.get("/ehrlaunch/popup/start")
    assert start["Cross-Origin-Opener-Policy"] == "unsafe-none"
    assert start["Location"] == "/login/?next=%2Fehrlaunch%2Fpopup%2Fdone"
    assert client.get(start["Location"])["Cross-Origin-Opener-Policy"] == "unsafe-none"
    assert client.get("/oidc/authenticate/")["Cross-Origin-Opener-Policy"] == "unsafe-none"
    user = django_user_model.objects.create_user("r", password="a-long-local-password")
    client.force_login(user)
    done = client.get("/ehrlaunch/popup/done")
    assert done["Cross-Origin-Opener-Policy"] == "unsafe-none"
    assert 'data-code="' in done.content.decode()
    assert client.get("/")["Cross-Origin-Opener-Policy"] == "same-origin"


def test_a_password_session_logs_out_to_the_login_page(
    client: Client, offline_sso: None, django_user_model: Any
) -> None:
    client.force_login(django_user_model.objects.create_user("r", password="a-long-password-1"))
    response = client.post("/logout/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert "_auth_user_id" not in client.session
    assert client.get("/logout/").status_code == 405  # never by a GET (a link or an image)


@pytest.mark.idp
def test_oidc_discover_prints_the_settings_from_the_provider(idp: Server) -> None:
    out = io.StringIO()
    call_command("oidc_discover", idp.url, stdout=out)
    lines = dict(line.split("=", 1) for line in out.getvalue().splitlines())
    assert lines["LOUPE_OIDC_ISSUER"] == idp.url
    assert lines["LOUPE_OIDC_TOKEN_ENDPOINT"] == f"{idp.url}/token"
    assert lines["LOUPE_OIDC_JWKS_URI"] == f"{idp.url}/jwks"
    assert lines["LOUPE_OIDC_END_SESSION_ENDPOINT"] == f"{idp.url}/session/end"
    env = {k: v for k, v in lines.items() if not v.startswith("<")}
    settings = sso_settings({**env, "LOUPE_OIDC_CLIENT_ID": "c", "LOUPE_OIDC_CLIENT_SECRET": "s"})
    assert settings["OIDC_OP_AUTHORIZATION_ENDPOINT"] == f"{idp.url}/auth"
    with pytest.raises(CommandError, match="names another issuer"):
        call_command("oidc_discover", idp.url.replace("127.0.0.1", "localhost"), stdout=out)
    with pytest.raises(CommandError, match="must be an https:// URL"):
        call_command("oidc_discover", "http://idp.example.org", stdout=out)


def test_a_launch_bound_session_is_never_handed_to_a_frame(
    client: Client, django_user_model: Any
) -> None:
    from viewer.access import SESSION_SCOPE, Scope

    client.force_login(django_user_model.objects.create_user("ehr1:dr-x"))
    session = client.session
    session[SESSION_SCOPE] = Scope(
        role="clinician", channel="ehr", patients=(("P1", ""),)
    ).as_session()
    session.save()
    assert client.get("/ehrlaunch/popup/start")["Location"].startswith("/login/")
    assert client.get("/ehrlaunch/popup/done")["Location"] == "/ehrlaunch/popup/start"
