"""Thin API views: parse the request, call one service, serialize."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.authentication import CSRFCheck
from rest_framework.decorators import api_view
from rest_framework.exceptions import NotAuthenticated
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from viewer import access
from viewer.api import serializers
from viewer.dicom.archive import Item, iter_zip
from viewer.errors import TooLarge, ViewerError
from viewer.services import ingest


class RawBodyParser(BaseParser):
    """``application/dicom`` or ``application/zip`` bodies, read up to the upload cap."""

    media_type = "application/*"

    def parse(  # type: ignore[override]  # a raw body is bytes, not a mapping
        self, stream: Any, media_type: str | None = None, parser_context: Any = None
    ) -> bytes:
        if stream is None:
            return b""
        limit = settings.LOUPE_MAX_UPLOAD_BYTES
        data: bytes = stream.read(limit + 1)
        if len(data) > limit:
            raise TooLarge(f"the request body exceeds {limit} bytes", code="upload_too_large")
        return data


class InstancesView(APIView):
    """``POST /api/instances``: store DICOM objects.

    Accepts ``multipart/form-data`` with any number of files (DICOM objects or zip
    archives of them), or one object as an ``application/dicom`` body (``application/zip``
    for an archive). Answers with one result per object: stored, duplicate, replaced, or
    rejected with a code and a reason. Status: 200 when every object was accepted, 202
    when some were, and the first rejection's 4xx when none were.
    """

    parser_classes = [MultiPartParser, RawBodyParser]

    def post(self, request: Request) -> Response:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > settings.LOUPE_MAX_UPLOAD_BYTES:
            raise TooLarge(
                f"the request body is {length} bytes; the limit is {settings.LOUPE_MAX_UPLOAD_BYTES}",
                code="upload_too_large",
            )
        results = [ingest.ingest_item(item) for item in self._items(request)]
        if not results:
            raise ViewerError("the request holds no file", code="no_file")
        accepted = [r for r in results if r.ok]
        if len(accepted) == len(results):
            status = 200
        elif accepted:
            status = 202
        else:
            status = results[0].http_status
        body = {"summary": ingest.summarize(results), "results": [r.as_dict() for r in results]}
        return Response(body, status=status)

    def _items(self, request: Request) -> Iterator[Item]:
        """The objects of the request, one at a time (zip members are read lazily)."""
        limits = ingest.archive_limits()
        content_type = request.content_type or ""
        if content_type.startswith("multipart/"):
            for upload in request.FILES.getlist("files") or list(request.FILES.values()):
                name = upload.name or "upload"
                if name.lower().endswith(".zip"):
                    yield from iter_zip(upload, name, limits)
                elif upload.size is not None and upload.size > limits.max_object_bytes:
                    message = (
                        f"the file is {upload.size} bytes; the limit is {limits.max_object_bytes}"
                    )
                    yield Item(name, error=TooLarge(message, code="object_too_large"))
                else:
                    yield Item(name, data=upload.read())
            return
        data = request.data if isinstance(request.data, bytes) else b""
        if content_type.startswith("application/zip"):
            yield from iter_zip(io.BytesIO(data), "upload.zip", limits)
        else:
            yield Item("body", data=data)


_instances_view = InstancesView.as_view()


@csrf_exempt  # checked below once the session is known, exactly as DRF's SessionAuthentication
def instances(request: HttpRequest) -> HttpResponse:
    """``POST /api/instances``. One object as an ``application/dicom`` body (how modalities,
    scripts and the benchmark send them) is taken here without DRF's request machinery,
    which costs more than a small object's parse: same session and CSRF rules, same size
    cap, same JSON answer. Everything else (multipart, zip, other methods, a client that
    asks for HTML) goes to :class:`InstancesView`."""
    if (
        request.method == "POST"
        and request.content_type == "application/dicom"
        and "text/html" not in request.headers.get("Accept", "")
    ):
        return _one_object(request)
    return _instances_view(request)


def _one_object(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not (user.is_authenticated and user.is_active):
        message = str(NotAuthenticated.default_detail)  # DRF's words, in the request's language
        response = _json({"code": "not_authenticated", "message": message}, 401)
        response["WWW-Authenticate"] = 'Session realm="loupe"'
        return response
    reason = _csrf_failure(request)
    if reason:
        return _json({"code": "permission_denied", "message": f"CSRF Failed: {reason}"}, 403)
    limit = settings.LOUPE_MAX_UPLOAD_BYTES
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        error = TooLarge(
            f"the request body is {length} bytes; the limit is {limit}", code="upload_too_large"
        )
        return _json(error.as_dict(), error.status)
    data = request.read(limit + 1)
    if len(data) > limit:
        error = TooLarge(f"the request body exceeds {limit} bytes", code="upload_too_large")
        return _json(error.as_dict(), error.status)
    result = ingest.ingest_bytes(data, source="body")
    body = {"summary": ingest.summarize([result]), "results": [result.as_dict()]}
    return _json(body, 200 if result.ok else result.http_status)


def _csrf_failure(request: HttpRequest) -> str | None:
    """DRF's check for session-authenticated requests (``SessionAuthentication.enforce_csrf``)."""
    check = CSRFCheck(lambda request: HttpResponse())
    check.process_request(request)
    reason = check.process_view(request, lambda request: HttpResponse(), (), {})
    return str(reason) if reason else None


def _json(body: dict[str, Any], status: int) -> HttpResponse:
    """JSON as DRF's JSONRenderer writes it (compact, UTF-8), with its Vary and Allow."""
    response = HttpResponse(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
        content_type="application/json",
        status=status,
    )
    response["Vary"] = "Accept"
    response["Allow"] = "POST, OPTIONS"
    return response


@api_view(["GET"])
def study_metadata(request: Request, study: str) -> Response:
    """``GET /api/studies/{study}``: the study, its series and their ordered instances."""
    return Response(serializers.study_json(access.study_for(request, study)))


@api_view(["GET"])
def instance_metadata(request: Request, study: str, series: str, instance: str) -> Response:
    """``GET /api/studies/{study}/series/{series}/instances/{sop}``: one instance's geometry,
    spacing, presets, frames, cine rate and tile pyramid."""
    return Response(
        serializers.instance_json(access.instance_for(request, study, series, instance))
    )
