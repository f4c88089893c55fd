"""Content-Security-Policy for every response (Django 5.2 has no CSP middleware).

Scripts and styles come from our own origin only; no inline script runs, so markup that
slipped into a DICOM tag could not execute even if a template forgot to escape it.
Framing is refused (``frame-ancestors 'none'``) until a view opts in.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

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


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", POLICY)
        return response


class ViewerErrorMiddleware:
    """Turns a ViewerError raised by any plain Django view into JSON with its status.

    DRF views have their own handler (``viewer.api.exceptions``); both give the same body.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, ViewerError):
            return JsonResponse(exception.as_dict(), status=exception.status)
        return None
