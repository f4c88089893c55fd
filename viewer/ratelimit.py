"""Rate limits on the doors a stranger can knock on: sign-in, EHR launch, share links,
bearer tokens (issue 17).

A limit counts events per client address (``viewer.requester.client_address``: behind
LOUPE_TRUSTED_PROXIES the real client, not the proxy) or per account, in Django's cache:
Redis when LOUPE_REDIS_URL is set, so a limit holds across every node and worker; the
process's local memory otherwise. The window is fixed and starts at the first event
counted (``count``); once ``rate.count`` events are in it, ``check`` refuses with
:class:`RateLimited` (429, ``Retry-After`` the seconds left in the window) until it ends.

What is counted is failure, not use, except where use itself costs (the SSO start writes
a state into a new session): a clinician launched from the EHR a hundred times a day, or
a radiologist signing in, never meets a limit; a script trying passwords, forged launches,
share tokens or bearer tokens does.

| limit | counts | per | setting (count/seconds) |
|---|---|---|---|
| ``LOGIN`` | failed password sign-ins (``/login/``) | address | LOUPE_RATE_LIMIT_LOGIN |
| ``LOGIN_ACCOUNT`` | failed password sign-ins for one user name, from anywhere | account | LOUPE_RATE_LIMIT_LOGIN_ACCOUNT |
| ``SSO_START`` | single sign-on starts (``/oidc/authenticate/``) | address | LOUPE_RATE_LIMIT_SSO_START |
| ``LAUNCH`` | refused EHR launches (signed, SMART, its callback) and popup hand-offs | address | LOUPE_RATE_LIMIT_LAUNCH |
| ``SHARE`` | unknown share-link tokens (``/s/<token>``) | address | LOUPE_SHARE_GUESS_LIMIT in 600 s |
| ``TOKEN`` | refused bearer tokens on DICOMweb and FHIR | address | LOUPE_RATE_LIMIT_TOKEN |

Keys hold a SHA-256 of the address or account, never the value itself. When the cache
cannot be reached (Redis down), limits are not applied and a warning is logged: the
archive keeps serving, and ``/readyz`` says the cache is down.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar, cast

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from viewer import requester
from viewer.errors import ViewerError

logger = logging.getLogger(__name__)

KEY_PREFIX = "loupe:ratelimit"
SHARE_WINDOW_SECONDS = 600

try:  # the errors of a Redis cache that cannot be reached (redis is installed with Loupe)
    from redis.exceptions import RedisError as _RedisError

    CACHE_ERRORS: tuple[type[Exception], ...] = (_RedisError, OSError)
except ImportError:  # pragma: no cover
    CACHE_ERRORS = (OSError,)


@dataclass(frozen=True)
class Rate:
    """At most ``count`` events in ``seconds``."""

    count: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.count} in {duration(self.seconds)}"


def duration(seconds: int) -> str:
    """``seconds`` in words: "45 seconds", "1 minute", "5 minutes", "2 hours"."""
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def _setting(name: str) -> Callable[[], Rate]:
    def rate() -> Rate:
        count, seconds = getattr(settings, name)
        return Rate(int(count), int(seconds))

    return rate


def _share_rate() -> Rate:
    return Rate(int(settings.LOUPE_SHARE_GUESS_LIMIT), SHARE_WINDOW_SECONDS)


@dataclass(frozen=True)
class Limit:
    """A named limit: what it counts (words for the message), per what, at which rate."""

    name: str
    what: str
    per: str  # "address" or "account"
    rate: Callable[[], Rate]


LOGIN = Limit("login", "failed sign-ins", "address", _setting("LOUPE_RATE_LIMIT_LOGIN"))
LOGIN_ACCOUNT = Limit(
    "login-account", "failed sign-ins", "account", _setting("LOUPE_RATE_LIMIT_LOGIN_ACCOUNT")
)
SSO_START = Limit(
    "sso-start", "single sign-on starts", "address", _setting("LOUPE_RATE_LIMIT_SSO_START")
)
LAUNCH = Limit("launch", "refused launches", "address", _setting("LOUPE_RATE_LIMIT_LAUNCH"))
SHARE = Limit("share", "unknown share links", "address", _share_rate)
TOKEN = Limit("token", "refused bearer tokens", "address", _setting("LOUPE_RATE_LIMIT_TOKEN"))


class RateLimited(ViewerError):
    """A limit is reached: 429, the limit named, ``retry_after`` seconds to wait."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None):
        super().__init__(message, code=code)
        self.retry_after = retry_after
        self.advice = f"Try again in {duration(retry_after)}."

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "retry_after": self.retry_after}


