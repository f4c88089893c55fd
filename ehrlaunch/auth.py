"""Single sign-on: an OpenID Connect identity becomes a Loupe user with the roles its claims give.

mozilla-django-oidc runs the authorization code flow (PKCE S256 and a nonce, config/sso.py);
this backend adds what Loupe needs on top of it:

* the ID token is checked strictly: RS256 only, signature against the provider's JWKS,
  ``iss`` = ``LOUPE_OIDC_ISSUER``, ``aud`` contains our client ID (and ``azp`` is ours when
  there are several audiences), ``exp``/``iat`` present and current, the nonce of this
  browser's sign-in (mozilla-django-oidc does not check ``iss`` or ``aud`` by itself);
* the userinfo answer must be about the same ``sub`` (OpenID Connect Core 1.0 §5.3.2);
* a user is found by its :class:`~ehrlaunch.models.SsoIdentity` (issuer + subject), never by
  e-mail; a new one is created (``ehrlaunch.accounts``) with an unusable password, username
  ``oidc:<sub>`` (or ``oidc:<hash>`` when that is taken or too long);
* on every login its role groups are set from the roles claim through
  ``LOUPE_OIDC_ROLE_MAP``; groups of roles it no longer has are removed. A user whose claims
  map to no role is still logged in and sees nothing (the worklist says why). Claims never
  make a superuser or staff member.

The backend answers only on the callback URL with the state's nonce and verifier; for any
other ``authenticate()`` call (a password login) it returns None.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

import jwt
import requests
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest
from django.urls import reverse
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from ehrlaunch import accounts
from ehrlaunch.errors import LaunchRefused
from viewer.roles import ROLES

logger = logging.getLogger(__name__)

CLOCK_SKEW_SECONDS = 30
TRY_AGAIN = "Start the sign-in again from Loupe's login page."


def claim_values(claims: Mapping[str, Any], path: str) -> list[str]:
    """The string values at a dotted claim path (``roles``, ``realm_access.roles``)."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return []
        value = value.get(part)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, str)]


def roles_from_claims(claims: Mapping[str, Any]) -> set[str]:
    """The Loupe roles ``LOUPE_OIDC_ROLE_MAP`` gives this user's roles claim."""
    mapping: dict[str, str] = settings.LOUPE_OIDC_ROLE_MAP
    return {
        mapping[value]
        for value in claim_values(claims, settings.LOUPE_OIDC_ROLES_CLAIM)
        if mapping.get(value) in ROLES
    }


class LoupeOIDCBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's backend with strict token checks and Loupe's user and roles."""

    request: HttpRequest

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> User | None:
        if request is None or not settings.LOUPE_OIDC_ENABLED or "nonce" not in kwargs:
            return None
        if request.path != reverse("oidc_authentication_callback"):
            return None
        try:
            user: User | None = super().authenticate(request, **kwargs)
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else 0
            refused_by_provider = 400 <= status < 500
            raise LaunchRefused(
                f"the identity provider refused the sign-in code (HTTP {status})"
                if refused_by_provider
                else f"the identity provider failed to answer (HTTP {status})",
                code="sso_token_refused" if refused_by_provider else "sso_provider_error",
                status=403 if refused_by_provider else 502,
                advice=TRY_AGAIN,
            ) from None
        except requests.RequestException:
            raise LaunchRefused(
                "the identity provider cannot be reached",
                code="sso_provider_unreachable",
                status=502,
                advice="Try again in a moment; if it persists, tell your administrator.",
            ) from None
        except SuspiciousOperation as exc:
            raise LaunchRefused(
                f"the identity provider's answer failed a check: {exc}",
                code="sso_invalid_token",
                status=403,
                advice=TRY_AGAIN,
            ) from None
        return user

    # -- the ID token -------------------------------------------------------------------
    def get_payload_data(self, token: str | bytes, key: Any) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise SuspiciousOperation("the ID token is not a signed JWT") from None
        if header.get("alg") != "RS256":
            raise SuspiciousOperation(
                f"the ID token is signed with {header.get('alg')!r}, not RS256"
            )
        client_id = settings.OIDC_RP_CLIENT_ID
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=client_id,
                issuer=settings.LOUPE_OIDC_ISSUER,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["iss", "aud", "exp", "iat", "sub"]},
            )
        except jwt.InvalidAudienceError:
            raise SuspiciousOperation("the ID token is addressed to another client (aud)") from None
        except jwt.InvalidIssuerError:
            raise SuspiciousOperation("the ID token comes from another issuer (iss)") from None
        except jwt.ExpiredSignatureError:
            raise SuspiciousOperation("the ID token has expired") from None
        except jwt.InvalidSignatureError:
            raise SuspiciousOperation("the ID token's signature does not match") from None
        except jwt.PyJWTError as exc:
            raise SuspiciousOperation(f"the ID token is not valid ({exc})") from None
        audiences = payload["aud"] if isinstance(payload["aud"], list) else [payload["aud"]]
        if len(audiences) > 1 and payload.get("azp") != client_id:
            raise SuspiciousOperation("the ID token was issued to another client (azp)")
        return payload

    def retrieve_matching_jwk(self, token: str | bytes) -> Any:
        """The provider's key for this token: by ``kid``, or its only RS256 signing key."""
        response = requests.get(
            self.OIDC_OP_JWKS_ENDPOINT,
            verify=settings.OIDC_VERIFY_SSL,
            timeout=settings.OIDC_TIMEOUT,
            allow_redirects=False,
        )
        response.raise_for_status()
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            keys = response.json().get("keys", [])
            candidates = [
                jwk
                for jwk in keys
                if isinstance(jwk, dict)
                and jwk.get("kty") == "RSA"
                and jwk.get("use", "sig") == "sig"
                and jwk.get("alg", "RS256") == "RS256"
                and (kid is None or jwk.get("kid") == kid)
            ]
            if len(candidates) != 1:
                raise SuspiciousOperation("the provider's key set has no single key for this token")
            return jwt.PyJWK(candidates[0])
        except (ValueError, AttributeError, jwt.PyJWTError):
            raise SuspiciousOperation("the provider's key set cannot be read") from None

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        if not token:
            raise SuspiciousOperation("the identity provider returned no ID token")
        payload: dict[str, Any] = super().verify_token(token, **kwargs)
        return payload

    def get_userinfo(
        self, access_token: str, id_token: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        userinfo: dict[str, Any] = super().get_userinfo(access_token, id_token, payload)
        if userinfo.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("the provider's userinfo is about another user (sub)")
        protocol = {"aud", "azp", "exp", "iat", "nbf", "nonce", "at_hash", "c_hash", "auth_time"}
        claims = {k: v for k, v in payload.items() if k not in protocol}
        claims.update(userinfo)
        claims["iss"] = payload["iss"]
        return claims

    # -- the user ---------------------------------------------------------------------------
    def verify_claims(self, claims: dict[str, Any]) -> bool:
        subject = claims.get("sub")
        return isinstance(subject, str) and 0 < len(subject) <= 255

    def filter_users_by_claims(self, claims: dict[str, Any]) -> Any:
        return User.objects.filter(
            sso_identity__issuer=claims["iss"], sso_identity__subject=claims["sub"]
        )

    def _username(self, claims: Mapping[str, Any]) -> str:
        readable = f"oidc:{claims['sub']}"
        if len(readable) <= 150 and readable.isprintable():
            if not User.objects.filter(username=readable).exists():
                return readable
        digest = hashlib.sha256(f"{claims['iss']}\n{claims['sub']}".encode()).hexdigest()
        return f"oidc:{digest[:40]}"

    def create_user(self, claims: dict[str, Any]) -> User:
        return accounts.create_sso_user(
            self._username(claims), claims["iss"], claims["sub"], sso_profile(claims)
        )

    def update_user(self, user: User, claims: dict[str, Any]) -> User:
        return accounts.update_sso_user(user, sso_profile(claims))


def sso_profile(claims: Mapping[str, Any]) -> accounts.Profile:
    """The name, e-mail and roles an ID token's (or userinfo's) claims give."""
    given, family = claims.get("given_name"), claims.get("family_name")
    name = claims.get("name")
    if isinstance(given, str) or isinstance(family, str):
        first, last = str(given or "")[:150], str(family or "")[:150]
    elif isinstance(name, str):
        first, last = name[:150], ""
    else:
        first, last = "", ""
    email = claims.get("email")
    return accounts.Profile(
        first_name=first,
        last_name=last,
        email=email[:254] if isinstance(email, str) else "",
        roles=frozenset(roles_from_claims(claims)),
    )
