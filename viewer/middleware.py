"""Content-Security-Policy for every response (Django 5.2 has no CSP middleware).

Scripts and styles come from our own origin only; no inline script runs, so markup that
slipped into a DICOM tag could not execute even if a template forgot to escape it.
Framing is refused (``frame-ancestors 'none'``) until a view opts in.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from viewer.errors import ViewerError

POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def mark_embeddable(response: HttpResponse) -> HttpResponse:
    """Let the registered EHRs frame this page (``ehrlaunch.embedding`` sets the origins)."""
    response.loupe_embeddable = True  # type: ignore[attr-defined]
    response.xframe_options_exempt = True
    return response


def embeddable(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A page meant for the EHR's frame: framable by the registered EHR origins only."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return mark_embeddable(view(request, *args, **kwargs))

    return wrapper


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", POLICY)
        return response


class ViewerErrorMiddleware:
    """The one mapping from a ViewerError raised by any view (plain Django or DRF, whose
    handler leaves them to this) to a response: JSON ``{"code", "message"}`` with the
    error's status, or the error page for a browser navigating to a page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, ViewerError):
            return None
        return error_response(request, exception)


def wants_page(request: HttpRequest) -> bool:
    """A browser navigating to a page (not the API, DICOMweb or an image) gets HTML errors."""
    if request.path.startswith(("/api/", "/dicom-web/")):
        return False
    return "text/html" in request.headers.get("Accept", "")


def error_response(request: HttpRequest, error: ViewerError) -> HttpResponse:
    """The response for ``error``: the error page for a browser's page, else JSON. An error
    page shows nothing worth clickjacking, and inside the EHR's frame it must be visible
    rather than blocked."""
    if wants_page(request):
        return mark_embeddable(render(request, "error.html", {"error": error}, status=error.status))
    return JsonResponse(error.as_dict(), status=error.status)


SHARE_HEADERS = {"Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex, nofollow"}


class ShareSessionMiddleware:
    """Sessions opened by a share link (``viewer.services.sharing``): every request checks
    that the link is still active (410, saying expired or revoked, on the first request
    after), and every response keeps the link out of Referers and search engines."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from viewer import access
        from viewer.services import sharing

        scope = access.share_scope(request)
        is_link = request.path.startswith("/s/")
        if scope is not None and not is_link:
            try:
                sharing.check_session(request, scope)
            except ViewerError as gone:
                response = error_response(request, gone)
                _share_headers(response)
                return response
        response = self.get_response(request)
        if scope is not None or is_link:
            _share_headers(response)
        return response


def _share_headers(response: HttpResponse) -> None:
    for name, value in SHARE_HEADERS.items():
        response.headers[name] = value
