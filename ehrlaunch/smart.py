"""SMART App Launch, EHR launch (HL7 SMART App Launch 2.x, "app-launch"): iss + launch ->
discovery -> authorize (PKCE S256) -> token with ``patient`` and ``fhirContext`` -> a
:class:`~ehrlaunch.context.LaunchContext`, opened like a signed launch.

What is fetched, and from where (security.md #22, no SSRF):

* ``iss`` must equal the ``fhir_base_url`` of a registered, active :class:`EhrSystem`; an
  unregistered ``iss`` is refused before anything is fetched;
* discovery is ``{fhir_base_url}/.well-known/smart-configuration`` (the registered value);
* the endpoints it names (authorize, token, JWKS) must be on the FHIR server's origin or
  on one of the EHR's registered ``smart_server_origins``;
* FHIR reads go to ``{fhir_base_url}/Patient/<id>`` and ``/ImagingStudy/<id>`` only, with
  the access token as a bearer token; no redirect is followed anywhere and bodies are capped.

The access token lives in local variables for the length of the callback: never in a URL, a
log or the session. The session holds, per pending launch (keyed by ``state``, 256 bits),
the EHR, the PKCE verifier, the nonce and the discovered endpoints, for 10 minutes at most.

The launch's user is the ID token's ``fhirUser`` (verified: RS256 against the discovered
JWKS, ``aud`` = our client, ``iss`` = the discovered issuer, our nonce); the Loupe role is
``EhrSystem.role_mapping[<fhirUser resource type>]``, e.g. ``{"Practitioner": "clinician"}``.
The patient is the FHIR Patient's identifier: an identifier whose system is listed in
``EhrSystem.patient_identifier_systems`` maps to that DICOM (0010,0021) Issuer of Patient ID,
else ``urn:oid:X`` maps to issuer X; one typed MR (medical record number) is preferred. The
study is the ImagingStudy's ``identifier`` with system ``urn:dicom:uid`` (value
``urn:oid:<Study Instance UID>``, FHIR R4 ImagingStudy), whose ``subject`` must be the
launch's patient.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
import requests
from django.http import HttpRequest
from django.urls import reverse

from ehrlaunch.context import LaunchContext, LaunchRefused, PatientRef
from ehrlaunch.models import EhrSystem
from viewer.access import ROLES
from viewer.dicom.uids import is_valid_uid

SESSION_SMART = "loupe_smart"
PENDING_SECONDS = 600
MAX_PENDING = 5
MAX_BODY_BYTES = 1024 * 1024
TIMEOUT_SECONDS = 10
SCOPE = "launch openid fhirUser patient/ImagingStudy.rs patient/Patient.rs"
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
ASK_ADMIN = "Ask your administrator to check this EHR's SMART registration in Loupe."


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _secure(url: str) -> bool:
    parts = urlsplit(url)
    if not parts.hostname:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS)


def allowed_origins(ehr: EhrSystem) -> set[str]:
    return {_origin(ehr.fhir_base_url), *(o.lower() for o in ehr.smart_origins())}


def ehr_for_iss(iss: str) -> EhrSystem:
    """The registered EHR whose FHIR base URL is ``iss``; nothing is fetched for others."""
    normalized = iss.strip().rstrip("/")
    ehr = (
        EhrSystem.objects.filter(active=True, fhir_base_url=normalized)
        .exclude(smart_client_id="")
        .first()
        if normalized and len(normalized) <= 255
        else None
    )
    if ehr is None:
        raise LaunchRefused(
            "the launch names a FHIR server (iss) that is not registered with Loupe",
            code="smart_unknown_iss",
            status=403,
            advice="Ask your administrator to register this EHR's FHIR server with Loupe.",
        )
    return ehr


def _require_registered(ehr: EhrSystem, url: str, message: str) -> None:
    """Refuse (502) a URL that is not https (or loopback) on one of ``ehr``'s origins."""
    if not _secure(url) or _origin(url) not in allowed_origins(ehr):
        raise LaunchRefused(
            message, code="smart_unregistered_endpoint", status=502, advice=ASK_ADMIN
        )


