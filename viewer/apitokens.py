"""Bearer tokens for machine clients and viewers on another origin: DICOMweb and FHIR.

Requests under ``/dicom-web/`` and ``/fhir/`` that carry ``Authorization: Bearer <token>``
are authenticated by :class:`BearerTokenMiddleware` (after Django's
authentication middleware), by one of:

* a Loupe API token (``loupe_…``, :class:`~viewer.models.ApiToken`): the request acts as
  the token's service account. Only the token's SHA-256 is stored; the token is shown once
  when issued (the admin's add form, ``manage.py issue_api_token``);
* when single sign-on is configured (``LOUPE_OIDC_ISSUER``), an OAuth 2.0 access token of
  that provider in the JWT profile of RFC 9068 (header ``typ: at+jwt``): RS256 signature
  against the provider's key set (``LOUPE_OIDC_JWKS_URI``), ``iss``, ``exp``, ``nbf`` and,
  when ``LOUPE_OIDC_ACCESS_TOKEN_AUDIENCE`` is set, ``aud``. The user is the one single
  sign-on maps the token's ``iss`` + ``sub`` to (``ehrlaunch.models.SsoIdentity``, made
  as at a first sign-in); a roles claim in the token sets its roles as a sign-in does.

A bearer request has no session: ``request.session`` is an in-memory one that is never
saved and sets no cookie, holding only what the audit trail reads (channel ``api``, the
``iss|sub`` of an OIDC user, ``api-token:<id>`` as the alternative user). No launch or
share scope ever applies to it: it sees what the account's own role allows
(``viewer.roles``): a radiologist or administrator account every study, a clinician
account nothing (a clinician sees only a launched patient, and a bearer request has no
launch). CSRF protects cookies, so it is not checked for bearer requests;
``request.loupe_bearer`` is True for them. A bearer token that is unknown, expired,
revoked or fails a check is answered 401 ``{"code": "invalid_token"}`` with
``WWW-Authenticate: Bearer error="invalid_token"`` (RFC 6750 §3.1) and recorded as a
refusal; the token itself is never logged or stored. Refused tokens count against the
client address: past LOUPE_RATE_LIMIT_TOKEN, bearer requests from it get 429 with
Retry-After before their token is looked at (``viewer.ratelimit.TOKEN``).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import jwt
import requests
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from viewer import ratelimit, requester
from viewer.lru import Lru
from viewer.models import ApiToken, AuditEvent
from viewer.services import audit

TOKEN_PREFIX = "loupe_"  # noqa: S105 (the prefix that marks a Loupe token)
BEARER_PATHS = ("/dicom-web/", "/fhir/")
LAST_USED_RESOLUTION = timedelta(minutes=1)
CLOCK_SKEW_SECONDS = 30
JWKS_CACHE_SECONDS = 300.0
JWKS_REFRESH_SECONDS = 60.0  # an unknown kid refetches the key set at most this often
ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")


class InvalidToken(Exception):
    """A bearer token that authenticates nobody; the message says why (never the token)."""


# -- Loupe API tokens ------------------------------------------------------------------


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(user: User, name: str, *, expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    """A new API token for ``user``: the stored row and the token, which is not kept."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken.objects.create(
        user=user,
        name=name[:100],
        prefix=token[: len(TOKEN_PREFIX) + ApiToken.PREFIX_LENGTH],
        token_hash=token_hash(token),
        expires_at=expires_at,
    )
    return row, token


def service_account(username: str, role: str) -> User:
    """The service account ``username`` (made if missing: no usable password), in the
    group of ``role`` (``viewer.roles``)."""
    from django.contrib.auth.models import Group

    from viewer.roles import forget_roles

    user = User.objects.filter(username=username).first()
    if user is None:
        user = User(username=username)
        user.set_unusable_password()
        user.save()
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    forget_roles(user.pk)
    return user


def revoke(row: ApiToken) -> None:
    if row.revoked_at is None:
        row.revoked_at = timezone.now()
        row.save(update_fields=["revoked_at"])


