"""The launch parsers on hostile input: HL7 CX, IHE IID query parameters and the signed
EHR context (a JWT). The only failure allowed is LaunchRefused (a ViewerError)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ehrlaunch.context import verify_signed_launch
from ehrlaunch.errors import LaunchRefused
from ehrlaunch.iid import IID_PARAMETERS, parse_cx, parse_iid
from ehrlaunch.models import EhrSystem
from tests.factories import launch_claims
from tests.fuzz.conftest import Figures, budget
from viewer.errors import ViewerError

SECRET = "fuzz-secret-" + "s" * 40
ISSUER = "https://ehr.example.org"

Draw = Callable[[st.SearchStrategy[Any]], Any]


def refused_or_parsed(fuzz: Figures, call: Callable[[], object]) -> None:
    with fuzz.one_input():
        try:
            call()
        except LaunchRefused as refusal:
            assert refusal.message and refusal.advice
            fuzz.tried(refusal.code)
            return
        except ViewerError as error:
            fuzz.tried(error.code)
            return
    fuzz.tried("accepted")


CX_PARTS = st.sampled_from(["^", "&", "\\S\\", "\\T\\", "\\", "~", " ", "ISO", "1.2.3", ""])
CX = st.one_of(
    st.text(max_size=600),
    st.lists(st.text(max_size=70) | CX_PARTS, max_size=12).map("".join),
    st.tuples(st.text(max_size=70), st.text(max_size=30), st.text(max_size=30)).map(
        lambda t: f"{t[0]}^^^{t[1]}&{t[2]}&ISO"
    ),
)


@budget(3000)
@given(value=CX)
def test_hl7_cx_parser_refuses_or_parses_any_text(fuzz: Figures, value: str) -> None:
    refused_or_parsed(fuzz, lambda: parse_cx(value))


IID_VALUES = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            "STUDY",
            "PATIENT",
            "1.2.3",
            "1.2.3,1.2.4",
            "123^^^&1.2.3&ISO",
            "19600704",
            "true",
            "2025-01-01T00:00:00Z",
            "2026-13-45T99:99:99",
            "9999999999",
            "0",
            "-1",
            "CT,MR",
            "",
            ",",
            "1.2.3,",
            "A" * 17,
            "IHE_BIR",
            "0001-01-01T00:00:00-23:59",
        ]
    ),
)
IID_PARAMS = st.dictionaries(
    st.sampled_from(sorted(IID_PARAMETERS)) | st.sampled_from(["requesttype", "x", ""]),
    IID_VALUES,
    max_size=8,
)


@budget(3000)
@given(params=IID_PARAMS)
def test_iid_parser_refuses_or_parses_any_parameters(fuzz: Figures, params: dict[str, str]) -> None:
    if "requestType" not in params and params:
        params["requestType"] = "PATIENT" if "patientID" in params else "STUDY"
    refused_or_parsed(fuzz, lambda: parse_iid(params))


@pytest.fixture
def ehrs() -> list[EhrSystem]:
    key = {
        "kty": "RSA",
        "kid": "k1",
        "n": base64.urlsafe_b64encode(b"\x01" * 256).rstrip(b"=").decode(),
        "e": "AQAB",
    }
    return [
        EhrSystem.objects.create(
            name="Chart",
            issuer=ISSUER,
            algorithm="HS256",
            shared_secret=SECRET,
            role_mapping={"MD": "clinician", "RAD": "radiologist"},
            default_patient_issuer="HOSP",
        ),
        EhrSystem.objects.create(
            name="Keys",
            issuer="https://keys.example.org",
            algorithm="RS256",
            jwks={"keys": [key]},
            role_mapping={"MD": "clinician"},
        ),
    ]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_hs256(claims: Any, header: dict[str, Any]) -> str:
    """A JWS compact serialisation (RFC 7515 §7.1) signed with the EHR's secret, made by
    hand: PyJWT's encoder refuses some of the claims a hostile EHR could send."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 10**20, -(10**20), 2**63, 2**64, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from([ISSUER, "loupe", "MD", "RAD", "C3N-00247", "1.2.3", "\x00", "x" * 300]),
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
CLAIM_NAMES = ["iss", "aud", "iat", "exp", "nbf", "jti", "sub", "name", "role", "patient"]
CLAIM_NAMES += ["study", "accession"]


def valid_claims() -> dict[str, Any]:
    return launch_claims("1.2.3", iss=ISSUER)


@st.composite
def fuzzed_claims(draw: Draw) -> dict[str, Any]:
    """The claims of a good launch with one to four changed (wrong types, huge or
    non-finite numbers, nested objects) or removed, and some unknown ones added."""
    claims = valid_claims()
    for _ in range(draw(st.integers(1, 4))):
        name = draw(st.sampled_from([*CLAIM_NAMES, "extra"]))
        if draw(st.integers(0, 5)) == 0:
            claims.pop(name, None)
        else:
            claims[name] = draw(JSON_VALUES)
    if draw(st.booleans()):
        claims["patient"] = draw(st.fixed_dictionaries({"id": JSON_VALUES, "issuer": JSON_VALUES}))
    return claims


@st.composite
def jwt_shaped(draw: Draw) -> str:
    """header.payload.signature with base64url JSON, not signed by the EHR's key."""
    header = draw(
        st.fixed_dictionaries(
            {
                "alg": st.sampled_from(["HS256", "RS256", "none", "HS512", "ES256", ""])
                | JSON_VALUES
            },
            optional={"kid": JSON_VALUES, "typ": JSON_VALUES, "crit": JSON_VALUES},
        )
    )
    payload: Any = draw(fuzzed_claims() | JSON_VALUES)
    if isinstance(payload, dict) and draw(st.booleans()):
        payload["iss"] = draw(st.sampled_from([ISSUER, "https://keys.example.org"]))
    parts = [
        b64(json.dumps(header).encode()),
        b64(json.dumps(payload).encode()),
        draw(st.sampled_from(["", "AAAA", b64(b"\x00" * 32), "!!", "a.b"])),
    ]
    if draw(st.integers(0, 4)) == 0:
        parts[draw(st.integers(0, 2))] = draw(st.text(max_size=30))
    return ".".join(parts)


@pytest.mark.django_db
@budget(1000)
@given(token=st.text(max_size=300) | st.binary(max_size=200).map(b64))
def test_signed_launch_refuses_arbitrary_strings(
    ehrs: list[EhrSystem], fuzz: Figures, token: str
) -> None:
    refused_or_parsed(fuzz, lambda: verify_signed_launch(token))


@pytest.mark.django_db
@budget(1500)
@given(token=jwt_shaped())
def test_signed_launch_refuses_jwt_shaped_strings(
    ehrs: list[EhrSystem], fuzz: Figures, token: str
) -> None:
    refused_or_parsed(fuzz, lambda: verify_signed_launch(token))


@pytest.mark.django_db
@budget(1500)
@given(
    claims=fuzzed_claims(), headers=st.none() | st.fixed_dictionaries({"kid": st.text(max_size=20)})
)
def test_signed_launch_refuses_properly_signed_tokens_with_fuzzed_claims(
    ehrs: list[EhrSystem], fuzz: Figures, claims: dict[str, Any], headers: dict[str, Any] | None
) -> None:
    token = sign_hs256(claims, {"alg": "HS256", "typ": "JWT", **(headers or {})})
    refused_or_parsed(fuzz, lambda: verify_signed_launch(token))
