"""Verify a signed EHR context into a frozen :class:`LaunchContext`.

A signed EHR context is a JWT the EHR signs (HS256 with its shared secret, or RS256 with
a key of its registered JWKS) carrying the user, the patient, the study or accession,
``aud``, ``exp`` at most 5 minutes after ``iat``, and a single-use ``jti``
(:func:`verify_signed_launch`). It grants: a clinician's session is bound to the launched
patient. (IHE Invoke Image Display, which grants nothing, is parsed in ``ehrlaunch.iid``.)

Every refusal is a :class:`~ehrlaunch.errors.LaunchRefused` whose message says what
happened and whose ``advice`` says what the clinician can do; no patient data is in either.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from django.db import IntegrityError, transaction
from django.utils import timezone

from ehrlaunch.errors import LaunchRefused
from ehrlaunch.iid import parse_cx
from ehrlaunch.models import EhrSystem, UsedLaunchNonce
from viewer.dicom.patients import PatientRef
from viewer.dicom.uids import is_valid_uid
from viewer.roles import ROLES

MAX_LIFETIME = dt.timedelta(minutes=5)
CLOCK_SKEW = dt.timedelta(seconds=30)


@dataclass(frozen=True)
class LaunchContext:
    """What a verified signed launch says: who, for which patient, to see what."""

    ehr: EhrSystem
    user: str  # the EHR's user identifier (``sub``)
    user_name: str
    role: str
    patient: PatientRef
    study_uids: tuple[str, ...] = ()
    accession_numbers: tuple[str, ...] = ()
    options: dict[str, str] = field(default_factory=dict)


def _ehr_for(token: str) -> EhrSystem:
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise LaunchRefused(
            "the launch is not a readable signed token", code="launch_malformed"
        ) from None
    issuer = unverified.get("iss")
    if not isinstance(issuer, str) or not issuer or "\x00" in issuer:
        raise LaunchRefused("the launch names no issuer (iss)", code="launch_malformed")
    ehr = EhrSystem.objects.filter(issuer=issuer, active=True).first()
    if ehr is None:
        raise LaunchRefused(
            "the launch comes from an EHR that is not registered with Loupe",
            code="launch_unknown_ehr",
            status=403,
            advice="Ask your administrator to register this EHR with Loupe.",
        )
    if header.get("alg") != ehr.algorithm:
        raise LaunchRefused(
            f"the launch is signed with {header.get('alg')!r}; this EHR signs with {ehr.algorithm}",
            code="launch_bad_signature",
            status=403,
        )
    return ehr


def _key_for(ehr: EhrSystem, token: str) -> Any:
    if ehr.algorithm == "HS256":
        if len(ehr.shared_secret) < 32:  # e.g. an EHR registered for SMART launches only
            raise LaunchRefused(
                "this EHR has no launch secret registered with Loupe",
                code="launch_bad_signature",
                status=403,
            )
        return ehr.shared_secret
    kid = jwt.get_unverified_header(token).get("kid")
    keys = jwt.PyJWKSet.from_dict(ehr.jwks or {"keys": []}).keys
    matching = [k for k in keys if kid is None or k.key_id == kid]
    if not matching:
        raise LaunchRefused(
            "the launch is signed with a key this EHR has not registered",
            code="launch_bad_signature",
            status=403,
        )
    return matching[0].key


def _claim_str(claims: Mapping[str, Any], name: str, limit: int = 256) -> str:
    value = claims.get(name, "")
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        raise LaunchRefused(
            f"the launch's {name!r} claim is not a string of at most {limit} characters "
            "without NUL",
            code="launch_malformed",
        )
    return value.strip()


def _claim_list(claims: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = claims.get(name)
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(
        isinstance(v, str) and "\x00" not in v for v in items
    ):
        raise LaunchRefused(
            f"the launch's {name!r} claim must be a list of strings", code="launch_malformed"
        )
    return tuple(v.strip() for v in items if v.strip())


def _claim_time(claims: Mapping[str, Any], name: str) -> dt.datetime:
    """A NumericDate claim (RFC 7519 §2: seconds since the epoch) as a UTC time. PyJWT has
    checked that it is a number; one beyond the years datetime holds (1 to 9999) is refused."""
    try:
        return dt.datetime.fromtimestamp(int(claims[name]), dt.UTC)
    except (OverflowError, OSError, ValueError):
        raise LaunchRefused(
            f"the launch's {name!r} claim is not a time between the years 1 and 9999",
            code="launch_malformed",
        ) from None


def verify_signed_launch(token: str, *, now: dt.datetime | None = None) -> LaunchContext:
    """Verify a signed EHR launch and consume its nonce.

    Checks, in order: a registered, active EHR (``iss``); the algorithm it registered (no
    ``alg`` switching, no ``none``); the signature; ``aud``; ``exp``/``iat`` present,
    not expired, lifetime at most 5 minutes; ``jti`` never used before (recorded here, so
    a replay fails even within the lifetime); ``sub``, the role mapping and the patient.
    """
    if not token or len(token) > 16384:
        raise LaunchRefused("no launch token was given", code="launch_missing")
    ehr = _ehr_for(token)
    moment = now or timezone.now()
    try:
        claims = jwt.decode(
            token,
            key=_key_for(ehr, token),
            algorithms=[ehr.algorithm],
            audience=ehr.audience,
            issuer=ehr.issuer,
            leeway=CLOCK_SKEW,
            options={"require": ["exp", "iat", "aud", "iss", "sub", "jti"]},
        )
    except jwt.ExpiredSignatureError:
        raise LaunchRefused("the launch has expired", code="launch_expired", status=401) from None
    except jwt.InvalidAudienceError:
        raise LaunchRefused(
            "the launch is addressed to another application (aud)",
            code="launch_wrong_audience",
            status=403,
        ) from None
    except jwt.MissingRequiredClaimError as exc:
        raise LaunchRefused(
            f"the launch lacks the {exc.claim!r} claim", code="launch_malformed"
        ) from None
    except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError):
        raise LaunchRefused(
            "the launch's signature does not match: it was altered or signed with another key",
            code="launch_bad_signature",
            status=403,
        ) from None
    except jwt.PyJWTError as exc:
        raise LaunchRefused(f"the launch is not valid: {exc}", code="launch_malformed") from None
    issued = _claim_time(claims, "iat")
    expires = _claim_time(claims, "exp")
    if expires - issued > MAX_LIFETIME:
        raise LaunchRefused(
            "the launch is valid for more than 5 minutes; Loupe refuses long-lived launches",
            code="launch_too_long",
        )
    if issued > moment + CLOCK_SKEW:
        raise LaunchRefused("the launch is issued in the future", code="launch_malformed")
    role = ehr.role_mapping.get(_claim_str(claims, "role", 64), "")
    if role not in ROLES:
        raise LaunchRefused(
            "this EHR role has no Loupe role",
            code="launch_no_role",
            status=403,
            advice="Ask your administrator to map your EHR role to a Loupe role.",
        )
    patient_claim = claims.get("patient")
    if isinstance(patient_claim, dict):
        patient_id = str(patient_claim.get("id", "")).strip()
        issuer = str(patient_claim.get("issuer", "")).strip() or ehr.default_patient_issuer
        if (
            not patient_id
            or len(patient_id) > 64
            or len(issuer) > 64
            or any(ord(c) < 32 for c in patient_id + issuer)
        ):
            raise LaunchRefused("the launch's patient has no usable ID", code="launch_malformed")
        patient = PatientRef(patient_id, issuer)
    elif isinstance(patient_claim, str):
        patient = parse_cx(patient_claim, parameter="the launch's patient")
        if not patient.issuers and ehr.default_patient_issuer:
            patient = PatientRef(patient.patient_id, ehr.default_patient_issuer)
    else:
        raise LaunchRefused("the launch names no patient", code="launch_malformed")
    study_uids = _claim_list(claims, "study")
    for uid in study_uids:
        if not is_valid_uid(uid):
            raise LaunchRefused("the launch's study is not a valid UID", code="launch_malformed")
    _consume_nonce(ehr, _claim_str(claims, "jti"), expires)
    return LaunchContext(
        ehr=ehr,
        user=_claim_str(claims, "sub", 150),
        user_name=_claim_str(claims, "name", 150),
        role=role,
        patient=patient,
        study_uids=study_uids,
        accession_numbers=_claim_list(claims, "accession"),
    )


def _consume_nonce(ehr: EhrSystem, nonce: str, expires: dt.datetime) -> None:
    if not nonce:
        raise LaunchRefused("the launch has no nonce (jti)", code="launch_malformed")
    UsedLaunchNonce.objects.filter(expires_at__lt=timezone.now() - CLOCK_SKEW).delete()
    try:
        with transaction.atomic():
            UsedLaunchNonce.objects.create(ehr=ehr, nonce=nonce[:255], expires_at=expires)
    except IntegrityError:
        raise LaunchRefused(
            "this launch was already used; each launch opens Loupe once",
            code="launch_replayed",
            status=403,
        ) from None
