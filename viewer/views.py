"""Pages: worklist, study, upload. Views parse the request and render; no logic here."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from viewer import access
from viewer.middleware import embeddable
from viewer.services import audit
from viewer.worklist import PAGE_SIZE, SORTS, WorklistQuery


@login_required
@embeddable
def worklist(request: HttpRequest) -> HttpResponse:
    query = WorklistQuery.from_params(request.GET.dict())
    page = Paginator(query.studies(access.visible_studies(request)), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    audit.record_query(request, filters=query.filter_names(), count=page.paginator.count)
    params = request.GET.copy()
    params.pop("page", None)
    sort_params = params.copy()
    sort_params.pop("sort", None)
    return render(
        request,
        "viewer/worklist.html",
        {
            "query": query,
            "page": page,
            "query_string": params.urlencode(),
            "sort_query_string": sort_params.urlencode(),
            "sorts": SORTS,
            "role": access.role_of(request),
        },
    )


@access.require_login
@embeddable
def study(request: HttpRequest, study_instance_uid: str) -> HttpResponse:
    """The series list; the gate records the study as opened here (a 404 page otherwise)."""
    found = access.study_for(request, study_instance_uid, opened="study")
    series = found.series.order_by("series_number", "id")
    return render(request, "viewer/study.html", {"study": found, "series_list": series})


@login_required
def upload(request: HttpRequest) -> HttpResponse:
    access.check_may_store(request)
    return render(request, "viewer/upload.html")


@access.require_login
@embeddable
def viewer(request: HttpRequest, study_instance_uid: str) -> HttpResponse:
    """The image viewer; it loads the study through ``/api/studies/<uid>``."""
    found = access.study_for(request, study_instance_uid, opened="viewer")
    return render(request, "viewer/viewer.html", {"study": found})
