"""config/sso.py: SSO settings from the environment, strictly."""

from __future__ import annotations

import pytest

from config.environment import ImproperlyConfiguredEnv
from config.sso import parse_role_map, sso_settings

FULL = {
    "LOUPE_OIDC_ISSUER": "https://idp.hospital.test/realms/main/",
    "LOUPE_OIDC_CLIENT_ID": "loupe",
    "LOUPE_OIDC_CLIENT_SECRET": "secret",
    "LOUPE_OIDC_AUTHORIZATION_ENDPOINT": "https://idp.hospital.test/auth",
    "LOUPE_OIDC_TOKEN_ENDPOINT": "https://idp.hospital.test/token",
    "LOUPE_OIDC_USERINFO_ENDPOINT": "https://idp.hospital.test/userinfo",
    "LOUPE_OIDC_JWKS_URI": "https://idp.hospital.test/certs",
}


def test_sso_is_off_by_default_and_the_flow_is_fixed() -> None:
    values = sso_settings({})
    assert values["LOUPE_OIDC_ENABLED"] is False
    assert values["OIDC_OP_AUTHORIZATION_ENDPOINT"] == ""
    assert values["OIDC_USE_PKCE"] is True
    assert values["OIDC_PKCE_CODE_CHALLENGE_METHOD"] == "S256"
    assert values["OIDC_USE_NONCE"] is True
    assert values["OIDC_RP_SIGN_ALGO"] == "RS256"
    assert values["OIDC_STORE_ACCESS_TOKEN"] is False and values["OIDC_STORE_ID_TOKEN"] is False


def test_a_complete_configuration() -> None:
    values = sso_settings({**FULL, "LOUPE_OIDC_ROLE_MAP": "imaging=radiologist, ward=CLINICIAN"})
    assert values["LOUPE_OIDC_ENABLED"] is True
    assert values["LOUPE_OIDC_ISSUER"] == "https://idp.hospital.test/realms/main"
    assert values["OIDC_OP_JWKS_ENDPOINT"] == "https://idp.hospital.test/certs"
    assert values["OIDC_RP_CLIENT_ID"] == "loupe"
    assert values["LOUPE_OIDC_ROLE_MAP"] == {"imaging": "radiologist", "ward": "clinician"}
    assert values["OIDC_TOKEN_USE_BASIC_AUTH"] is True
    assert (
        sso_settings({**FULL, "LOUPE_OIDC_TOKEN_AUTH": "post"})["OIDC_TOKEN_USE_BASIC_AUTH"]
        is False
    )


def test_an_issuer_without_its_client_and_endpoints_stops_start_up() -> None:
    with pytest.raises(ImproperlyConfiguredEnv) as caught:
        sso_settings({"LOUPE_OIDC_ISSUER": "https://idp.hospital.test"})
    message = str(caught.value)
    for name in ("LOUPE_OIDC_CLIENT_ID", "LOUPE_OIDC_CLIENT_SECRET", "LOUPE_OIDC_JWKS_URI"):
        assert name in message
    assert "oidc_discover" in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LOUPE_OIDC_TOKEN_ENDPOINT", "http://idp.hospital.test/token"),
        ("LOUPE_OIDC_ISSUER", "ftp://idp.hospital.test"),
        ("LOUPE_OIDC_END_SESSION_ENDPOINT", "http://10.0.0.5/logout"),
    ],
)
def test_plain_http_is_refused_except_to_loopback(name: str, value: str) -> None:
    with pytest.raises(ImproperlyConfiguredEnv, match=name):
        sso_settings({**FULL, name: value})
    loopback = sso_settings({**FULL, "LOUPE_OIDC_TOKEN_ENDPOINT": "http://127.0.0.1:8080/token"})
    assert loopback["OIDC_OP_TOKEN_ENDPOINT"] == "http://127.0.0.1:8080/token"


def test_role_maps_name_loupe_roles_only() -> None:
    assert parse_role_map("X", "a=radiologist,,b = administrator") == {
        "a": "radiologist",
        "b": "administrator",
    }
    with pytest.raises(ImproperlyConfiguredEnv, match="'md' maps to 'doctor'"):
        parse_role_map("LOUPE_OIDC_ROLE_MAP", "md=doctor")
    with pytest.raises(ImproperlyConfiguredEnv, match="is not 'claim value=role'"):
        parse_role_map("LOUPE_OIDC_ROLE_MAP", "radiologist")


def test_bad_scopes_claims_and_numbers_stop_start_up() -> None:
    with pytest.raises(ImproperlyConfiguredEnv, match="must include openid"):
        sso_settings({"LOUPE_OIDC_SCOPES": "profile email"})
    with pytest.raises(ImproperlyConfiguredEnv, match="LOUPE_OIDC_ROLES_CLAIM"):
        sso_settings({"LOUPE_OIDC_ROLES_CLAIM": " "})
    with pytest.raises(ImproperlyConfiguredEnv, match="LOUPE_OIDC_TIMEOUT"):
        sso_settings({"LOUPE_OIDC_TIMEOUT": "soon"})
    with pytest.raises(ImproperlyConfiguredEnv, match="LOUPE_OIDC_TOKEN_AUTH"):
        sso_settings({"LOUPE_OIDC_TOKEN_AUTH": "jwt"})
