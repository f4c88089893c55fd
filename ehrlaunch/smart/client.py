"""The SMART launch's HTTP client: calls to a registered EHR's origins only (no SSRF).

* an ``iss`` must equal the ``fhir_base_url`` of a registered, active EHR
  (``ehr_for_iss``); nothing is fetched for another;
* discovery is ``{fhir_base_url}/.well-known/smart-configuration``, and the endpoints it
  names (authorize, token, JWKS) must be on the FHIR server's origin or on one of the
  EHR's registered ``smart_server_origins`` (https, or http on loopback);
* FHIR reads go to ``{fhir_base_url}/<type>/<id>`` only, with the access token as a
  bearer token;
* no redirect is followed, each call has a timeout and its body is capped at 1 MiB.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from ehrlaunch.errors import LaunchRefused
from ehrlaunch.models import EhrSystem

MAX_BODY_BYTES = 1024 * 1024
TIMEOUT_SECONDS = 10
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


def require_registered(ehr: EhrSystem, url: str, message: str) -> None:
    """Refuse (502) a URL that is not https (or loopback) on one of ``ehr``'s origins."""
    if not _secure(url) or _origin(url) not in allowed_origins(ehr):
        raise LaunchRefused(
            message, code="smart_unregistered_endpoint", status=502, advice=ASK_ADMIN
        )


def request_json(
    ehr: EhrSystem, method: str, url: str, what: str, **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    """One call to a registered origin: no redirects, a timeout, a capped JSON body."""
    require_registered(ehr, url, f"the EHR's {what} is not on a registered origin")
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
    status, document = request_json(ehr, "GET", url, "SMART configuration", headers=accept_json())
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
        require_registered(
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


def accept_json() -> dict[str, str]:
    return {"Accept": "application/json"}


def read_resource(
    ehr: EhrSystem, access_token: str, resource_type: str, resource_id: str
) -> dict[str, Any]:
    """GET one resource from the registered FHIR base with the bearer token."""
    url = f"{ehr.fhir_base_url}/{resource_type}/{resource_id}"
    status, resource = request_json(
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
