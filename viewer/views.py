"""Pages: worklist, study, upload. Views parse the request and render; no logic here."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from viewer.models import Study
from viewer.worklist import PAGE_SIZE, SORTS, WorklistQuery


@login_required
def worklist(request: HttpRequest) -> HttpResponse:
    query = WorklistQuery.from_params(request.GET.dict())
    page = Paginator(query.studies(), PAGE_SIZE).get_page(request.GET.get("page"))
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


@login_required
def study(request: HttpRequest, study_instance_uid: str) -> HttpResponse:
    found = get_object_or_404(
        Study.objects.select_related("patient"), study_instance_uid=study_instance_uid
    )
    series = found.series.order_by("series_number", "id")
    return render(request, "viewer/study.html", {"study": found, "series_list": series})


@login_required
def upload(request: HttpRequest) -> HttpResponse:
    return render(request, "viewer/upload.html")


@login_required
def viewer(request: HttpRequest, study_instance_uid: str) -> HttpResponse:
    """The image viewer; it loads the study through ``/api/studies/<uid>``."""
    found = get_object_or_404(Study, study_instance_uid=study_instance_uid)
    return render(request, "viewer/viewer.html", {"study": found, "studies": [found]})