def api_token_user(token: str) -> tuple[User, ApiToken]:
    """The service account of a Loupe API token, or InvalidToken."""
    row = ApiToken.objects.select_related("user").filter(token_hash=token_hash(token)).first()
    now = timezone.now()
    if row is None:
        raise InvalidToken("the API token is not known")
    if row.revoked_at is not None:
        raise InvalidToken("the API token has been revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise InvalidToken("the API token has expired")
    if not row.user.is_active:
        raise InvalidToken("the API token's account is disabled")
    if row.last_used_at is None or row.last_used_at < now - LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
    return row.user, row


# -- OIDC access tokens ----------------------------------------------------------------

_jwks_lock = threading.Lock()
_jwks: dict[str, Any] = {"keys": [], "fetched": 0.0}
# sha256(token) -> (user pk, "iss|sub", exp): a token checked once is not checked again.
_checked: Lru[str, tuple[int, str, float]] = Lru(entries=10_000, seconds=60.0)


def forget_keys() -> None:
    """Drop the cached key set and checked tokens (tests, a key rotation)."""
    with _jwks_lock:
        _jwks.update(keys=[], fetched=0.0)
    _checked.clear()


def _fetch_keys() -> list[dict[str, Any]]:
    try:
        response = requests.get(
            settings.OIDC_OP_JWKS_ENDPOINT,
            verify=settings.OIDC_VERIFY_SSL,
            timeout=settings.OIDC_TIMEOUT,
            allow_redirects=False,
        )
        response.raise_for_status()
        keys = response.json().get("keys", [])
    except (requests.RequestException, ValueError, AttributeError):
        raise InvalidToken("the identity provider's key set cannot be read") from None
    return [k for k in keys if isinstance(k, dict)] if isinstance(keys, list) else []


def _signing_key(kid: str | None) -> jwt.PyJWK:
    """The provider's RS256 key for ``kid``; the key set is cached for JWKS_CACHE_SECONDS
    and refetched (at most every JWKS_REFRESH_SECONDS) when a kid is not in it."""

    def matching(keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            k
            for k in keys
            if k.get("kty") == "RSA"
            and k.get("use", "sig") == "sig"
            and k.get("alg", "RS256") == "RS256"
            and (kid is None or k.get("kid") == kid)
        ]

    with _jwks_lock:
        age = time.monotonic() - _jwks["fetched"]
        candidates = matching(_jwks["keys"]) if age < JWKS_CACHE_SECONDS else []
        if not candidates and (age >= JWKS_REFRESH_SECONDS or not _jwks["keys"]):
            _jwks.update(keys=_fetch_keys(), fetched=time.monotonic())
            candidates = matching(_jwks["keys"])
    if len(candidates) != 1:
        raise InvalidToken("the identity provider's key set has no single key for this token")
    try:
        return jwt.PyJWK(candidates[0])
    except jwt.PyJWTError:
        raise InvalidToken("the identity provider's key cannot be read") from None


def access_token_claims(token: str) -> dict[str, Any]:
    """The claims of an OIDC access token (RFC 9068) that passes every check, or InvalidToken."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise InvalidToken("the bearer token is neither a Loupe API token nor a JWT") from None
    if header.get("alg") != "RS256":
        raise InvalidToken(f"the access token is signed with {header.get('alg')!r}, not RS256")
    if str(header.get("typ", "")).lower() not in ACCESS_TOKEN_TYPES:
        raise InvalidToken("the JWT is not an access token (typ at+jwt, RFC 9068)")
    audience = settings.LOUPE_OIDC_ACCESS_TOKEN_AUDIENCE or None
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            _signing_key(header.get("kid")),
            algorithms=["RS256"],
            issuer=settings.LOUPE_OIDC_ISSUER,
            audience=audience,
            leeway=CLOCK_SKEW_SECONDS,
            options={"require": ["iss", "exp", "sub"], "verify_aud": audience is not None},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("the access token has expired") from None
    except jwt.ImmatureSignatureError:
        raise InvalidToken("the access token is not valid yet (nbf)") from None
    except jwt.InvalidIssuerError:
        raise InvalidToken("the access token comes from another issuer (iss)") from None
    except jwt.InvalidAudienceError:
        raise InvalidToken("the access token is meant for another audience (aud)") from None
    except jwt.InvalidSignatureError:
        raise InvalidToken("the access token's signature does not match") from None
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"the access token is not valid ({exc})") from None
    subject = claims.get("sub")
    if not isinstance(subject, str) or not 0 < len(subject) <= 255:
        raise InvalidToken("the access token names no subject (sub)")
    return claims


def oidc_user(token: str) -> tuple[User, str]:
    """The user single sign-on maps the access token's iss + sub to, and its ``iss|sub``."""
    from ehrlaunch import accounts
    from ehrlaunch.auth import LoupeOIDCBackend, claim_values, sso_profile

    key = token_hash(token)
    cached = _checked.get(key)
    if cached is not None and cached[2] > time.time():
        user = User.objects.filter(pk=cached[0], is_active=True).first()
        if user is not None:
            return user, cached[1]
    claims = access_token_claims(token)
    user = User.objects.filter(
        sso_identity__issuer=claims["iss"], sso_identity__subject=claims["sub"]
    ).first()
    has_roles = bool(claim_values(claims, settings.LOUPE_OIDC_ROLES_CLAIM))
    if user is None:
        backend = LoupeOIDCBackend()
        user = backend.create_user(claims)
    elif has_roles:
        accounts.set_roles(user, sso_profile(claims).roles)
        from viewer.roles import forget_roles

        forget_roles(user.pk)
    if not user.is_active:
        raise InvalidToken("the access token's account is disabled in Loupe")
    subject = f"{claims['iss']}|{claims['sub']}"
    _checked.set(key, (user.pk, subject, float(claims["exp"])))
    return user, subject


# -- the request -----------------------------------------------------------------------


class BearerSession(SessionBase):
    """The session of a bearer request: in memory only, never saved, no cookie."""

    def __init__(self, values: dict[str, Any]) -> None:
        super().__init__(None)
        self._session_cache = dict(values)

    def exists(self, session_key: str) -> bool:
        return False

    def create(self) -> None:
        return None

    def save(self, must_create: bool = False) -> None:
        return None

    def delete(self, session_key: str | None = None) -> None:
        return None

    def load(self) -> dict[str, Any]:
        return {}

    def cycle_key(self) -> None:
        return None


def bearer_token(request: HttpRequest) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (RFC 6750 §2.1), else None."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


def invalid_token(message: str) -> JsonResponse:
    response = JsonResponse({"code": "invalid_token", "message": message}, status=401)
    response["WWW-Authenticate"] = 'Bearer realm="loupe", error="invalid_token"'
    response["Cache-Control"] = "no-store"
    return response


def authenticate(request: HttpRequest, token: str) -> None:
    """Make ``request`` act as the token's user, with a bearer session; or InvalidToken."""
    values: dict[str, Any] = {requester.SESSION_CHANNEL: AuditEvent.Channel.API}
    if not token:
        raise InvalidToken("the Authorization header carries no token")
    if token.startswith(TOKEN_PREFIX):
        user, row = api_token_user(token)
        values[requester.SESSION_ALTERNATIVE_USER] = f"api-token:{row.pk}"
    elif settings.LOUPE_OIDC_ENABLED:
        user, subject = oidc_user(token)
        values[requester.SESSION_SUBJECT] = subject
    else:
        raise InvalidToken("the bearer token is not a Loupe API token")
    request.session = BearerSession(values)
    request.user = user
    request.loupe_bearer = True  # type: ignore[attr-defined]
    # CSRF protects cookies; a bearer request carries none that count.
    request._dont_enforce_csrf_checks = True  # type: ignore[attr-defined]


class BearerTokenMiddleware:
    """``Authorization: Bearer`` for DICOMweb and FHIR (listed after the authentication
    middleware, which it overrides for these requests)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.loupe_bearer = False  # type: ignore[attr-defined]
        token = bearer_token(request) if request.path.startswith(BEARER_PATHS) else None
        if token is None:
            return self.get_response(request)
        if (limited := ratelimit.limited(request, ratelimit.TOKEN)) is not None:
            return limited
        try:
            authenticate(request, token)
        except InvalidToken as refused:
            ratelimit.count(request, ratelimit.TOKEN)
            request.session = BearerSession({requester.SESSION_CHANNEL: AuditEvent.Channel.API})
            from django.contrib.auth.models import AnonymousUser

            request.user = AnonymousUser()
            audit.record_refused(request, "bearer", "")
            request.session.modified = False
            return invalid_token(str(refused))
        response = self.get_response(request)
        request.session.modified = False  # never saved, never a cookie
        return response
