"""The embedding policy: who may frame which page, and cookies that work in the frame.

* Pages meant for the EHR's frame are decorated with ``viewer.middleware.embeddable``. They send
  ``Content-Security-Policy: frame-ancestors <registered EHR origins>`` (``'none'``
  while no EHR is registered) and no
  ``X-Frame-Options`` (it cannot express a list; where both are sent, CSP wins in current
  browsers). Every other page keeps ``frame-ancestors 'none'`` and ``X-Frame-Options: DENY``.
* With ``LOUPE_EMBED`` on (the default), session and CSRF cookies are ``SameSite=None;
  Secure`` and ``Partitioned`` (CHIPS): inside an EHR's cross-site frame the browser keeps
  them in a jar of their own, keyed by the EHR's site, so nothing depends on third-party
  cookies. Django 5.2 and Python 3.11 cannot write ``Partitioned``, so the middleware
  adds it (docs/security.md §4).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from http.cookies import Morsel
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from ehrlaunch.models import EhrSystem

FRAME_ANCESTORS = re.compile(r"frame-ancestors [^;]*")


def ehr_origins() -> list[str]:
    origins: list[str] = []
    for text in EhrSystem.objects.filter(active=True).values_list("allowed_origins", flat=True):
        for line in text.splitlines():
            origin = line.strip().rstrip("/")
            if origin and origin not in origins and " " not in origin and ";" not in origin:
                origins.append(origin)
    return origins


class PartitionedMorsel(Morsel[str]):
    """A cookie written with the ``Partitioned`` attribute (CHIPS)."""

    def OutputString(self, attrs: Any = None) -> str:
        return super().OutputString(attrs) + "; Partitioned"


class EmbeddingPolicyMiddleware:
    """Applies ``embeddable``'s frame-ancestors and partitions the session cookies.

    Listed before ``viewer.middleware.ContentSecurityPolicyMiddleware`` in MIDDLEWARE, so
    it sees the response after that one has set the policy."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if getattr(response, "loupe_embeddable", False):
            origins = ehr_origins()
            allowed = " ".join(origins) or "'none'"
            if not origins:
                response.headers["X-Frame-Options"] = "DENY"
            policy = response.headers.get("Content-Security-Policy", "")
            response.headers["Content-Security-Policy"] = FRAME_ANCESTORS.sub(
                f"frame-ancestors {allowed}", policy
            )
        if settings.LOUPE_EMBED:
            for name in (settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME):
                morsel = response.cookies.get(name)
                if morsel is not None and not isinstance(morsel, PartitionedMorsel):
                    partitioned = PartitionedMorsel()
                    partitioned.set(morsel.key, morsel.value, morsel.coded_value)
                    partitioned.update(morsel)
                    dict.__setitem__(response.cookies, name, partitioned)
        return response
