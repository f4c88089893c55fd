"""Rate limits on sign-in, SSO start, EHR launch, share links and bearer tokens
(``viewer.ratelimit``, issue 17).

Real requests until the limit, then 429 with ``Retry-After`` and a message naming the
limit; a good request from another address is not limited; the counts live in the cache,
and with Redis (LOUPE_REDIS_URL) one node's count holds on another: a real Loupe under
gunicorn sharing a real redis-server with this process.

Each test comes from client addresses of its own (TEST-NET-3, 203.0.113.0/24) and small
limits set for it, so the test client's 127.0.0.1 never carries a count into other tests.
"""

from __future__ import annotations

import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client, RequestFactory

from config.sso import sso_settings
from tests.conftest import PASSWORD, require
from tests.ehrlaunch.test_sso_views import OFFLINE, OFFLINE_ENV
from tests.factories import StoredStudy, register_ehr, signed_launch
from viewer import apitokens, ratelimit
from viewer.roles import RADIOLOGIST

pytestmark = pytest.mark.django_db


def from_address(address: str) -> Client:
    return Client(REMOTE_ADDR=address)


def assert_limited(response: Any, *, words: str, seconds: int) -> None:
    """429, Retry-After in (0, seconds], a message naming what is limited and the rate."""
    assert response.status_code == 429, (response.status_code, response.content[:300])
    retry_after = int(response["Retry-After"])
    assert 0 < retry_after <= seconds, retry_after
    assert "no-store" in response["Cache-Control"]
    body = response.content.decode()
    assert words in body, body[:500]


def test_failed_sign_ins_from_one_address_get_429_and_other_addresses_sign_in(
    radiologist: Any, settings: Any
) -> None:
    settings.LOUPE_RATE_LIMIT_LOGIN = (3, 300)
    guesser = from_address("203.0.113.10")
    for n in range(3):
        tried = guesser.post("/login/", {"username": f"nobody-{n}", "password": "wrong"})
        assert tried.status_code == 200  # the form again, saying the sign-in failed
    limited = guesser.post(
        "/login/", {"username": "radiologist", "password": "wrong"}, HTTP_ACCEPT="text/html"
    )
    assert_limited(limited, words="too many failed sign-ins from this address", seconds=300)
    assert "3 in 5 minutes" in limited.content.decode()
    assert "Too many attempts" in limited.content.decode()  # the error page, for a browser form
    # Even the right password waits now, from this address; not from another one.
    right = {"username": "radiologist", "password": PASSWORD}
    assert guesser.post("/login/", right).status_code == 429
    elsewhere = from_address("203.0.113.11").post("/login/", right)
    assert elsewhere.status_code == 302 and elsewhere["Location"] == "/"
    # The page itself is not limited: only the attempts are.
    assert guesser.get("/login/").status_code == 200


def test_failed_sign_ins_for_one_account_are_limited_from_any_address(
    radiologist: Any, django_user_model: Any, settings: Any
) -> None:
    settings.LOUPE_RATE_LIMIT_LOGIN_ACCOUNT = (2, 120)
    django_user_model.objects.create_user("second", password=PASSWORD)
    for n in (20, 21):
        tried = from_address(f"203.0.113.{n}").post(
            "/login/", {"username": "Radiologist ", "password": "wrong"}
        )
        assert tried.status_code == 200
    limited = from_address("203.0.113.22").post(
        "/login/", {"username": "radiologist", "password": PASSWORD}
    )
    assert_limited(limited, words="too many failed sign-ins from this account", seconds=120)
    # Another account from the same address signs in.
    other = from_address("203.0.113.22").post(
        "/login/", {"username": "second", "password": PASSWORD}
    )
    assert other.status_code == 302


def test_the_admin_login_wrapped_by_sign_in_form_is_limited_the_same_way(
    administrator: Any, settings: Any
) -> None:
    """Django's admin login as config/urls.py installs it, wrapped once by
    ``ratelimit.sign_in_form``."""
    import config.urls  # noqa: F401  (installs the wrapped login)

    settings.LOUPE_RATE_LIMIT_LOGIN = (2, 300)
    login = admin.site.login

    def attempt(password: str, address: str = "203.0.113.25") -> Any:
        request = RequestFactory().post(
            "/admin/login/",
            {"username": "administrator", "password": password},
            REMOTE_ADDR=address,
            HTTP_ACCEPT="text/html",
        )
        request._dont_enforce_csrf_checks = True  # type: ignore[attr-defined]
        request.session = SessionStore()
        request.user = AnonymousUser()
        return login(request)

    assert attempt("wrong").status_code == 200  # the form again
    assert attempt("wrong").status_code == 200
    assert_limited(attempt(PASSWORD), words="too many failed sign-ins", seconds=300)
    assert attempt(PASSWORD, "203.0.113.26").status_code == 302


