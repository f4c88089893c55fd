"""Pages: worklist, study, upload. Views parse the request and render; no logic here."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST, require_safe

from viewer import access, ratelimit
from viewer.dicom.uids import uid_problem
from viewer.errors import NotFound, ViewerError
from viewer.middleware import embeddable
from viewer.services import audit, deidentify, sharing, upstream
from viewer.services.priors import relevant_priors
from viewer.worklist import PAGE_SIZE, SORTS, WorklistQuery

#: Studies a viewer page may show beside the first one (a 2×2 layout holds four).
MAX_COMPARED_STUDIES = 3
#: The worklist's parameters that name an identifier (and sorts by them).
DEIDENTIFIED_FILTERS = ("name", "patient_id", "accession")


@require_safe
@login_required
@embeddable
def worklist(request: HttpRequest) -> HttpResponse:
    params_given = request.GET.dict()
    deidentified = access.deidentified(request)
    if deidentified:
        # Filtering or sorting by an identifier would tell it (a match or an order): in a
        # de-identified share those parameters are left out (viewer.services.deidentify).
        for name in DEIDENTIFIED_FILTERS:
            params_given.pop(name, None)
        if params_given.get("sort", "").lstrip("-") in DEIDENTIFIED_FILTERS:
            params_given.pop("sort")
    query = WorklistQuery.from_params(params_given)
    visible = access.visible_studies(request)
    page = Paginator(query.studies(visible), PAGE_SIZE).get_page(request.GET.get("page"))
    # "compare with prior" opens the relevant prior (same modality, overlapping body part,
    # the latest earlier one; viewer.services.priors), computed for this page's rows only.
    page.object_list = list(page.object_list)
    chosen = relevant_priors(page.object_list, visible)
    for row in page.object_list:
        prior = chosen.get(row.pk)
        row.prior_uid = prior.study_instance_uid if prior else None  # type: ignore[attr-defined]
        if deidentified:
            row.shown = deidentify.study_display(row)  # type: ignore[attr-defined]
    audit.record_query(request, filters=query.filter_names(), count=page.paginator.count)
    params = request.GET.copy()
    params.pop("page", None)
    for name in DEIDENTIFIED_FILTERS if deidentified else ():
        params.pop(name, None)  # nor echoed in the page's links
    if deidentified and "sort" not in params_given:
        params.pop("sort", None)
    sort_params = params.copy()
    sort_params.pop("sort", None)
    # The upstream archives' studies not held here (viewer.services.upstream), on the
    # first page: scoped and audited there; an archive that does not answer is named.
    remote = (
        upstream.search_for_worklist(request, query, limit=PAGE_SIZE)
        if page.number == 1
        else upstream.RemoteResults()
    )
    return render(
        request,
        "viewer/worklist.html",
        {
            "query": query,
            "page": page,
            "remote": remote,
            "query_string": params.urlencode(),
            "sort_query_string": sort_params.urlencode(),
            "sorts": SORTS,
        },
    )


@access.require_login
@embeddable
def study(request: HttpRequest, study_instance_uid: str) -> HttpResponse:
    """The series list; the gate records the study as opened here (a 404 page otherwise)."""
    found = access.study_for(request, study_instance_uid, opened="study")
    series = list(found.series.order_by("series_number", "id"))
    if access.deidentified(request):  # the descriptions cleaned (viewer.services.deidentify)
        shown = deidentify.study_display(found)
        for row in series:
            row.shown_description = shown.series_descriptions.get(row.pk, "")  # type: ignore[attr-defined]
        found.shown = shown  # type: ignore[attr-defined]
    return render(request, "viewer/study.html", {"study": found, "series_list": series})


@login_required
def upload(request: HttpRequest) -> HttpResponse:
    access.check_may_store(request)
    return render(request, "viewer/upload.html")


def compared_study_uids(request: HttpRequest, first: str) -> list[str]:
    """The ``compare`` parameter: study UIDs, repeated or comma-separated, in order, each
    once, without the first study; 400 for a malformed UID or too many."""
    uids: list[str] = []
    for value in request.GET.getlist("compare"):
        for uid in (part.strip() for part in value.split(",")):
            if not uid:
                continue
            problem = uid_problem(uid)
            if problem:
                raise ViewerError(f"compare: the study UID {problem}", code="bad_compare")
            if uid != first and uid not in uids:
                uids.append(uid)
    if len(uids) > MAX_COMPARED_STUDIES:
        raise ViewerError(
            f"compare: {len(uids)} studies given; at most {MAX_COMPARED_STUDIES} fit beside the first",
            code="bad_compare",
        )
    return uids


@access.require_login
@embeddable
def viewer(request: HttpRequest, study_instance_uid: str) -> HttpResponse:
    """The image viewer for one study, and the studies of ``?compare=`` beside it; each
    passes ``access.study_for`` (the same 404 for unknown and not visible). The page
    loads every study through ``/api/studies/<uid>``."""
    uids = [study_instance_uid, *compared_study_uids(request, study_instance_uid)]
    studies = [access.study_for(request, uid, opened="viewer") for uid in uids]
    view = sharing.session_view(request)  # a share link's opening view, for the page's script
    share_view = json.dumps(view, separators=(",", ":")) if view else ""
    return render(
        request,
        "viewer/viewer.html",
        {"study": studies[0], "studies": studies, "share_view": share_view},
    )


@never_cache
@require_GET
@ratelimit.answers_429
def share_link(request: HttpRequest, token: str) -> HttpResponse:
    """``/s/<token>``: exchange the link's token for a share session, then go to the
    viewer; the token stays in this one URL (``viewer.services.sharing``). Too many unknown
    tokens from one address: 429 with Retry-After (``viewer.ratelimit.SHARE``)."""
    return _entered(sharing.open_link(request, token))


@never_cache
@require_GET
def share_continue(request: HttpRequest) -> HttpResponse:
    """``/s/continue/``: back from signing in for a "signed-in" link."""
    if not request.user.is_authenticated:
        return redirect_to_login_page("/s/continue/")
    return _entered(sharing.continue_after_sign_in(request))


def redirect_to_login_page(next_path: str) -> HttpResponse:
    from django.contrib.auth.views import redirect_to_login

    return redirect_to_login(next_path)


def _entered(opened: sharing.Opened) -> HttpResponse:
    if opened.needs_sign_in:
        return redirect_to_login_page(opened.landing)
    return redirect(opened.landing)


@login_required
@require_POST
def share_revoke(request: HttpRequest, share_id: str) -> HttpResponse:
    """The manage page's revoke button (a form POST with its CSRF token)."""
    sharing.revoke(request, share_id)
    return redirect("shares")


