"""ehrlaunch.context: signed EHR launches verified (signature, issuer, audience, lifetime,
single use, claims) into a LaunchContext."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from ehrlaunch.context import verify_signed_launch
from ehrlaunch.errors import LaunchRefused
from ehrlaunch.models import EhrSystem
from tests.factories import launch_claims

SECRET = "s" * 40
ISSUER = "https://ehr.example.org"


# --- signed EHR context --------------------------------------------------------------------


@pytest.fixture
def hs_ehr(db: Any) -> EhrSystem:
    return EhrSystem.objects.create(
        name="Chart",
        issuer=ISSUER,
        audience="loupe",
        algorithm="HS256",
        shared_secret=SECRET,
        allowed_origins="https://ehr.example.org",
        role_mapping={"MD": "clinician", "RAD": "radiologist"},
    )


def claims(**overrides: Any) -> dict[str, Any]:
    base = {
        "iss": ISSUER,
        "sub": "u-17",
        "name": None,
        "patient": {"id": "C3N-00247", "issuer": ""},
    }
    return launch_claims("1.2.3", **{**base, **overrides})


def sign(payload: dict[str, Any], key: Any = SECRET, algorithm: str = "HS256", **kw: Any) -> str:
    return jwt.encode(payload, key, algorithm=algorithm, **kw)


def test_a_valid_launch_gives_its_context(hs_ehr: EhrSystem) -> None:
    context = verify_signed_launch(sign(claims()))
    assert context.ehr == hs_ehr
    assert context.user == "u-17"
    assert context.role == "clinician"
    assert context.patient.pairs() == (("C3N-00247", ""),)
    assert context.study_uids == ("1.2.3",)


def test_the_ehr_default_issuer_applies_when_the_launch_names_none(hs_ehr: EhrSystem) -> None:
    hs_ehr.default_patient_issuer = "HOSP"
    hs_ehr.save()
    context = verify_signed_launch(sign(claims(patient="P1")))
    assert context.patient.pairs() == (("P1", "HOSP"),)


def refusal(token: str) -> LaunchRefused:
    with pytest.raises(LaunchRefused) as raised:
        verify_signed_launch(token)
    return raised.value


def test_a_replayed_launch_is_refused(hs_ehr: EhrSystem) -> None:
    token = sign(claims())
    verify_signed_launch(token)
    error = refusal(token)
    assert error.code == "launch_replayed" and "already used" in error.message


def test_a_tampered_launch_is_refused(hs_ehr: EhrSystem) -> None:
    header, _, signature = sign(claims()).split(".")
    other = sign(claims(patient={"id": "SOMEONE-ELSE", "issuer": ""})).split(".")[1]
    error = refusal(f"{header}.{other}.{signature}")
    assert error.code == "launch_bad_signature" and error.status == 403


def test_a_launch_signed_with_another_secret_is_refused(hs_ehr: EhrSystem) -> None:
    assert refusal(sign(claims(), key="x" * 40)).code == "launch_bad_signature"


def test_an_expired_launch_is_refused(hs_ehr: EhrSystem) -> None:
    past = int(time.time()) - 600
    error = refusal(sign(claims(iat=past, exp=past + 120)))
    assert error.code == "launch_expired" and "expired" in error.message


def test_a_launch_valid_for_longer_than_five_minutes_is_refused(hs_ehr: EhrSystem) -> None:
    now = int(time.time())
    assert refusal(sign(claims(iat=now, exp=now + 301))).code == "launch_too_long"


def test_a_launch_for_another_audience_is_refused(hs_ehr: EhrSystem) -> None:
    error = refusal(sign(claims(aud="another-viewer")))
    assert error.code == "launch_wrong_audience" and "(aud)" in error.message


def test_a_launch_from_an_unregistered_ehr_is_refused(hs_ehr: EhrSystem) -> None:
    error = refusal(sign(claims(iss="https://rogue.example")))
    assert error.code == "launch_unknown_ehr" and error.status == 403
    assert "administrator" in error.advice


def test_an_inactive_ehr_cannot_launch(hs_ehr: EhrSystem) -> None:
    hs_ehr.active = False
    hs_ehr.save()
    assert refusal(sign(claims())).code == "launch_unknown_ehr"


@pytest.mark.parametrize("missing", ["jti", "exp", "iat", "sub", "aud"])
def test_a_launch_without_a_required_claim_is_refused(hs_ehr: EhrSystem, missing: str) -> None:
    error = refusal(sign(claims(**{missing: None})))
    assert error.code in ("launch_malformed", "launch_wrong_audience")
    assert missing in error.message


def test_an_unsigned_launch_is_refused(hs_ehr: EhrSystem) -> None:
    token = jwt.encode(claims(), "", algorithm="none")
    assert refusal(token).code == "launch_bad_signature"


def test_an_unmapped_ehr_role_is_refused(hs_ehr: EhrSystem) -> None:
    error = refusal(sign(claims(role="porter")))
    assert error.code == "launch_no_role" and error.status == 403


def test_a_launch_without_a_patient_is_refused(hs_ehr: EhrSystem) -> None:
    assert "names no patient" in refusal(sign(claims(patient=None))).message


def test_garbage_is_refused_as_unreadable(hs_ehr: EhrSystem) -> None:
    assert refusal("not-a-token").code == "launch_malformed"
    assert refusal("").code == "launch_missing"


def test_rs256_launches_verify_against_the_registered_key_set(db: Any) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_jwk = jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    public_jwk["kid"] = "k1"
    EhrSystem.objects.create(
        name="RS",
        issuer=ISSUER,
        algorithm="RS256",
        jwks={"keys": [public_jwk]},
        role_mapping={"MD": "clinician"},
    )
    token = sign(claims(), key=private, algorithm="RS256", headers={"kid": "k1"})
    assert verify_signed_launch(token).role == "clinician"
    # The HS256-with-the-public-key confusion attack: refused, the EHR signs with RS256.
    assert refusal(sign(claims(), key=SECRET)).code == "launch_bad_signature"
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = sign(claims(), key=other, algorithm="RS256", headers={"kid": "k1"})
    assert refusal(forged).code == "launch_bad_signature"


@pytest.mark.parametrize(
    "times",
    [
        {"iat": -62_135_596_801},  # the year 0: ValueError
        {"iat": -(2**63) - 1},  # beyond time_t: OverflowError
        {"iat": -67_768_040_609_740_801},  # EOVERFLOW from the C library: OSError
        {"exp": 10**12},  # the year 33658: ValueError
    ],
    ids=["year-0", "beyond-time_t", "eoverflow", "year-33658"],
)
def test_a_launch_whose_times_are_beyond_the_calendar_is_refused(
    hs_ehr: EhrSystem, times: dict[str, int]
) -> None:
    """PyJWT accepts any integer iat in the past and exp in the future; such times do not
    fit a datetime."""
    refused = refusal(sign(claims(**times)))
    assert refused.code == "launch_malformed"
    assert "between the years 1 and 9999" in refused.message


@pytest.mark.parametrize(
    "overrides",
    [
        {"jti": "n\x00once"},
        {"accession": ["A\x001"]},
        {"patient": {"id": "C3N\x00-00247", "issuer": ""}},
        {"patient": {"id": "C3N-00247", "issuer": "HO\x00SP"}},
    ],
    ids=["jti", "accession", "patient-id", "patient-issuer"],
)
def test_a_signed_launch_with_nul_in_a_value_it_looks_up_is_refused(
    hs_ehr: EhrSystem, overrides: dict[str, Any]
) -> None:
    """PostgreSQL text cannot hold NUL: such a value would end the request in a database
    error instead of a refusal."""
    assert refusal(sign(claims(**overrides))).code == "launch_malformed"