def test_json_clients_get_the_limit_as_json(settings: Any) -> None:
    settings.LOUPE_RATE_LIMIT_LOGIN = (1, 60)
    guesser = from_address("203.0.113.30")
    guesser.post("/login/", {"username": "x", "password": "y"})
    limited = guesser.post("/login/", {"username": "x", "password": "y"}, HTTP_ACCEPT="*/*")
    assert_limited(limited, words="failed sign-ins", seconds=60)
    body = limited.json()
    assert body["code"] == "rate_limited" and 0 < body["retry_after"] <= 60
    assert "the limit is 1 in 1 minute" in body["message"]


def test_single_sign_on_starts_are_limited_per_address(settings: Any) -> None:
    for name, value in sso_settings(OFFLINE_ENV).items():
        setattr(settings, name, value)
    settings.LOUPE_RATE_LIMIT_SSO_START = (3, 60)
    starter = from_address("203.0.113.40")
    for _ in range(3):
        started = starter.get("/oidc/authenticate/")
        assert started.status_code == 302 and started["Location"].startswith(f"{OFFLINE}/auth")
    limited = starter.get("/oidc/authenticate/", HTTP_ACCEPT="text/html")
    assert_limited(limited, words="too many single sign-on starts", seconds=60)
    assert limited["Cross-Origin-Opener-Policy"] == "unsafe-none"  # the popup keeps its opener
    assert from_address("203.0.113.41").get("/oidc/authenticate/").status_code == 302


def test_refused_launches_are_limited_and_a_good_launch_elsewhere_opens(
    patient_a: StoredStudy, settings: Any
) -> None:
    register_ehr()
    settings.LOUPE_RATE_LIMIT_LAUNCH = (3, 300)
    forger = from_address("203.0.113.50")
    opened = forger.get("/ehrlaunch/launch", {"launch": signed_launch(patient_a.study)})
    assert opened.status_code == 303  # good launches never count
    forged = signed_launch(patient_a.study)[:-4] + "AAAA"
    for _ in range(3):
        refused = forger.get("/ehrlaunch/launch", {"launch": forged}, HTTP_ACCEPT="text/html")
        assert refused.status_code == 403
    limited = forger.get(
        "/ehrlaunch/launch", {"launch": signed_launch(patient_a.study)}, HTTP_ACCEPT="text/html"
    )
    assert_limited(limited, words="too many refused launches from this address", seconds=300)
    assert limited["Referrer-Policy"] == "no-referrer"
    # The limited launch left no session open: nothing of patient A answers.
    assert forger.get(f"/api/studies/{patient_a.study}").status_code == 401
    # SMART launches and popup hand-offs from that address wait too.
    assert forger.get("/ehrlaunch/smart", {"iss": "x", "launch": "y"}).status_code == 429
    assert forger.post("/ehrlaunch/handoff", {"code": "z"}).status_code == 429
    elsewhere = from_address("203.0.113.51").get(
        "/ehrlaunch/launch", {"launch": signed_launch(patient_a.study)}
    )
    assert elsewhere.status_code == 303


def test_share_link_guesses_get_429_with_retry_after(settings: Any) -> None:
    settings.LOUPE_SHARE_GUESS_LIMIT = 2
    guesser = from_address("203.0.113.60")
    for n in range(2):
        assert guesser.get(f"/s/{'G' * 42}{n}").status_code == 404
    limited = guesser.get(f"/s/{'H' * 43}", HTTP_ACCEPT="text/html")
    assert_limited(limited, words="too many unknown share links from this address", seconds=600)
    assert "2 in 10 minutes" in limited.content.decode()
    assert limited["X-Robots-Tag"] == "noindex, nofollow"  # still a share-link answer
    assert from_address("203.0.113.61").get(f"/s/{'H' * 43}").status_code == 404