@require_safe
@login_required
def shares_page(request: HttpRequest) -> HttpResponse:
    """The user's share links (an administrator's: all): when each was opened, by how
    many, and a button that revokes it."""
    shares = list(sharing.shares_for(request)[:500])
    counts = sharing.visitor_counts(shares)
    rows = [(share, sharing.state_of(share), counts[share.pk]) for share in shares]
    return render(request, "viewer/shares.html", {"rows": rows})


def _checked_uid(study_instance_uid: str) -> str:
    problem = uid_problem(study_instance_uid)
    if problem:
        raise ViewerError(f"the study UID {problem}", code="bad_uid")
    return study_instance_uid


@login_required
@require_GET
@never_cache
def remote_study(request: HttpRequest, upstream_name: str, study_instance_uid: str) -> HttpResponse:
    """``/remote/<upstream>/<study uid>/``: a study held by an upstream archive, confirmed
    in this session's scope by the archive's QIDO-RS answer (else the same 404 as an
    unknown one), fetched into the archive in the background while the page shows the
    progress; a study held here already goes straight to the viewer."""
    entry = upstream.open_remote(request, upstream_name, _checked_uid(study_instance_uid))
    if entry is None:
        return redirect("viewer", study_instance_uid)
    return render(
        request,
        "viewer/remote_fetch.html",
        {"entry": entry, "upstream_name": upstream_name, "study_uid": study_instance_uid},
    )


@access.require_user
@require_GET
@never_cache
def remote_status(
    request: HttpRequest, upstream_name: str, study_instance_uid: str
) -> HttpResponse:
    """The progress page's poll (JSON): only for a remote study this session opened."""
    uid = _checked_uid(study_instance_uid)
    if not upstream.was_opened(request, upstream_name, uid):
        audit.record_refused(request, "remote-status", uid)
        raise NotFound("no such study", code="not_found")
    entry = upstream.entry_of(uid)
    viewer_url = reverse("viewer", args=[uid])
    return JsonResponse(upstream.status_json(entry, viewer_url))