def _request(
    ehr: EhrSystem, method: str, url: str, what: str, **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    """One call to a registered origin: no redirects, a timeout, a capped JSON body."""
    _require_registered(ehr, url, f"the EHR's {what} is not on a registered origin")
    try:
        with requests.request(
            method, url, timeout=TIMEOUT_SECONDS, allow_redirects=False, stream=True, **kwargs
        ) as response:
            body = response.raw.read(MAX_BODY_BYTES + 1, decode_content=True)
            status = response.status_code
    except requests.RequestException:
        raise LaunchRefused(
            f"the EHR's {what} cannot be reached",
            code="smart_unreachable",
            status=502,
            advice="Try again in a moment; if it persists, tell your administrator.",
        ) from None
    if len(body) > MAX_BODY_BYTES:
        raise LaunchRefused(
            f"the EHR's {what} answered with more than 1 MiB",
            code="smart_bad_response",
            status=502,
        )
    try:
        document = json.loads(body) if body else {}
    except ValueError:
        document = None
    if not isinstance(document, dict):
        if 200 <= status < 300:
            raise LaunchRefused(
                f"the EHR's {what} did not answer with a JSON object",
                code="smart_bad_response",
                status=502,
            )
        document = {}
    return status, document


@dataclass(frozen=True)
class SmartConfiguration:
    """The parts of ``.well-known/smart-configuration`` Loupe uses."""

    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    issuer: str


def discover(ehr: EhrSystem) -> SmartConfiguration:
    url = f"{ehr.fhir_base_url}/.well-known/smart-configuration"
    status, document = _request(ehr, "GET", url, "SMART configuration", headers=_json())
    if status != 200:
        raise LaunchRefused(
            f"the EHR's SMART configuration is not available (HTTP {status})",
            code="smart_discovery_failed",
            status=502,
            advice=ASK_ADMIN,
        )
    endpoints = {}
    for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        value = document.get(field)
        if not isinstance(value, str) or not value:
            raise LaunchRefused(
                f"the EHR's SMART configuration has no {field}",
                code="smart_discovery_failed",
                status=502,
                advice=ASK_ADMIN,
            )
        _require_registered(
            ehr, value, f"the EHR's SMART configuration names a {field} on an unregistered origin"
        )
        endpoints[field] = value
    if "S256" not in (document.get("code_challenge_methods_supported") or []):
        raise LaunchRefused(
            "the EHR's authorization server does not offer PKCE with S256",
            code="smart_discovery_failed",
            status=502,
            advice=ASK_ADMIN,
        )
    issuer = document.get("issuer")
    return SmartConfiguration(issuer=issuer if isinstance(issuer, str) else "", **endpoints)


def _json() -> dict[str, str]:
    return {"Accept": "application/json"}


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
    config = discover(ehr)
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
            advice=ASK_ADMIN,
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
    if not isinstance(patient_id, str) or not FHIR_ID.fullmatch(patient_id):
        raise LaunchRefused(
            "the EHR launched without a patient (no patient in the token response)",
            code="smart_no_patient",
        )
    patient = patient_ref_from_fhir(_read(ehr, access_token, "Patient", patient_id), ehr)
    study_uids: list[str] = []
    for study_id in imaging_study_ids(token.get("fhirContext"), ehr):
        study = _read(ehr, access_token, "ImagingStudy", study_id)
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
        study_uids.append(study_uid_from_fhir(study))
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
    status, token = _request(
        ehr,
        "POST",
        entry["token_endpoint"],
        "token endpoint",
        data=data,
        auth=auth,
        headers=_json(),
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
            advice=ASK_ADMIN,
        )
    status, jwks = _request(ehr, "GET", entry["jwks_uri"], "key set", headers=_json())
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


def _read(
    ehr: EhrSystem, access_token: str, resource_type: str, resource_id: str
) -> dict[str, Any]:
    """GET one resource from the registered FHIR base with the bearer token."""
    url = f"{ehr.fhir_base_url}/{resource_type}/{resource_id}"
    status, resource = _request(
        ehr,
        "GET",
        url,
        f"FHIR server ({resource_type})",
        headers={"Accept": "application/fhir+json", "Authorization": f"Bearer {access_token}"},
    )
    if status in (401, 403):
        raise LaunchRefused(
            f"the EHR's FHIR server refused Loupe's access token (HTTP {status}) "
            f"when reading the launch's {resource_type}",
            code="smart_fhir_refused",
            status=403,
        )
    if status in (404, 410):
        raise LaunchRefused(
            f"the EHR's FHIR server has no such {resource_type} (HTTP {status})",
            code="smart_fhir_not_found",
            status=404,
        )
    if status != 200 or resource.get("resourceType") != resource_type:
        raise LaunchRefused(
            f"the EHR's FHIR server did not return the {resource_type} (HTTP {status})",
            code="smart_fhir_failed",
            status=502,
        )
    return resource


def imaging_study_ids(fhir_context: Any, ehr: EhrSystem) -> list[str]:
    """ImagingStudy IDs from the token's ``fhirContext`` (``[{"reference": "ImagingStudy/1"}]``)."""
    if fhir_context is None:
        return []
    if not isinstance(fhir_context, list):
        raise LaunchRefused("the launch's fhirContext is not a list", code="smart_bad_context")
    found: list[str] = []
    for item in fhir_context[:20]:
        reference = item.get("reference") if isinstance(item, dict) else None
        if not isinstance(reference, str):
            continue
        if reference.startswith(f"{ehr.fhir_base_url}/"):
            reference = reference[len(ehr.fhir_base_url) + 1 :]
        resource_type, _, resource_id = reference.partition("/")
        if resource_type != "ImagingStudy":
            continue
        if not FHIR_ID.fullmatch(resource_id):
            raise LaunchRefused(
                "the launch's fhirContext names a malformed ImagingStudy", code="smart_bad_context"
            )
        if resource_id not in found:
            found.append(resource_id)
    return found


def study_uid_from_fhir(study: dict[str, Any]) -> str:
    """(0020,000D) Study Instance UID from ImagingStudy.identifier (system urn:dicom:uid)."""
    for identifier in study.get("identifier") or []:
        if not isinstance(identifier, dict) or identifier.get("system") != "urn:dicom:uid":
            continue
        value = str(identifier.get("value", "")).strip()
        uid = value[len("urn:oid:") :] if value.startswith("urn:oid:") else value
        if is_valid_uid(uid):
            return uid
    raise LaunchRefused(
        "the launch's ImagingStudy has no Study Instance UID (identifier system urn:dicom:uid)",
        code="smart_no_study_uid",
    )


def _is_mrn(identifier: dict[str, Any]) -> bool:
    coding = (identifier.get("type") or {}).get("coding") or []
    return any(isinstance(c, dict) and c.get("code") == "MR" for c in coding)


def patient_ref_from_fhir(patient: dict[str, Any], ehr: EhrSystem) -> PatientRef:
    """Patient ID and Issuer of Patient ID (DICOM PS3.3 C.7.1.1) from Patient.identifier."""
    systems: dict[str, str] = ehr.patient_identifier_systems or {}
    candidates: list[tuple[bool, str, str]] = []
    for identifier in patient.get("identifier") or []:
        if not isinstance(identifier, dict):
            continue
        value = identifier.get("value")
        system = identifier.get("system")
        if not isinstance(value, str) or not 0 < len(value.strip()) <= 64:
            continue
        if not isinstance(system, str):
            continue
        if system in systems:
            issuer = systems[system]
        elif system.startswith("urn:oid:") and is_valid_uid(system[len("urn:oid:") :]):
            issuer = system[len("urn:oid:") :]
        else:
            continue
        candidates.append((_is_mrn(identifier), value.strip(), issuer))
    if not candidates:
        raise LaunchRefused(
            "the launch's Patient has no identifier Loupe can match to a DICOM Patient ID "
            "(system urn:oid:..., or one registered for this EHR)",
            code="smart_no_patient_identifier",
            status=422,
            advice=ASK_ADMIN,
        )
    candidates.sort(key=lambda c: not c[0])  # a medical record number first
    _, patient_id, issuer = candidates[0]
    return PatientRef(patient_id, (issuer,) if issuer else ())
