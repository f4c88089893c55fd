"""What a session cookie authenticates, request after request, as the session changes on
the server: run in-process on SQLite (tests/viewer/test_sessions.py) and in a process of
its own on PostgreSQL, where the session and its user come through a prepared statement.

Each scenario logs a user in, reads ``request.user`` the way every request does
(``SessionMiddleware`` then the configured authentication middleware), changes
something another worker or an administrator could change, and reads it again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.utils import timezone
from django.utils.module_loading import import_string

PASSWORD = "a-long-password-for-sessions-1"


def user_of(session_key: str) -> Any:
    """``request.user`` of a request carrying ``session_key`` (a fresh request, as a
    worker gets it), through the configured middleware."""
    request = HttpRequest()
    request.COOKIES[settings.SESSION_COOKIE_NAME] = session_key
    request.META["REMOTE_ADDR"] = "127.0.0.1"
    for path in (
        "django.contrib.sessions.middleware.SessionMiddleware",
        *[p for p in settings.MIDDLEWARE if p.endswith("AuthenticationMiddleware")],
    ):
        import_string(path)(lambda r: HttpResponse()).process_request(request)
    user = request.user
    return user if user.is_authenticated else None


def logged_in(username: str) -> tuple[User, str]:
    user = User.objects.create_user(username, f"{username}@example.org", PASSWORD)
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return user, client.cookies[settings.SESSION_COOKIE_NAME].value


def _same_user_request_after_request() -> None:
    user, key = logged_in("steady")
    for _ in range(3):  # the first load learns the id, the next ones read both rows at once
        assert user_of(key) == user


def _sso_session() -> None:
    """A session made by the OpenID Connect backend (mozilla-django-oidc's get_user)."""
    user = User.objects.create_user("sso", "sso@example.org")
    client = Client()
    client.force_login(user, backend="ehrlaunch.auth.LoupeOIDCBackend")
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    for _ in range(2):
        assert user_of(key) == user
    user.set_unusable_password()  # a new session hash: the session ends, as in Django
    user.save()
    assert user_of(key) is None


def _logout_elsewhere() -> None:
    user, key = logged_in("logout")
    assert user_of(key) == user
    Session.objects.filter(session_key=key).delete()  # what another worker's logout does
    assert user_of(key) is None


def _expired() -> None:
    user, key = logged_in("expired")
    assert user_of(key) == user
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - timedelta(1))
    assert user_of(key) is None


def _password_changed() -> None:
    user, key = logged_in("password")
    assert user_of(key) == user
    user.set_password("another-long-password-2")
    user.save()
    assert user_of(key) is None
    assert not Session.objects.filter(session_key=key).exists()  # flushed, as Django does


def _deactivated() -> None:
    user, key = logged_in("inactive")
    assert user_of(key) == user
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert user_of(key) is None


def _deleted() -> None:
    user, key = logged_in("deleted")
    assert user_of(key) == user
    User.objects.filter(pk=user.pk).delete()
    assert user_of(key) is None


def _session_now_names_another_user() -> None:
    first, key = logged_in("first")
    second = User.objects.create_user("second", "second@example.org", PASSWORD)
    assert user_of(key) == first
    store = import_string(f"{settings.SESSION_ENGINE}.SessionStore")(key)
    store[SESSION_KEY] = str(second.pk)
    store[HASH_SESSION_KEY] = second.get_session_auth_hash()
    store.save()
    assert user_of(key) == second  # not the user the process remembered for the key


def _hash_of_another_user() -> None:
    victim, key = logged_in("victim")
    other = User.objects.create_user("other", "other@example.org", PASSWORD)
    assert user_of(key) == victim
    store = import_string(f"{settings.SESSION_ENGINE}.SessionStore")(key)
    store[HASH_SESSION_KEY] = other.get_session_auth_hash()
    store.save()
    assert user_of(key) is None


def _tampered_data() -> None:
    user, key = logged_in("tampered")
    assert user_of(key) == user
    data = Session.objects.get(session_key=key).session_data
    Session.objects.filter(session_key=key).update(session_data="x" + data[1:])
    assert user_of(key) is None  # the signature no longer matches: no session data


def _unknown_key() -> None:
    assert user_of("x" * 32) is None


SCENARIOS: dict[str, Callable[[], None]] = {
    "same user request after request": _same_user_request_after_request,
    "session made by single sign-on": _sso_session,
    "logout in another worker": _logout_elsewhere,
    "expired session": _expired,
    "password changed": _password_changed,
    "account deactivated": _deactivated,
    "account deleted": _deleted,
    "session now names another user": _session_now_names_another_user,
    "session hash of another user": _hash_of_another_user,
    "session data tampered with": _tampered_data,
    "unknown session key": _unknown_key,
}


def run_all() -> list[str]:
    """Run every scenario; the names of those that passed, in order."""
    passed = []
    for name, scenario in SCENARIOS.items():
        scenario()
        passed.append(name)
    return passed
