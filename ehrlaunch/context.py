"""Parse and verify a launch into a frozen :class:`LaunchContext`.

Two ways in are handled here:

* IHE Invoke Image Display (RAD-106): ``requestType=STUDY|PATIENT`` and its parameters,
  parsed strictly by :func:`parse_iid`. An IID request only says *what to show*; it grants
  nothing, so the session's own role and scope still decide what is visible.
* A signed EHR context: a JWT the EHR signs (HS256 with its shared secret, or RS256 with
  a key of its registered JWKS) carrying the user, the patient, the study or accession,
  ``aud``, ``exp`` at most 5 minutes after ``iat``, and a single-use ``jti``
  (:func:`verify_signed_launch`). It does grant: a clinician's session is bound to the
  launched patient.

Every refusal is a :class:`LaunchRefused` whose message says what happened and whose
``advice`` says what the clinician can do; no patient data is in either.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from django.db import IntegrityError, transaction
from django.utils import timezone

from ehrlaunch.models import EhrSystem, UsedLaunchNonce
from viewer.access import ROLES
from viewer.dicom.patients import PatientRef
from viewer.dicom.uids import is_valid_uid
from viewer.errors import ViewerError

MAX_LIFETIME = dt.timedelta(minutes=5)
CLOCK_SKEW = dt.timedelta(seconds=30)
ASK_AGAIN = "Close this view and open the images again from the patient's chart."


class LaunchRefused(ViewerError):
    status = 400
    code = "launch_refused"
    advice = ASK_AGAIN

    def __init__(self, message: str, *, code: str, status: int = 400, advice: str = ASK_AGAIN):
        super().__init__(message, code=code, status=status)
        self.advice = advice


def parse_cx(value: str, *, parameter: str = "patientID") -> PatientRef:
    """Parse HL7 v2 CX (``123^^^&1.2.3&ISO`` or ``123^^^HOSP``) into a :class:`PatientRef`."""
    text = value.strip()
    if not text:
        raise LaunchRefused(f"{parameter} is empty", code="bad_patient_id")
    if len(text) > 512 or any(ord(c) < 32 for c in text):
        raise LaunchRefused(f"{parameter} is not an HL7 CX identifier", code="bad_patient_id")
    components = text.split("^")
    patient_id = components[0].replace("\\S\\", "^").replace("\\T\\", "&").strip()
    if not patient_id or len(patient_id) > 64:
        raise LaunchRefused(
            f"{parameter} has no usable ID (1-64 characters)", code="bad_patient_id"
        )
    issuers: list[str] = []
    if len(components) > 3 and components[3]:
        hd = components[3].split("&")
        for part in hd[:2]:
            if part.strip() and part.strip() not in issuers:
                issuers.append(part.strip()[:64])
    return PatientRef(patient_id, issuers[0] if issuers else "", tuple(issuers[1:]))


def _uid_list(value: str, parameter: str) -> tuple[str, ...]:
    uids = tuple(u.strip() for u in value.split(",") if u.strip())
    if not uids:
        raise LaunchRefused(f"{parameter} is empty", code="bad_parameter")
    for uid in uids:
        if not is_valid_uid(uid):
            raise LaunchRefused(f"{parameter} holds an invalid UID", code="bad_parameter")
    return uids


def _bool(value: str, parameter: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise LaunchRefused(f"{parameter} must be true or false", code="bad_parameter")


def _datetime(value: str, parameter: str) -> dt.datetime:
    """XML Schema dateTime (``2026-01-31T12:00:00Z``, offset optional) or a plain date."""
    text = value.strip()
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise LaunchRefused(
            f"{parameter} is not a dateTime (use YYYY-MM-DDThh:mm:ssZ)", code="bad_parameter"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class IidRequest:
    """An IHE RAD-106 Invoke Image Display request (IID Supplement, Table 4.106.4.1.2-1)."""

    request_type: str
    study_uids: tuple[str, ...] = ()
    accession_numbers: tuple[str, ...] = ()
    patient: PatientRef | None = None
    patient_name: str = ""
    patient_birth_date: dt.date | None = None
    lower_datetime: dt.datetime | None = None
    upper_datetime: dt.datetime | None = None
    most_recent_results: int | None = None
    modalities: tuple[str, ...] = ()
    viewer_type: str = ""
    diagnostic_quality: bool = False
    key_images_only: bool = False


IID_PARAMETERS = {
    "requestType",
    "studyUID",
    "accessionNumber",
    "patientID",
    "patientName",
    "patientBirthDate",
    "lowerDateTime",
    "upperDateTime",
    "mostRecentResults",
    "modalitiesInStudy",
    "viewerType",
    "diagnosticQuality",
    "keyImagesOnly",
}


def parse_iid(params: Mapping[str, str]) -> IidRequest:
    """Validate an IID query; every bad value is refused with a message naming it."""
    unknown = sorted(set(params) - IID_PARAMETERS)
    if unknown:
        raise LaunchRefused(
            f"unknown parameter {unknown[0]!r} (IHE RAD-106 names are case-sensitive)",
            code="bad_parameter",
        )
    for name, given in params.items():
        if "\x00" in given:
            # PostgreSQL text cannot hold NUL: the parameter could only fail the lookup.
            raise LaunchRefused(f"{name} holds a NUL character", code="bad_parameter")
    request_type = params.get("requestType", "")
    options: dict[str, Any] = {}
    if "viewerType" in params:
        viewer_type = params["viewerType"].strip()
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", viewer_type):
            raise LaunchRefused("viewerType is not a viewer type name", code="bad_parameter")
        options["viewer_type"] = viewer_type
    for name, key in (
        ("diagnosticQuality", "diagnostic_quality"),
        ("keyImagesOnly", "key_images_only"),
    ):
        if name in params:
            options[key] = _bool(params[name], name)
    if request_type == "STUDY":
        if "patientID" in params or "mostRecentResults" in params:
            raise LaunchRefused(
                "requestType=STUDY takes studyUID or accessionNumber, not patient parameters",
                code="bad_parameter",
            )
        has_uid, has_accession = "studyUID" in params, "accessionNumber" in params
        if has_uid == has_accession:
            raise LaunchRefused(
                "requestType=STUDY needs exactly one of studyUID or accessionNumber",
                code="bad_parameter",
            )
        if has_uid:
            return IidRequest(
                "STUDY", study_uids=_uid_list(params["studyUID"], "studyUID"), **options
            )
        accessions = tuple(a.strip() for a in params["accessionNumber"].split(",") if a.strip())
        if not accessions or any(len(a) > 16 or "\\" in a for a in accessions):
            raise LaunchRefused(
                "accessionNumber must be a list of 1-16 character values", code="bad_parameter"
            )
        return IidRequest("STUDY", accession_numbers=accessions, **options)
    if request_type == "PATIENT":
        if "studyUID" in params or "accessionNumber" in params:
            raise LaunchRefused(
                "requestType=PATIENT takes patientID, not studyUID or accessionNumber",
                code="bad_parameter",
            )
        if "patientID" not in params:
            raise LaunchRefused("requestType=PATIENT needs patientID", code="bad_parameter")
        patient = parse_cx(params["patientID"])
        fields: dict[str, Any] = {}
        if "patientName" in params:
            fields["patient_name"] = params["patientName"].strip()[: 64 * 5]
        if "patientBirthDate" in params:
            raw = params["patientBirthDate"].strip()
            try:
                fields["patient_birth_date"] = dt.date.fromisoformat(
                    f"{raw[:4]}-{raw[4:6]}-{raw[6:8]}" if re.fullmatch(r"\d{8}", raw) else raw
                )
            except ValueError:
                raise LaunchRefused(
                    "patientBirthDate is not a date (YYYYMMDD)", code="bad_parameter"
                ) from None
        for name, key in (("lowerDateTime", "lower_datetime"), ("upperDateTime", "upper_datetime")):
            if name in params:
                fields[key] = _datetime(params[name], name)
        if fields.get("lower_datetime") and fields.get("upper_datetime"):
            if fields["lower_datetime"] > fields["upper_datetime"]:
                raise LaunchRefused("lowerDateTime is after upperDateTime", code="bad_parameter")
        if "mostRecentResults" in params:
            raw = params["mostRecentResults"].strip()
            # ASCII digits only: str.isdigit() also takes '²', which int() refuses.
            if not re.fullmatch(r"[0-9]{1,4}", raw) or not 1 <= int(raw) <= 1000:
                raise LaunchRefused(
                    "mostRecentResults must be a whole number from 1 to 1000", code="bad_parameter"
                )
            fields["most_recent_results"] = int(raw)
        if "modalitiesInStudy" in params:
            modalities = tuple(
                m.strip().upper() for m in params["modalitiesInStudy"].split(",") if m.strip()
            )
            if not modalities or not all(re.fullmatch(r"[A-Z0-9_ ]{1,16}", m) for m in modalities):
                raise LaunchRefused(
                    "modalitiesInStudy must be a list of modality codes (CT,MR)",
                    code="bad_parameter",
                )
            fields["modalities"] = modalities
        return IidRequest("PATIENT", patient=patient, **fields, **options)
    raise LaunchRefused(
        "requestType must be STUDY or PATIENT" if request_type else "requestType is missing",
        code="bad_parameter",
    )


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
