"""Thin API views: parse the request, call one service, serialize."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any, NoReturn

from django.conf import settings
from django.core.paginator import EmptyPage, Paginator
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.authentication import CSRFCheck
from rest_framework.decorators import api_view
from rest_framework.exceptions import NotAuthenticated
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from viewer import access
from viewer.api import fhir, serializers
from viewer.dicom.archive import Item, iter_zip
from viewer.dicom.index import LO
from viewer.dicom.patients import PatientRef
from viewer.errors import NotFound, TooLarge, ViewerError
from viewer.services import audit, deidentify, ingest

AUDIT_PAGE_SIZE = 100


def check_declared_length(meta: Any) -> None:
    """The upload cap (LOUPE_MAX_UPLOAD_BYTES), before anything is read: a request whose
    Content-Length exceeds it is refused with 413."""
    limit = settings.LOUPE_MAX_UPLOAD_BYTES
    try:
        length = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        raise TooLarge(
            f"the request body is {length} bytes; the limit is {limit}", code="upload_too_large"
        )


def read_within_cap(stream: Any) -> bytes:
    """A raw body, read up to the upload cap and refused with 413 beyond it (a body longer
    than its Content-Length said, or one sent without one)."""
    limit = settings.LOUPE_MAX_UPLOAD_BYTES
    data: bytes = stream.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"the request body exceeds {limit} bytes", code="upload_too_large")
    return data


class RawBodyParser(BaseParser):
    """``application/dicom`` or ``application/zip`` bodies, read up to the upload cap."""

    media_type = "application/*"

    def parse(  # type: ignore[override]  # a raw body is bytes, not a mapping
        self, stream: Any, media_type: str | None = None, parser_context: Any = None
    ) -> bytes:
        return b"" if stream is None else read_within_cap(stream)


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
        access.check_may_store(request)
        check_declared_length(request.META)
        results = ingest.ingest_items(self._items(request))
        if not results:
            raise ViewerError("the request holds no file", code="no_file")
        audit.record_transfer(request, results)
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
    """One raw object; a ViewerError (403 for a launched clinician, 413, 503 with the audit
    store down) is answered by ``viewer.middleware.ViewerErrorMiddleware``."""
    user = request.user
    if not (user.is_authenticated and user.is_active):
        audit.record_refused(request, "api-instances", "")
        message = str(NotAuthenticated.default_detail)  # DRF's words, in the request's language
        response = _json({"code": "not_authenticated", "message": message}, 401)
        response["WWW-Authenticate"] = 'Session realm="loupe"'
        return response
    reason = _csrf_failure(request)
    if reason:
        return _json({"code": "permission_denied", "message": f"CSRF Failed: {reason}"}, 403)
    access.check_may_store(request)
    check_declared_length(request.META)
    result = ingest.ingest_bytes(read_within_cap(request), source="body")
    # One record per session, patient and study (not one per object): modalities and
    # scripts send a series as one request per object.
    audit.record_transfer(request, [result], aggregate=True)
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
    """``GET /api/studies/{study}``: the study, its series and their ordered instances
    (de-identified in a de-identified share: ``viewer.services.deidentify``)."""
    found = access.study_for(request, study)
    body = serializers.study_json(found)
    if access.deidentified(request):
        body = deidentify.study_json(body, deidentify.identifiers_of(found))
    return Response(body)


@api_view(["GET"])
def instance_metadata(request: Request, study: str, series: str, instance: str) -> Response:
    """``GET /api/studies/{study}/series/{series}/instances/{sop}``: one instance's geometry,
    spacing, presets, frames, cine rate and tile pyramid."""
    return Response(
        serializers.instance_json(access.instance_for(request, study, series, instance))
    )


class IsAdministrator(BasePermission):
    message = "only administrators may read the audit trail"

    def has_permission(self, request: Request, view: Any) -> bool:
        return access.is_administrator(request._request)


class FhirJsonRenderer(JSONRenderer):
    """``?format=fhir`` or ``Accept: application/fhir+json``: FHIR R4 resources."""

    media_type = "application/fhir+json"
    format = "fhir"


class PatientAuditView(APIView):
    """``GET /api/audit/patients/<patient_id>?issuer=...&page=N``: who saw this patient.

    Administrators only (401 anonymous, 403 others, and the refusal recorded). The
    patient's audit records, newest first, 100 a page; any issuer unless ``issuer`` is
    given (``issuer=`` for none). ``?format=fhir`` answers a FHIR R4 searchset Bundle of
    AuditEvent resources. Reading the trail is itself recorded (PS3.15 A.5.3.2).
    """

    permission_classes = [IsAuthenticated, IsAdministrator]
    renderer_classes = [JSONRenderer, FhirJsonRenderer]

    def _patient(self, request: Request) -> PatientRef:
        return PatientRef(self.kwargs["patient_id"], request.query_params.get("issuer") or "")

    def permission_denied(
        self, request: Request, message: str | None = None, code: str | None = None
    ) -> NoReturn:
        audit.record_audit_log_used(
            request, self._patient(request), outcome=audit.Outcome.MINOR_FAILURE
        )
        super().permission_denied(request, message, code)

    def get(self, request: Request, patient_id: str) -> Response:
        issuer = request.query_params.get("issuer")
        if len(patient_id) > LO or len(issuer or "") > LO:
            raise ViewerError(
                f"a Patient ID and its issuer (LO) have at most {LO} characters",
                code="bad_patient_id",
            )
        number = request.query_params.get("page", "1")
        if not number.isdigit() or int(number) < 1:
            raise ViewerError(
                f"page must be a positive integer, not '{number[:16]}'", code="bad_page"
            )
        paginator = Paginator(audit.events_for_patient(patient_id, issuer), AUDIT_PAGE_SIZE)
        try:
            page = paginator.page(int(number))
        except EmptyPage:
            raise NotFound(
                f"page {number} does not exist (there are {paginator.num_pages})",
                code="no_such_page",
            ) from None
        events = list(page.object_list)
        audit.record_audit_log_used(request, self._patient(request), outcome=audit.Outcome.SUCCESS)
        next_url = None
        if page.has_next():
            query = request.query_params.copy()
            query["page"] = str(page.next_page_number())
            next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
        if request.accepted_renderer.format == "fhir":
            bundle = fhir.searchset(
                events,
                total=paginator.count,
                self_url=request.build_absolute_uri(),
                next_url=next_url,
            )
            return Response(bundle, content_type="application/fhir+json")
        return Response(
            {
                "count": paginator.count,
                "page": page.number,
                "pages": paginator.num_pages,
                "next": next_url,
                "results": [serializers.audit_event_json(e) for e in events],
            }
        )
