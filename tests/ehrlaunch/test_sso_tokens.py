"""ehrlaunch.auth: the ID token checks mozilla-django-oidc leaves out (iss, aud, azp, alg),
the nonce, and roles from claims. Tokens are signed here with real RSA keys."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth.models import Group, User
from django.core.exceptions import SuspiciousOperation

from ehrlaunch.accounts import set_roles
from ehrlaunch.auth import LoupeOIDCBackend, claim_values, roles_from_claims

ISSUER = "https://idp.hospital.test"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def backend(settings: Any) -> LoupeOIDCBackend:
    settings.LOUPE_OIDC_ENABLED = True
    settings.LOUPE_OIDC_ISSUER = ISSUER
    settings.OIDC_RP_CLIENT_ID = "loupe"
    settings.OIDC_RP_IDP_SIGN_KEY = KEY.public_key()
    settings.LOUPE_OIDC_ROLES_CLAIM = "realm_access.roles"
    settings.LOUPE_OIDC_ROLE_MAP = {"imaging-md": "radiologist", "ward-md": "clinician"}
    return LoupeOIDCBackend()


def id_token(key: Any = KEY, algorithm: str = "RS256", **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": "loupe", "sub": "u-1", "iat": now, "exp": now + 300}
    payload.update(claims)
    return jwt.encode(payload, key, algorithm=algorithm)


def test_a_good_id_token_passes(backend: LoupeOIDCBackend) -> None:
    payload = backend.verify_token(id_token(nonce="n-1"), nonce="n-1")
    assert payload["sub"] == "u-1"


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"aud": "another-app"}, "another client"),
        ({"iss": "https://evil.test"}, "another issuer"),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 4000}, "expired"),
        ({"aud": ["loupe", "another-app"]}, "azp"),
        ({"aud": ["loupe", "another-app"], "azp": "another-app"}, "azp"),
    ],
)
def test_id_tokens_for_others_are_refused(
    backend: LoupeOIDCBackend, claims: dict[str, Any], message: str
) -> None:
    with pytest.raises(SuspiciousOperation, match=message):
        backend.verify_token(id_token(nonce="n", **claims), nonce="n")


def test_forged_signatures_and_algorithms_are_refused(backend: LoupeOIDCBackend) -> None:
    with pytest.raises(SuspiciousOperation, match="signature does not match"):
        backend.verify_token(id_token(OTHER_KEY, nonce="n"), nonce="n")
    # Algorithm switching: an HMAC-signed token is refused before any key is tried.
    with pytest.raises(SuspiciousOperation, match="not RS256"):
        backend.verify_token(id_token("x" * 32, "HS256", nonce="n"), nonce="n")
    with pytest.raises(SuspiciousOperation, match="no ID token"):
        backend.verify_token("", nonce="n")


def test_the_nonce_must_be_this_sign_ins(backend: LoupeOIDCBackend) -> None:
    with pytest.raises(SuspiciousOperation, match="Nonce"):
        backend.verify_token(id_token(nonce="replayed"), nonce="fresh")
    with pytest.raises(SuspiciousOperation, match="Nonce"):
        backend.verify_token(id_token(), nonce="fresh")


def test_roles_come_from_a_dotted_claim_through_the_map(backend: LoupeOIDCBackend) -> None:
    claims = {"realm_access": {"roles": ["ward-md", "offline_access"]}, "roles": ["imaging-md"]}
    assert claim_values(claims, "realm_access.roles") == ["ward-md", "offline_access"]
    assert claim_values({"realm_access": "x"}, "realm_access.roles") == []
    assert claim_values({"role": "a b"}, "role") == ["a b"]
    assert roles_from_claims(claims) == {"clinician"}
    assert roles_from_claims({"realm_access": {"roles": ["janitor"]}}) == set()


@pytest.mark.django_db
def test_set_roles_replaces_role_groups_and_keeps_others() -> None:
    user = User.objects.create_user("oidc:u-9")
    teaching = Group.objects.create(name="teaching-file")
    user.groups.add(teaching, Group.objects.create(name="administrator"))
    set_roles(user, {"radiologist"})
    assert set(user.groups.values_list("name", flat=True)) == {"teaching-file", "radiologist"}
    set_roles(user, set())
    assert set(user.groups.values_list("name", flat=True)) == {"teaching-file"}
