"""Single sign-on through a real OpenID provider (npm oidc-provider on loopback) in Chromium.

A direct visit goes login page -> provider -> callback -> worklist; roles come from the
provider's ``roles`` claim through LOUPE_OIDC_ROLE_MAP; the session key changes at login;
a replayed callback is refused; logout ends the session on the server and at the provider.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.auth.models import Group, User
from django.contrib.sessions.backends.cached_db import SessionStore
from playwright.sync_api import BrowserContext, Page, expect

from ehrlaunch.models import SsoIdentity
from tests.ehrlaunch.conftest import PASSWORD, USERS
from tests.servers import Server
from viewer.requester import SESSION_CHANNEL
from viewer.services import ingest

pytestmark = [pytest.mark.e2e, pytest.mark.idp, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def two_studies(shared_dicom: Path) -> None:
    """Patient TEST_1's two one-slice CT studies (1.2.3 and 2.3.4) from the corpus."""
    for path in sorted((shared_dicom / "ct-prior-pair-mini").iterdir()):
        assert ingest.ingest_file(path).status == "stored"


def session_cookie(context: BrowserContext, url: str) -> str:
    cookies = [c for c in context.cookies(url) if c["name"] == "sessionid"]
    return cookies[0]["value"] if cookies else ""


def sign_in_at_provider(page: Page, idp: Server, username: str) -> None:
    expect(page).to_have_url(re.compile(rf"^{re.escape(idp.url)}/interaction/"))
    expect(page.locator("#test-idp h1")).to_have_text("Test IdP sign-in")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def sso_login(page: Page, live_server: Any, idp: Server, username: str) -> None:
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(f"{live_server.url}/login/?next=/")
    page.click("#sso-signin")
    sign_in_at_provider(page, idp, username)
    expect(page).to_have_url(f"{live_server.url}/", timeout=20_000)