def _subject(request: HttpRequest, limit: Limit, value: str | None) -> str:
    if limit.per == "account":
        return (value or "").strip().casefold()
    return requester.client_address(request) or "unknown"


def _key(request: HttpRequest, limit: Limit, value: str | None) -> str:
    digest = hashlib.sha256(_subject(request, limit, value).encode()).hexdigest()[:32]
    return f"{KEY_PREFIX}:{limit.name}:{digest}"


def count(request: HttpRequest, limit: Limit, value: str | None = None) -> None:
    """Count one event against ``limit`` for this request's address (or the account
    ``value``; none given, nothing is counted); the first event of a window starts it."""
    if limit.per == "account" and not _subject(request, limit, value):
        return
    key = _key(request, limit, value)
    rate = limit.rate()
    try:
        if _start(key, rate):
            return
        try:
            cache.incr(key)
        except ValueError:  # the window ended between add and incr
            _start(key, rate)
    except CACHE_ERRORS as error:
        _cache_down(limit, error)


def _start(key: str, rate: Rate) -> bool:
    if not cache.add(key, 1, rate.seconds):
        return False
    cache.set(f"{key}:until", time.time() + rate.seconds, rate.seconds)
    return True


def check(
    request: HttpRequest,
    limit: Limit,
    value: str | None = None,
    *,
    error: type[RateLimited] = RateLimited,
) -> None:
    """Raise ``error`` (a :class:`RateLimited`) when ``limit`` is reached for this
    request's address (or the account ``value``); nothing otherwise."""
    if limit.per == "account" and not _subject(request, limit, value):
        return
    key = _key(request, limit, value)
    rate = limit.rate()
    try:
        found = cache.get_many([key, f"{key}:until"])
    except CACHE_ERRORS as failure:
        _cache_down(limit, failure)
        return
    if int(found.get(key, 0)) < rate.count:
        return
    until = found.get(f"{key}:until")
    left = math.ceil(float(until) - time.time()) if until is not None else rate.seconds
    retry_after = min(max(1, left), rate.seconds)
    raise error(
        f"too many {limit.what} from this {limit.per}: the limit is {rate}",
        retry_after=retry_after,
    )


def reset(request: HttpRequest, limit: Limit, value: str | None = None) -> None:
    """Forget the events counted against ``limit`` for this address or account."""
    key = _key(request, limit, value)
    try:
        cache.delete_many([key, f"{key}:until"])
    except CACHE_ERRORS as error:
        _cache_down(limit, error)


def _cache_down(limit: Limit, error: Exception) -> None:
    logger.warning(
        "rate limit %s not applied: the cache cannot be reached (%s)",
        limit.name,
        type(error).__name__,
    )


def too_many(request: HttpRequest, error: RateLimited) -> HttpResponse:
    """The 429 answer: the error page for a browser's page, JSON otherwise, with
    ``Retry-After`` (RFC 9110 §10.2.3) in seconds."""
    from viewer.middleware import error_response  # the one ViewerError -> response mapping

    response = error_response(request, error)
    response["Retry-After"] = str(error.retry_after)
    response["Cache-Control"] = "no-store"
    return response


def limited(request: HttpRequest, limit: Limit, value: str | None = None) -> HttpResponse | None:
    """The 429 answer when ``limit`` is reached for this request, else None (for views
    that answer refusals themselves)."""
    try:
        check(request, limit, value)
    except RateLimited as error:
        return too_many(request, error)
    return None


ViewT = TypeVar("ViewT", bound=Callable[..., HttpResponse])


def answers_429(view: ViewT) -> ViewT:
    """A view whose services may raise :class:`RateLimited`: answered by ``too_many``
    (with ``Retry-After``) instead of the generic error mapping."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except RateLimited as error:
            return too_many(request, error)

    return cast(ViewT, wrapper)


def sign_in_form(view: ViewT) -> ViewT:
    """A password form view other than ``/login/`` (the admin's login): its POSTs are
    limited as ``/login/``'s are (``LOGIN`` per address, ``LOGIN_ACCOUNT`` per user name),
    a form shown again (200) counting as a failed sign-in."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "POST":
            return view(request, *args, **kwargs)
        account = request.POST.get("username", "")
        for limit, value in ((LOGIN, None), (LOGIN_ACCOUNT, account)):
            if (refused := limited(request, limit, value)) is not None:
                return refused
        response = view(request, *args, **kwargs)
        if response.status_code == 200:
            count(request, LOGIN)
            count(request, LOGIN_ACCOUNT, account)
        return response

    return cast(ViewT, wrapper)
