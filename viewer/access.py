"""Who is asking, and what may they see: the gate every image and API request passes.

Today: a logged-in user sees every study (the radiologist's view). The EHR launch will
narrow a session to one patient here, in one place, for every route.

The gates also write the audit trail (``viewer.services.audit``), so that no route can
reveal a study without its record: a study, series or instance handed out is recorded
as accessed (PS3.15 A.5.3.6, aggregated per session), and a refusal as a minor failure:
a 401, or a gate's 404 (a missing study and one this session may not see answer the same
404, and both are recorded, with the patient when the study exists). When the record cannot be written
the gate raises AuditUnavailable (503) and the view never runs on.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.views import redirect_to_login
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse

from viewer.errors import NotFound
from viewer.models import Instance, Series, Study
from viewer.services import audit

ADMINISTRATOR_GROUP = "administrator"


def _route(request: HttpRequest) -> str:
    match = request.resolver_match
    return (match.url_name or "") if match else ""


def require_user(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """401 JSON (not a login redirect) for image and data endpoints without a session."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            audit.record_refused(request, _route(request), kwargs.get("study", ""))
            response = JsonResponse(
                {"code": "not_authenticated", "message": "log in to see images"}, status=401
            )
            response["WWW-Authenticate"] = 'Session realm="loupe"'
            return response
        return view(request, *args, **kwargs)

    return wrapper


def require_login(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """For a study's pages: the log-in redirect, with the refusal recorded."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            audit.record_refused(request, _route(request), kwargs.get("study_instance_uid", ""))
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapper


def is_administrator(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Staff, or a member of the "administrator" group: may read the audit trail."""
    if not user.is_authenticated:
        return False
    groups = getattr(user, "groups", None)
    return bool(
        getattr(user, "is_staff", False)
        or (groups is not None and groups.filter(name=ADMINISTRATOR_GROUP).exists())
    )


def visible_studies(request: HttpRequest) -> QuerySet[Study]:
    return Study.objects.all()


def study_for(request: HttpRequest, study_uid: str, *, opened: str = "") -> Study:
    """The study, recorded as accessed; or, when ``opened`` names a page, as opened there."""
    found = (
        visible_studies(request)
        .select_related("patient")
        .filter(study_instance_uid=study_uid)
        .first()
    )
    if found is None:
        audit.record_refused(request, _route(request), study_uid)
        raise NotFound("no such study", code="not_found")
    if opened:
        audit.record_study_opened(request, found, view=opened)
    else:
        audit.record_instances_accessed(
            request, found, count=found.number_of_study_related_instances
        )
    return found


def series_for(request: HttpRequest, study_uid: str, series_uid: str) -> Series:
    found = (
        Series.objects.select_related("study__patient")
        .filter(series_instance_uid=series_uid, study__in=visible_studies(request))
        .filter(study__study_instance_uid=study_uid)
        .first()
    )
    if found is None:
        audit.record_refused(request, _route(request), study_uid)
        raise NotFound("no such series", code="not_found")
    audit.record_instances_accessed(
        request, found.study, count=found.number_of_series_related_instances
    )
    return found


def can_see(request: HttpRequest, study: Study) -> bool:
    """Whether this session may see ``study`` (the per-object form of visible_studies)."""
    return bool(request.user.is_authenticated)


def instance_for(request: HttpRequest, study_uid: str, series_uid: str, sop_uid: str) -> Instance:
    """The instance at this path, or the same 404 whether it is missing or not visible.

    One indexed lookup by SOP Instance UID (this runs for every image and tile); the
    path's series and study UIDs and the session's scope are then checked on the row.
    Its audit record costs no query once this session's access to the study is recorded."""
    found = (
        Instance.objects.select_related("series__study__patient")
        .filter(sop_instance_uid=sop_uid)
        .first()
    )
    if (
        found is None
        or found.series.series_instance_uid != series_uid
        or found.series.study.study_instance_uid != study_uid
        or not can_see(request, found.series.study)
    ):
        audit.record_refused(request, _route(request), study_uid)
        raise NotFound("no such instance", code="not_found")
    audit.record_instances_accessed(request, found.series.study, count=1)
    return found
