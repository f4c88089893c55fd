"""A small FHIR R4 server for the SMART launch tests (http.server on loopback, in a thread).

It publishes ``.well-known/smart-configuration`` naming the test OpenID provider's
endpoints, and serves ``Patient/<id>`` and ``ImagingStudy/<id>`` only to a bearer token that
the provider's introspection endpoint calls active and whose launch ``patient`` owns the
resource (patient-level scopes). Every request is recorded, with the tokens it carried.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from tests.servers import Server

FHIR_JSON = "application/fhir+json"


class FhirServer:
    def __init__(
        self, idp: Server | None, client: tuple[str, str], resources: dict[str, dict[str, Any]]
    ) -> None:
        self.idp = idp
        self.client = client
        self.resources = resources  # "Patient/p1" -> resource
        self.requests: list[str] = []  # "GET /fhir/Patient/p1"
        self.tokens: list[str] = []  # bearer tokens received
        self.reject_tokens = False  # answer 401 to every read (a revoked or foreign token)
        self.smart_configuration: dict[str, Any] | None = None
        fhir = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fhir.requests.append(f"GET {self.path}")
                status, body = fhir.answer(self.path, self.headers.get("Authorization", ""))
                data = json.dumps(body).encode()
                self.send_response(status)
                smart = self.path.endswith("/.well-known/smart-configuration")
                self.send_header("Content-Type", "application/json" if smart else FHIR_JSON)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.base = f"{self.origin}/fhir"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def configuration(self) -> dict[str, Any]:
        if self.smart_configuration is not None:
            return self.smart_configuration
        assert self.idp is not None
        return {
            "issuer": self.idp.url,
            "authorization_endpoint": f"{self.idp.url}/auth",
            "token_endpoint": f"{self.idp.url}/token",
            "jwks_uri": f"{self.idp.url}/jwks",
            "introspection_endpoint": f"{self.idp.url}/token/introspection",
            "code_challenge_methods_supported": ["S256"],
            "grant_types_supported": ["authorization_code"],
            "scopes_supported": ["openid", "fhirUser", "launch", "patient/ImagingStudy.rs"],
            "capabilities": ["launch-ehr", "client-confidential-symmetric", "sso-openid-connect"],
        }

    def answer(self, path: str, authorization: str) -> tuple[int, dict[str, Any]]:
        if path == "/fhir/.well-known/smart-configuration":
            return 200, self.configuration()
        key = path.removeprefix("/fhir/")
        resource = self.resources.get(key)
        if not path.startswith("/fhir/") or resource is None:
            return 404, outcome("not-found", f"{key} is not here")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return 401, outcome("login", "a bearer token is required")
        self.tokens.append(token)
        if self.reject_tokens:
            return 401, outcome("login", "the token is not accepted")
        assert self.idp is not None
        introspection = requests.post(
            f"{self.idp.url}/token/introspection",
            data={"token": token},
            auth=self.client,
            timeout=10,
        ).json()
        if not introspection.get("active"):
            return 401, outcome("login", "the token is not active")
        owner = (
            key.split("/")[1]
            if key.startswith("Patient/")
            else resource["subject"]["reference"].split("/")[1]
        )
        if introspection.get("patient") != owner:
            return 403, outcome("forbidden", "the token's patient does not own this resource")
        return 200, resource


def outcome(code: str, text: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }
