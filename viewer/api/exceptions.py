"""DRF's own errors (not authenticated, permission denied, parse errors, method not
allowed) as JSON with a code and message, the shape ``ViewerError.as_dict`` gives.

A ViewerError raised in a DRF view is not answered here: DRF re-raises what its handler
leaves, and ``viewer.middleware.ViewerErrorMiddleware``, the one mapping from ViewerError
to a response, answers it as it answers every other view's."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import NotAuthenticated, PermissionDenied
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from viewer.errors import ViewerError
from viewer.services import audit


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ViewerError):
        return None
    kwargs = context.get("kwargs") or {}
    if isinstance(exc, NotAuthenticated | PermissionDenied) and "study" in kwargs:
        # A refused request for a study's data is part of the audit trail (PS3.15 A.5.3.6).
        request = context["request"]
        match = request.resolver_match
        audit.record_refused(request, (match.url_name or "") if match else "", kwargs["study"])
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" in response.data:
        detail = response.data["detail"]
        response.data = {"code": getattr(detail, "code", "error"), "message": str(detail)}
    return response
