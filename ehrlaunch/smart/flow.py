"""The SMART EHR launch's flow: begin (discovery, a pending launch in the session, the
authorize URL with PKCE S256 and a nonce), then complete (state, code -> token, the ID
token verified, the user's role, the patient and studies read from FHIR) -> a
:class:`~ehrlaunch.context.LaunchContext`.

The access token lives in local variables for the length of the callback: never in a URL,
a log or the session. The session holds, per pending launch (keyed by ``state``, 256
bits), the EHR, the PKCE verifier, the nonce and the discovered endpoints, for 10 minutes
at most. The launch's user is the ID token's ``fhirUser`` (RS256 against the discovered
JWKS, ``aud`` = our client, ``iss`` = the discovered issuer, our nonce); the Loupe role is
``EhrSystem.role_mapping[<fhirUser resource type>]``, e.g. ``{"Practitioner": "clinician"}``.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import jwt
from django.http import HttpRequest
from django.urls import reverse

from ehrlaunch.context import LaunchContext
from ehrlaunch.errors import LaunchRefused
from ehrlaunch.models import EhrSystem
from ehrlaunch.smart import client, fhir
from viewer.roles import ROLES

SESSION_SMART = "loupe_smart"
PENDING_SECONDS = 600
MAX_PENDING = 5
SCOPE = "launch openid fhirUser patient/ImagingStudy.rs patient/Patient.rs"


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def redirect_uri(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("ehrlaunch:smart-callback"))


def begin(request: HttpRequest, ehr: EhrSystem, launch: str) -> str:
    """Discover, remember a pending launch in the session, and return the authorize URL."""
    launch = launch.strip()
    if not launch or len(launch) > 2048 or not launch.isprintable():
        raise LaunchRefused("the launch parameter is missing or malformed", code="smart_bad_launch")
    config = client.discover(ehr)
    state, verifier, nonce = (
        secrets.token_urlsafe(32),
        secrets.token_urlsafe(64),
        secrets.token_urlsafe(24),
    )
    now = time.time()
    pending = {
        key: value
        for key, value in (request.session.get(SESSION_SMART) or {}).items()
        if isinstance(value, dict) and now - float(value.get("created", 0)) < PENDING_SECONDS
    }
    while len(pending) >= MAX_PENDING:
        pending.pop(min(pending, key=lambda key: float(pending[key]["created"])))
    pending[state] = {
        "ehr": ehr.pk,
        "verifier": verifier,
        "nonce": nonce,
        "token_endpoint": config.token_endpoint,
        "jwks_uri": config.jwks_uri,
        "issuer": config.issuer,
        "created": now,
    }
    request.session[SESSION_SMART] = pending
    query = urlencode(
        {
            "response_type": "code",
            "client_id": ehr.smart_client_id,
            "redirect_uri": redirect_uri(request),
            "launch": launch,
            "scope": SCOPE,
            "state": state,
            "aud": ehr.fhir_base_url,
            "code_challenge": _challenge(verifier),
            "code_challenge_method": "S256",
            "nonce": nonce,
        }
    )
    separator = "&" if "?" in config.authorization_endpoint else "?"
    return f"{config.authorization_endpoint}{separator}{query}"


def _take_pending(request: HttpRequest, state: str) -> dict[str, Any] | None:
    pending = request.session.get(SESSION_SMART) or {}
    entry = pending.pop(state, None) if state else None
    request.session[SESSION_SMART] = pending
    if not isinstance(entry, dict) or time.time() - float(entry["created"]) >= PENDING_SECONDS:
        return None
    return entry


def complete(request: HttpRequest) -> LaunchContext:
    """The authorization server's answer -> a verified launch context (state used up)."""
    state = request.GET.get("state", "")
    entry = _take_pending(request, state)
    error = request.GET.get("error", "")
    if error:
        refused_by = "denied the launch" if error == "access_denied" else "refused the launch"
        raise LaunchRefused(
            f"the EHR's authorization server {refused_by} ({error[:40]})"
            if re.fullmatch(r"[a-z_]{1,40}", error)
            else f"the EHR's authorization server {refused_by}",
            code="smart_authorization_refused",
            status=403,
        )
    if entry is None:
        raise LaunchRefused(
            "the launch's answer does not belong to a launch started in this browser "
            "(unknown or expired state)",
            code="smart_state_mismatch",
            status=403,
        )
    code = request.GET.get("code", "")
    if not code:
        raise LaunchRefused("the launch's answer has no authorization code", code="smart_no_code")
    ehr = EhrSystem.objects.filter(pk=entry["ehr"], active=True).first()
    if ehr is None:
        raise LaunchRefused(
            "this EHR is no longer registered with Loupe", code="smart_unknown_iss", status=403
        )
    token = _exchange(request, ehr, entry, code)
    access_token = token["access_token"]
    claims = _verify_id_token(ehr, entry, token.get("id_token"))
    fhir_user = claims.get("fhirUser")
    if not isinstance(fhir_user, str) or "/" not in fhir_user:
        raise LaunchRefused(
            "the EHR did not say who the user is (no fhirUser in the ID token)",
            code="smart_no_user",
            status=403,
            advice=client.ASK_ADMIN,
        )
    resource_type = fhir_user.rstrip("/").split("/")[-2]
    role = ehr.role_mapping.get(resource_type, "")
    if role not in ROLES:
        raise LaunchRefused(
            f"a {resource_type} user has no Loupe role at this EHR",
            code="launch_no_role",
            status=403,
            advice="Ask your administrator to map your EHR role to a Loupe role.",
        )
    patient_id = token.get("patient")
    if not isinstance(patient_id, str) or not fhir.FHIR_ID.fullmatch(patient_id):
        raise LaunchRefused(
            "the EHR launched without a patient (no patient in the token response)",
            code="smart_no_patient",
        )
    patient = fhir.patient_ref_from_fhir(
        client.read_resource(ehr, access_token, "Patient", patient_id), ehr
    )
    study_uids: list[str] = []
    for study_id in fhir.imaging_study_ids(token.get("fhirContext"), ehr):
        study = client.read_resource(ehr, access_token, "ImagingStudy", study_id)
        subject = study.get("subject")
        if not isinstance(subject, dict) or subject.get("reference") not in (
            f"Patient/{patient_id}",
            f"{ehr.fhir_base_url}/Patient/{patient_id}",
        ):
            raise LaunchRefused(
                "the launch's ImagingStudy belongs to another patient than the launch's",
                code="launch_patient_mismatch",
                status=403,
            )
        study_uids.append(fhir.study_uid_from_fhir(study))
    name = claims.get("name")
    return LaunchContext(
        ehr=ehr,
        user=fhir_user[:150],
        user_name=name[:150] if isinstance(name, str) else "",
        role=role,
        patient=patient,
        study_uids=tuple(study_uids),
    )


