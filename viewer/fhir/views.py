"""FHIR R4 under ``/fhir/``: ImagingStudy read and search, Endpoint read, and the
CapabilityStatement (``/fhir/metadata``).

Answers are ``application/fhir+json`` (``_format`` json, application/json or
application/fhir+json, or an Accept header allowing one of them; anything else, such as
XML, is 406). Every error is an OperationOutcome with its status: 400 for an unknown or
bad parameter (named), 401 without a session or bearer token, 403 in a de-identified
share session, 404 for a study that does not exist or that this session may not see
(the same 404, ``viewer.access``), 405 for a method other than GET or HEAD.

Who sees what is ``viewer.access``'s: ``visible_studies`` for a search, ``study_for`` for
a read. A de-identified share link's session is refused outright: an ImagingStudy names
the patient's identifier and accession number, which such a session must never see, and
a subject without its identifier would be no ImagingStudy a client could use.

Audit (PS3.15 A.5.3): a search is a Query (110112) with its parameters' *names* only,
and each study it answers with is recorded as accessed (A.5.3.6, aggregated per
session); a read is a DICOM Instances Accessed (110103) record, as every study's
metadata is; a refusal is recorded as one (outcome 4). The CapabilityStatement holds no
patient data: it needs no session and is not audited.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse

from viewer import access
from viewer.errors import Forbidden, NotFound, ViewerError
from viewer.fhir import resources, search
from viewer.models import Instance, Series
from viewer.services import audit

JSON_FORMATS = ("json", "application/json", resources.FHIR_JSON)
_STARTED = datetime.now(UTC).replace(microsecond=0).isoformat()


class NotAcceptable(ViewerError):
    status = 406
    code = "not_acceptable"


def respond(body: dict[str, Any], status: int = 200) -> HttpResponse:
    response = HttpResponse(
        json.dumps(body, ensure_ascii=False),
        status=status,
        content_type=f"{resources.FHIR_JSON}; charset=utf-8",
    )
    response["Cache-Control"] = "no-store"
    response["Vary"] = "Accept, Authorization, Cookie"
    return response


def outcome(status: int, code: str, message: str) -> HttpResponse:
    return respond(resources.operation_outcome(status, code, message), status)


def _accepts_json(accept: str) -> bool:
    if not accept.strip():
        return True
    for part in accept.split(","):
        kind, *params = [p.strip() for p in part.split(";")]
        quality = next((p[2:] for p in params if p.startswith("q=")), "1")
        try:
            refused = float(quality) == 0
        except ValueError:
            refused = False
        if not refused and kind.lower() in ("*/*", "application/*", *JSON_FORMATS[1:]):
            return True
    return False


def check_format(request: HttpRequest) -> None:
    """``_format`` (R4 http.html §2.21.0.6) wins over Accept; JSON only."""
    wanted = request.GET.get("_format")
    if wanted is not None:
        if wanted.split(";")[0].strip().lower() not in JSON_FORMATS:
            raise NotAcceptable(f"_format {wanted!r}: this server answers JSON only")
    elif not _accepts_json(request.headers.get("Accept", "")):
        raise NotAcceptable("Accept: this server answers application/fhir+json only")


def _route(request: HttpRequest) -> str:
    match = request.resolver_match
    return (match.url_name or "") if match else ""


def fhir_view(*, authenticated: bool = True) -> Callable[..., Callable[..., HttpResponse]]:
    """GET (and HEAD) only; the format checked; a session required (401 and its refusal
    recorded otherwise) and a de-identified share refused; every ViewerError raised as an
    OperationOutcome with its status."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in ("GET", "HEAD"):
                response = outcome(405, "method_not_allowed", f"{request.method} is not supported")
                response["Allow"] = "GET, HEAD"
                return response
            try:
                check_format(request)
                if authenticated and not request.user.is_authenticated:
                    audit.record_refused(request, _route(request), kwargs.get("study", ""))
                    response = outcome(401, "not_authenticated", "log in or send a bearer token")
                    response["WWW-Authenticate"] = 'Bearer realm="loupe"'
                    return response
                if authenticated and access.deidentified(request):
                    audit.record_refused(request, _route(request), kwargs.get("study", ""))
                    raise Forbidden(
                        "FHIR is not available in a de-identified share: an ImagingStudy "
                        "names the patient",
                        code="deidentified_share",
                    )
                return view(request, *args, **kwargs)
            except ViewerError as error:
                return outcome(error.status, error.code, error.message)

        return wrapper

    return decorate


def base_url(request: HttpRequest) -> str:
    return request.build_absolute_uri("/")


def _with_contents(studies: Any) -> Any:
    return studies.select_related("patient").prefetch_related(
        Prefetch("series", queryset=Series.objects.order_by("series_number", "id")),
        Prefetch(
            "series__instances",
            queryset=Instance.objects.order_by("instance_number", "id").only(
                "id", "series_id", "sop_instance_uid", "sop_class_uid", "instance_number"
            ),
        ),
    )


@fhir_view(authenticated=False)
def metadata(request: HttpRequest) -> HttpResponse:
    return respond(resources.capability_statement(base_url(request), _STARTED))


@fhir_view()
def imaging_study_read(request: HttpRequest, study: str) -> HttpResponse:
    if request.GET.keys() - {"_format"}:
        name = sorted(request.GET.keys() - {"_format"})[0]
        raise search.BadParameter(f"{name}: a read takes no parameter but _format")
    if not resources.FHIR_ID.fullmatch(study):
        audit.record_refused(request, _route(request), "")
        raise NotFound("no such ImagingStudy", code="not_found")
    try:
        found = access.study_for(request, study)
    except NotFound:
        raise NotFound("no such ImagingStudy", code="not_found") from None
    row = _with_contents(type(found).objects.filter(pk=found.pk)).get()
    return respond(resources.imaging_study(row))


def _page_link(request: HttpRequest, relation: str, offset: int, count: int) -> dict[str, str]:
    params = [(k, v) for k in request.GET for v in request.GET.getlist(k) if k != "_offset"]
    params = [(k, v) for k, v in params if k != "_count"] + [
        ("_count", str(count)),
        ("_offset", str(offset)),
    ]
    url = request.build_absolute_uri(f"{request.path}?{urlencode(params)}")
    return {"relation": relation, "url": url}


@fhir_view()
def imaging_study_search(request: HttpRequest) -> HttpResponse:
    asked = search.parse(request.GET)
    matching = access.visible_studies(request).filter(asked.filters)
    total = matching.count()
    audit.record_query(request, filters=asked.names, count=total)
    page = (
        list(
            _with_contents(matching.order_by("-study_date", "-study_time", "-id"))[
                asked.offset : asked.offset + asked.count
            ]
        )
        if asked.count
        else []
    )
    for study in page:
        audit.record_instances_accessed(
            request, study, count=study.number_of_study_related_instances
        )
    count = asked.count
    links = [_page_link(request, "self", asked.offset, count)]
    if count:
        last = max(total - 1, 0) // count * count
        links.append(_page_link(request, "first", 0, count))
        if asked.offset > 0:
            links.append(_page_link(request, "previous", max(asked.offset - count, 0), count))
        if asked.offset + count < total:
            links.append(_page_link(request, "next", asked.offset + count, count))
        links.append(_page_link(request, "last", last, count))
    base = base_url(request)
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": [
            {
                "fullUrl": f"{base}fhir/ImagingStudy/{study.study_instance_uid}",
                "resource": resources.imaging_study(study),
                "search": {"mode": "match"},
            }
            for study in page
        ],
    }
    if not bundle["entry"]:
        del bundle["entry"]
    return respond(bundle)


@fhir_view()
def endpoint_read(request: HttpRequest, endpoint: str) -> HttpResponse:
    found = resources.endpoint(endpoint, base_url(request))
    if found is None:
        raise NotFound(
            f"no such Endpoint (there are {resources.ENDPOINT_WADO} and {resources.ENDPOINT_IID})",
            code="not_found",
        )
    return respond(found)


@fhir_view()
def unknown(request: HttpRequest, rest: str) -> HttpResponse:
    raise NotFound(
        "not a resource this server has (ImagingStudy, Endpoint, metadata)", code="not_found"
    )
