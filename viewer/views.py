"""Pages: worklist, study, upload. Views parse the request and render; no logic here."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from viewer import access
from viewer.errors import NotFound
from viewer.models import Study
from viewer.services import audit
from viewer.worklist import PAGE_SIZE, SORTS, WorklistQuery


@login_required
def worklist(request: HttpRequest) -> HttpResponse:
    query = WorklistQuery.from_params(request.GET.dict())
    page = Paginator(query.studies(), PAGE_SIZE).get_page(request.GET.get("page"))
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
        },
    )


def _opened(request: HttpRequest, study_instance_uid: str, view: str) -> Study:
    """The study through the gate (recorded as opened in ``view``); a page's 404 is HTML."""
    try:
        return access.study_for(request, study_instance_uid, opened=view)
    except NotFound:
        raise Http404("no such study") from None


@access.require_login
def study(request: HttpRequest, study_instance_uid: str) -> HttpResponse:
    found = _opened(request, study_instance_uid, "study")
    series = found.series.order_by("series_number", "id")
    return render(request, "viewer/study.html", {"study": found, "series_list": series})


@login_required
def upload(request: HttpRequest) -> HttpResponse:
    return render(request, "viewer/upload.html")


@access.require_login
def viewer(request: HttpRequest, study_instance_uid: str) -> HttpResponse:
    """The image viewer; it loads the study through ``/api/studies/<uid>``."""
    found = _opened(request, study_instance_uid, "viewer")
    return render(request, "viewer/viewer.html", {"study": found})
