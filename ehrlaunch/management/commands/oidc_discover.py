"""``manage.py oidc_discover <issuer>``: read the provider's discovery document once and
print the LOUPE_OIDC_* lines to put in the environment (settings never fetch at start-up).

Refuses a provider whose document names another issuer, or that cannot do what Loupe
requires: the authorization code flow, PKCE with S256, RS256 ID tokens.
"""

from __future__ import annotations

from typing import Any

import requests
from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.environment import ImproperlyConfiguredEnv
from config.sso import check_url


class Command(BaseCommand):
    help = "Print the LOUPE_OIDC_* settings for an OpenID provider, from its discovery document."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("issuer", help="the provider's issuer URL (https://...)")

    def handle(self, *args: Any, **options: Any) -> None:
        issuer = str(options["issuer"]).strip().rstrip("/")
        try:
            check_url("issuer", issuer)
        except ImproperlyConfiguredEnv as exc:
            raise CommandError(str(exc)) from None
        url = f"{issuer}/.well-known/openid-configuration"
        try:
            response = requests.get(url, timeout=10, allow_redirects=False)
            response.raise_for_status()
            document = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise CommandError(f"cannot read {url}: {exc}") from None
        if not isinstance(document, dict):
            raise CommandError(f"{url} is not a JSON object")
        if str(document.get("issuer", "")).rstrip("/") != issuer:
            raise CommandError(f"{url} names another issuer: {document.get('issuer')!r}")
        checks = {
            "response_types_supported": "code",
            "code_challenge_methods_supported": "S256",
            "id_token_signing_alg_values_supported": "RS256",
        }
        for field, needed in checks.items():
            if needed not in (document.get(field) or []):
                raise CommandError(f"the provider does not list {needed!r} in {field}")
        lines = {
            "LOUPE_OIDC_ISSUER": issuer,
            "LOUPE_OIDC_AUTHORIZATION_ENDPOINT": document.get("authorization_endpoint"),
            "LOUPE_OIDC_TOKEN_ENDPOINT": document.get("token_endpoint"),
            "LOUPE_OIDC_USERINFO_ENDPOINT": document.get("userinfo_endpoint"),
            "LOUPE_OIDC_JWKS_URI": document.get("jwks_uri"),
            "LOUPE_OIDC_END_SESSION_ENDPOINT": document.get("end_session_endpoint") or "",
        }
        for name, value in lines.items():
            if name != "LOUPE_OIDC_END_SESSION_ENDPOINT" and not value:
                raise CommandError(f"the discovery document has no value for {name}")
            if value:
                try:
                    check_url(name, str(value))
                except ImproperlyConfiguredEnv as exc:
                    raise CommandError(str(exc)) from None
            self.stdout.write(f"{name}={value}")
        self.stdout.write("LOUPE_OIDC_CLIENT_ID=<the client registered for Loupe>")
        self.stdout.write("LOUPE_OIDC_CLIENT_SECRET=<its secret>")
