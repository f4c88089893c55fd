"""CORS for DICOMweb and FHIR: viewers on another origin, with bearer tokens.

Only the exact origins of ``LOUPE_DICOMWEB_CORS_ORIGINS`` (comma-separated, e.g.
``https://viewer.hospital.test``) get CORS headers, on ``/dicom-web/`` and ``/fhir/``;
unset, there is no CORS at all. A preflight (``OPTIONS`` with ``Origin`` and
``Access-Control-Request-Method``) from a listed origin is answered 204 here, before any
authentication (browsers send preflights without credentials); from another origin 403,
without CORS headers. Every other response to a listed origin, errors (401, 404, ...)
included, carries ``Access-Control-Allow-Origin`` and ``Access-Control-Expose-Headers``.
Credentials are never allowed (no ``Access-Control-Allow-Credentials``): another origin
authenticates with ``Authorization: Bearer`` (``viewer.apitokens``), never with Loupe's
session cookie.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import patch_vary_headers

CORS_PATHS = ("/dicom-web/", "/fhir/")
ALLOW_METHODS = "GET, POST, OPTIONS"
ALLOW_HEADERS = "Authorization, Accept, Content-Type"
EXPOSE_HEADERS = "Content-Type, Content-Length, Content-Location, ETag, Warning, WWW-Authenticate"
MAX_AGE_SECONDS = 600


def allowed_origin(request: HttpRequest) -> str | None:
    """The request's Origin when it is one of LOUPE_DICOMWEB_CORS_ORIGINS, else None."""
    origin = request.headers.get("Origin", "")
    return origin if origin and origin in settings.LOUPE_DICOMWEB_CORS_ORIGINS else None


class CorsMiddleware:
    """Listed early in MIDDLEWARE (outside authentication and the error middleware), so
    preflights need no login and error responses get the headers too."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(CORS_PATHS) or not settings.LOUPE_DICOMWEB_CORS_ORIGINS:
            return self.get_response(request)
        origin = allowed_origin(request)
        preflight = request.method == "OPTIONS" and "Access-Control-Request-Method" in (
            request.headers
        )
        if preflight:
            if origin is None:
                response: HttpResponse = JsonResponse(
                    {
                        "code": "cors_origin_not_allowed",
                        "message": "this origin is not in LOUPE_DICOMWEB_CORS_ORIGINS",
                    },
                    status=403,
                )
            else:
                response = HttpResponse(status=204)
                response["Access-Control-Allow-Origin"] = origin
                response["Access-Control-Allow-Methods"] = ALLOW_METHODS
                response["Access-Control-Allow-Headers"] = ALLOW_HEADERS
                response["Access-Control-Max-Age"] = str(MAX_AGE_SECONDS)
            patch_vary_headers(response, ("Origin",))
            return response
        response = self.get_response(request)
        patch_vary_headers(response, ("Origin",))
        if origin is not None:
            response["Access-Control-Allow-Origin"] = origin
            response["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        return response