def _exchange(
    request: HttpRequest, ehr: EhrSystem, entry: dict[str, Any], code: str
) -> dict[str, Any]:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri(request),
        "code_verifier": entry["verifier"],
    }
    auth = None
    if ehr.smart_client_secret:
        auth = (ehr.smart_client_id, ehr.smart_client_secret)  # client_secret_basic
    else:
        data["client_id"] = ehr.smart_client_id  # a public client
    status, token = client.request_json(
        ehr,
        "POST",
        entry["token_endpoint"],
        "token endpoint",
        data=data,
        auth=auth,
        headers=client.accept_json(),
    )
    if status != 200:
        error = token.get("error")
        detail = (
            f" ({error})" if isinstance(error, str) and re.fullmatch(r"[a-z_]{1,40}", error) else ""
        )
        raise LaunchRefused(
            f"the EHR's authorization server refused the launch's code (HTTP {status}){detail}",
            code="smart_token_refused",
            status=403 if 400 <= status < 500 else 502,
        )
    if (
        not isinstance(token.get("access_token"), str)
        or str(token.get("token_type", "")).lower() != "bearer"
    ):
        raise LaunchRefused(
            "the EHR's token response has no bearer access token",
            code="smart_bad_response",
            status=502,
        )
    return token


def _verify_id_token(ehr: EhrSystem, entry: dict[str, Any], id_token: Any) -> dict[str, Any]:
    if not isinstance(id_token, str) or not id_token:
        raise LaunchRefused(
            "the EHR's token response has no ID token, so the user is unknown",
            code="smart_no_user",
            status=403,
            advice=client.ASK_ADMIN,
        )
    status, jwks = client.request_json(
        ehr, "GET", entry["jwks_uri"], "key set", headers=client.accept_json()
    )
    try:
        header = jwt.get_unverified_header(id_token)
        if header.get("alg") != "RS256" or status != 200:
            raise jwt.InvalidAlgorithmError("not RS256 or no keys")
        keys = [
            key
            for key in jwt.PyJWKSet.from_dict(jwks).keys
            if header.get("kid") is None or key.key_id == header.get("kid")
        ]
        if not keys:
            raise jwt.InvalidKeyError("no matching key")
        claims: dict[str, Any] = jwt.decode(
            id_token,
            keys[0].key,
            algorithms=["RS256"],
            audience=ehr.smart_client_id,
            issuer=entry["issuer"] or None,
            leeway=30,
            options={"require": ["iss", "aud", "exp", "iat", "sub"]},
        )
    except (jwt.PyJWTError, jwt.exceptions.PyJWKSetError):
        raise LaunchRefused(
            "the EHR's ID token does not verify (signature, issuer, audience or expiry)",
            code="smart_bad_id_token",
            status=403,
        ) from None
    if claims.get("nonce") != entry["nonce"]:
        raise LaunchRefused(
            "the EHR's ID token is not for this launch (nonce)",
            code="smart_bad_id_token",
            status=403,
        )
    return claims