def test_a_direct_visit_signs_in_through_the_provider(
    page: Page, live_server: Any, sso: Server, two_studies: None, artifacts_dir: Path
) -> None:
    authorize: list[str] = []
    callbacks: list[str] = []
    page.on(
        "request",
        lambda r: (
            authorize.append(r.url)
            if r.url.startswith(f"{sso.url}/auth?")
            else callbacks.append(r.url)
            if "/oidc/callback/" in r.url
            else None
        ),
    )
    page.goto(f"{live_server.url}/")
    expect(page.locator("#sso-signin")).to_have_text("Sign in with single sign-on")
    expect(page.locator("input[name=password]")).to_be_visible()  # local accounts still work
    page.screenshot(path=str(artifacts_dir / "sso-login-page.png"))
    page.click("#sso-signin")
    expect(page.locator("#test-idp")).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "sso-provider-sign-in.png"))
    before = session_cookie(page.context, live_server.url)
    assert before  # the sign-in's state, nonce and verifier are in this session
    sign_in_at_provider(page, sso, "rad")

    expect(page.locator("p.count")).to_have_text("2 studies", timeout=20_000)  # sees all
    expect(page.locator(".topbar .user")).to_have_text("oidc:u-1001")
    page.screenshot(path=str(artifacts_dir / "sso-worklist-radiologist.png"))
    after = session_cookie(page.context, live_server.url)
    assert after and after != before  # the session key was rotated at login

    # The authorization request: code flow, PKCE S256, a nonce, a state of >= 128 bits.
    assert len(authorize) == 1
    query = parse_qs(urlsplit(authorize[0]).query)
    assert query["response_type"] == ["code"]
    assert query["client_id"] == ["loupe"]
    assert query["code_challenge_method"] == ["S256"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", query["code_challenge"][0])
    assert len(query["nonce"][0]) >= 32
    assert len(query["state"][0]) >= 32
    assert "roles" in query["scope"][0].split()

    user = User.objects.get(sso_identity__subject="u-1001")
    assert SsoIdentity.objects.get(user=user).issuer == sso.url
    assert user.username == "oidc:u-1001"
    assert (user.first_name, user.last_name, user.email) == (
        "Rita",
        "Radiologist",
        "rita@hospital.test",
    )
    assert not user.has_usable_password()
    assert not (user.is_staff or user.is_superuser)
    assert set(user.groups.values_list("name", flat=True)) == {"radiologist"}
    assert SessionStore(session_key=after)[SESSION_CHANNEL] == "sso"
    # The audit trail names the user by issuer and subject, and the channel.
    from viewer.models import AuditEvent

    login = AuditEvent.objects.filter(event_id="110114", outcome=0).latest("recorded_at")
    assert (login.user_id, login.channel) == (f"{sso.url}|u-1001", "sso")

    # The callback URL cannot be used again: its state was spent.
    assert len(callbacks) == 1
    replay = page.goto(callbacks[0])
    assert replay is not None and replay.status == 403
    expect(page.locator(".error-page")).to_contain_text("unknown state")
    page.screenshot(path=str(artifacts_dir / "sso-callback-replayed.png"))


def test_roles_follow_the_claims_at_every_login(
    page: Page, live_server: Any, sso: Server, two_studies: None, artifacts_dir: Path
) -> None:
    # An account this identity had before, with a role its claims no longer give.
    former = User.objects.create_user("oidc:u-2002")
    former.set_unusable_password()
    former.save()
    former.groups.add(Group.objects.create(name="radiologist"))
    SsoIdentity.objects.create(user=former, issuer=sso.url, subject=USERS["cli"]["sub"])

    sso_login(page, live_server, sso, "cli")
    # A clinician by claim, without an EHR launch, sees no study.
    expect(page.locator("p.count")).to_have_text("0 studies")
    expect(page.locator("p.notice")).to_contain_text("Open Loupe from the patient's chart")
    page.screenshot(path=str(artifacts_dir / "sso-worklist-clinician.png"))
    former.refresh_from_db()
    assert set(former.groups.values_list("name", flat=True)) == {"clinician"}
    assert User.objects.filter(sso_identity__subject="u-2002").count() == 1


def test_a_user_whose_roles_map_to_none_sees_nothing(
    page: Page, live_server: Any, sso: Server, two_studies: None, artifacts_dir: Path
) -> None:
    sso_login(page, live_server, sso, "porter")
    expect(page.locator("p.error")).to_contain_text("Your account has no role in Loupe")
    expect(page.locator("p.count")).to_have_text("0 studies")
    page.screenshot(path=str(artifacts_dir / "sso-worklist-no-role.png"))
    response = page.request.get(f"{live_server.url}/viewer/1.2.3/")
    assert response.status == 404


def test_logout_ends_the_session_in_loupe_and_at_the_provider(
    page: Page, live_server: Any, sso: Server, two_studies: None, artifacts_dir: Path
) -> None:
    sso_login(page, live_server, sso, "rad")
    session = session_cookie(page.context, live_server.url)
    page.click("form.logout button")
    # RP-initiated logout: the provider asks to confirm, then returns to Loupe's login page.
    expect(page).to_have_url(re.compile(rf"^{re.escape(sso.url)}/session/end"))
    page.screenshot(path=str(artifacts_dir / "sso-provider-logout.png"))
    page.click("button[name=logout]")
    expect(page).to_have_url(re.compile(rf"^{re.escape(live_server.url)}/login/"))
    # The old session cookie is worthless: the server ended that session.
    old = requests.get(
        f"{live_server.url}/", cookies={"sessionid": session}, allow_redirects=False, timeout=10
    )
    assert old.status_code == 302 and old.headers["Location"].startswith("/login/")
    # The provider's session ended too: single sign-on asks for the password again.
    page.click("#sso-signin")
    expect(page.locator("#test-idp h1")).to_have_text("Test IdP sign-in")
