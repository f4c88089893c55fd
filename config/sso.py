"""Single sign-on (OpenID Connect) settings, read strictly from the environment.

``sso_settings(environ)`` returns the Django settings mozilla-django-oidc and
``ehrlaunch.auth`` read. SSO is off while ``LOUPE_OIDC_ISSUER`` is unset; once it is set,
the client and every endpoint must be too (no discovery at import time: run
``manage.py oidc_discover <issuer>`` once and paste the lines it prints). The flow is fixed,
not configurable: authorization code with PKCE (S256) and a nonce, ID tokens signed with
RS256 and checked against the provider's JWKS, ``iss`` and ``aud`` (docs/security.md §6).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from config.environment import ImproperlyConfiguredEnv, env_choice, env_int, env_str

LOUPE_ROLES = ("radiologist", "clinician", "administrator")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
DEFAULT_ROLE_MAP = "radiologist=radiologist,clinician=clinician,administrator=administrator"
ENDPOINTS = {
    "LOUPE_OIDC_AUTHORIZATION_ENDPOINT": "OIDC_OP_AUTHORIZATION_ENDPOINT",
    "LOUPE_OIDC_TOKEN_ENDPOINT": "OIDC_OP_TOKEN_ENDPOINT",
    "LOUPE_OIDC_USERINFO_ENDPOINT": "OIDC_OP_USER_ENDPOINT",
    "LOUPE_OIDC_JWKS_URI": "OIDC_OP_JWKS_ENDPOINT",
}


def check_url(name: str, value: str) -> str:
    """An https URL, or http only to this machine (a test or a local provider)."""
    parts = urlsplit(value)
    if parts.scheme == "https" and parts.hostname:
        return value
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return value
    raise ImproperlyConfiguredEnv(
        f"{name}={value!r} must be an https:// URL (http:// only to 127.0.0.1 or localhost)"
    )


def parse_role_map(name: str, raw: str) -> dict[str, str]:
    """``claim value=role`` pairs, comma-separated; every role must be one of Loupe's."""
    mapping: dict[str, str] = {}
    for item in raw.split(","):
        if not item.strip():
            continue
        claim_value, sep, role = item.rpartition("=")
        claim_value, role = claim_value.strip(), role.strip().lower()
        if not sep or not claim_value:
            raise ImproperlyConfiguredEnv(
                f"{name}: {item.strip()!r} is not 'claim value=role' (e.g. imaging-md=radiologist)"
            )
        if role not in LOUPE_ROLES:
            raise ImproperlyConfiguredEnv(
                f"{name}: {claim_value!r} maps to {role!r}; use one of {', '.join(LOUPE_ROLES)}"
            )
        mapping[claim_value] = role
    return mapping


def sso_settings(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The OIDC_* (mozilla-django-oidc) and LOUPE_OIDC_* settings for this environment."""
    issuer = env_str("LOUPE_OIDC_ISSUER", "", environ).strip().rstrip("/")
    values: dict[str, Any] = {
        "LOUPE_OIDC_ENABLED": bool(issuer),
        "LOUPE_OIDC_ISSUER": issuer,
        "LOUPE_OIDC_ROLES_CLAIM": env_str("LOUPE_OIDC_ROLES_CLAIM", "roles", environ).strip(),
        "LOUPE_OIDC_ROLE_MAP": parse_role_map(
            "LOUPE_OIDC_ROLE_MAP", env_str("LOUPE_OIDC_ROLE_MAP", DEFAULT_ROLE_MAP, environ)
        ),
        "LOUPE_OIDC_END_SESSION_ENDPOINT": "",
        # mozilla-django-oidc: the flow is fixed, only the provider is configurable.
        "OIDC_RP_SIGN_ALGO": "RS256",
        "OIDC_USE_PKCE": True,
        "OIDC_PKCE_CODE_CHALLENGE_METHOD": "S256",
        "OIDC_PKCE_CODE_VERIFIER_SIZE": 64,
        "OIDC_USE_NONCE": True,
        "OIDC_STATE_SIZE": 32,  # 32 of 62 characters: 190 bits
        "OIDC_NONCE_SIZE": 32,
        "OIDC_STORE_ACCESS_TOKEN": False,
        "OIDC_STORE_ID_TOKEN": False,
        "OIDC_CREATE_USER": True,
        "OIDC_VERIFY_SSL": True,
        "OIDC_TIMEOUT": env_int("LOUPE_OIDC_TIMEOUT", 10, minimum=1, maximum=120, environ=environ),
        "OIDC_RP_SCOPES": env_str("LOUPE_OIDC_SCOPES", "openid profile email", environ).strip(),
        "OIDC_TOKEN_USE_BASIC_AUTH": env_choice(
            "LOUPE_OIDC_TOKEN_AUTH", "basic", ("basic", "post"), environ
        )
        == "basic",
        "OIDC_RP_CLIENT_ID": "",
        "OIDC_RP_CLIENT_SECRET": "",
        **{setting: "" for setting in ENDPOINTS.values()},
    }
    if not values["LOUPE_OIDC_ROLES_CLAIM"]:
        raise ImproperlyConfiguredEnv("LOUPE_OIDC_ROLES_CLAIM is empty (default: roles)")
    if "openid" not in values["OIDC_RP_SCOPES"].split():
        raise ImproperlyConfiguredEnv("LOUPE_OIDC_SCOPES must include openid")
    if not issuer:
        return values
    values["LOUPE_OIDC_ISSUER"] = check_url("LOUPE_OIDC_ISSUER", issuer)
    missing = [
        name
        for name in ("LOUPE_OIDC_CLIENT_ID", "LOUPE_OIDC_CLIENT_SECRET", *ENDPOINTS)
        if not env_str(name, "", environ).strip()
    ]
    if missing:
        raise ImproperlyConfiguredEnv(
            f"LOUPE_OIDC_ISSUER is set but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
            "not (manage.py oidc_discover <issuer> prints them)"
        )
    values["OIDC_RP_CLIENT_ID"] = env_str("LOUPE_OIDC_CLIENT_ID", "", environ).strip()
    values["OIDC_RP_CLIENT_SECRET"] = env_str("LOUPE_OIDC_CLIENT_SECRET", "", environ).strip()
    for name, setting in ENDPOINTS.items():
        values[setting] = check_url(name, env_str(name, "", environ).strip())
    end_session = env_str("LOUPE_OIDC_END_SESSION_ENDPOINT", "", environ).strip()
    if end_session:
        values["LOUPE_OIDC_END_SESSION_ENDPOINT"] = check_url(
            "LOUPE_OIDC_END_SESSION_ENDPOINT", end_session
        )
    return values
