"""Who is asking, and what may they see: the gate every image and API request passes.

Today: a logged-in user sees every study (the radiologist's view). The EHR launch will
narrow a session to one patient here, in one place, for every route.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse

from viewer.errors import NotFound
from viewer.models import Instance, Series, Study


def require_user(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """401 JSON (not a login redirect) for image and data endpoints without a session."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            response = JsonResponse(
                {"code": "not_authenticated", "message": "log in to see images"}, status=401
            )
            response["WWW-Authenticate"] = 'Session realm="loupe"'
            return response
        return view(request, *args, **kwargs)

    return wrapper


def visible_studies(request: HttpRequest) -> QuerySet[Study]:
    return Study.objects.all()


def study_for(request: HttpRequest, study_uid: str) -> Study:
    found = (
        visible_studies(request)
        .select_related("patient")
        .filter(study_instance_uid=study_uid)
        .first()
    )
    if found is None:
        raise NotFound("no such study", code="not_found")
    return found


def series_for(request: HttpRequest, study_uid: str, series_uid: str) -> Series:
    found = (
        Series.objects.select_related("study")
        .filter(series_instance_uid=series_uid, study__in=visible_studies(request))
        .filter(study__study_instance_uid=study_uid)
        .first()
    )
    if found is None:
        raise NotFound("no such series", code="not_found")
    return found


def can_see(request: HttpRequest, study: Study) -> bool:
    """Whether this session may see ``study`` (the per-object form of visible_studies)."""
    return bool(request.user.is_authenticated)


def instance_for(request: HttpRequest, study_uid: str, series_uid: str, sop_uid: str) -> Instance:
    """The instance at this path, or the same 404 whether it is missing or not visible.

    One indexed lookup by SOP Instance UID (this runs for every image and tile); the
    path's series and study UIDs and the session's scope are then checked on the row."""
    found = (
        Instance.objects.select_related("series__study").filter(sop_instance_uid=sop_uid).first()
    )
    if (
        found is None
        or found.series.series_instance_uid != series_uid
        or found.series.study.study_instance_uid != study_uid
        or not can_see(request, found.series.study)
    ):
        raise NotFound("no such instance", code="not_found")
    return found