def test_refused_bearer_tokens_are_limited_and_a_good_token_elsewhere_answers(
    radiologist: Any, patient_a: StoredStudy, settings: Any
) -> None:
    settings.LOUPE_RATE_LIMIT_TOKEN = (3, 60)
    account = apitokens.service_account("sweep-pacs", RADIOLOGIST)
    _, token = apitokens.issue(account, "rate limit test")
    url = f"/dicom-web/studies/{patient_a.study}/series"
    guesser = from_address("203.0.113.70")
    for n in range(3):
        refused = guesser.get(url, HTTP_AUTHORIZATION=f"Bearer loupe_{'x' * 40}{n}")
        assert refused.status_code == 401
    limited = guesser.get(url, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert_limited(limited, words="too many refused bearer tokens", seconds=60)
    assert limited.json()["code"] == "rate_limited"
    good = from_address("203.0.113.71").get(url, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert good.status_code == 200
    # Requests without a bearer token (a browser session) are not counted or limited.
    assert guesser.get(url).status_code == 401


def test_a_broken_cache_turns_limits_off_instead_of_failing(settings: Any) -> None:
    """With Redis down the archive keeps serving: the limits are not applied (logged)."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # nothing listens on the discard port
        }
    }
    settings.LOUPE_RATE_LIMIT_LOGIN = (1, 60)
    guesser = from_address("203.0.113.80")
    for _ in range(3):
        assert guesser.post("/login/", {"username": "x", "password": "y"}).status_code == 200


# -- across nodes: one Redis, this process and a Loupe under gunicorn ------------------


@pytest.fixture
def redis_server() -> Iterator[Any]:
    from tests import servers

    require(servers.redis_available())
    server = servers.start_redis()
    yield server
    server.stop()


@pytest.fixture
def gunicorn_node(redis_server: Any) -> Iterator[Any]:
    """A second node: Loupe under gunicorn on its own SQLite data folder, sharing this
    test's Redis, with a login limit of 4 failures in 5 minutes."""
    from tests import servers

    data = Path(tempfile.mkdtemp(prefix="loupe-ratelimit-node-"))
    env = {
        **os.environ,
        "LOUPE_DATA_DIR": str(data),
        "LOUPE_REDIS_URL": redis_server.url,
        "LOUPE_RATE_LIMIT_LOGIN": "4/300",
        "LOUPE_DECODER_PROCESSES": "0",
        "LOUPE_EMBED": "0",  # plain cookies: urllib sends no Secure cookie over http
    }
    env.pop("DATABASE_URL", None)
    servers.manage(env, "migrate", "-v0")
    node = servers.start_loupe(env, data / "node")
    yield node
    node.stop()


def post_login(url: str, username: str, password: str) -> tuple[int, dict[str, str], str]:
    """A sign-in form POST to a real server, with the CSRF cookie and token it hands out."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with opener.open(f"{url}/login/", timeout=10) as page:
        html = page.read().decode()
    token = html.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
    body = urllib.parse.urlencode(
        {"username": username, "password": password, "csrfmiddlewaretoken": token}
    ).encode()
    request = urllib.request.Request(  # noqa: S310 (loopback)
        f"{url}/login/", data=body, headers={"Referer": f"{url}/login/", "Accept": "text/html"}
    )
    try:
        with opener.open(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def test_with_redis_a_limit_reached_on_one_node_holds_on_another(
    redis_server: Any, gunicorn_node: Any, settings: Any
) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_server.url,
        }
    }
    settings.LOUPE_RATE_LIMIT_LOGIN = (4, 300)
    # This process is node one; the gunicorn server sees the test's requests from
    # 127.0.0.1, so node one's requests come from there too.
    here = from_address("127.0.0.1")
    for n in range(3):
        assert here.post("/login/", {"username": f"n{n}", "password": "x"}).status_code == 200
    status, _, _ = post_login(gunicorn_node.url, "n3", "x")
    assert status == 200  # the fourth failure, on node two
    status, headers, body = post_login(gunicorn_node.url, "n4", "x")
    assert status == 429, body[:300]
    assert 0 < int(headers["Retry-After"]) <= 300
    assert "too many failed sign-ins from this address" in body
    # And node two's failure counts here: node one refuses too.
    limited = here.post("/login/", {"username": "n5", "password": "x"})
    assert_limited(limited, words="failed sign-ins", seconds=300)
    ratelimit.reset(limited.wsgi_request, ratelimit.LOGIN)
    assert here.post("/login/", {"username": "n6", "password": "x"}).status_code == 200
