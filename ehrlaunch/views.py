"""Launch endpoints: signed EHR context, SMART App Launch, IHE Invoke Image Display, and the
popup sign-in.

Views stay thin: ``ehrlaunch.context`` parses and verifies, ``ehrlaunch.session`` opens
the session; these turn the outcome into a redirect or a page the EHR's frame may show.
A launch token is consumed on arrival and answered with a 303 to a clean URL, so it leaves
the address bar at once; the responses that carry it in their URL send
``Referrer-Policy: no-referrer`` and ``Cache-Control: no-store``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ehrlaunch import session, smart
from ehrlaunch.context import LaunchContext, verify_signed_launch
from ehrlaunch.errors import LaunchRefused
from ehrlaunch.iid import IidRequest, parse_iid
from viewer import ratelimit
from viewer.access import channel_of, scope_of
from viewer.dicom.patients import PatientRef
from viewer.middleware import embeddable
from viewer.services import audit

SESSION_IID = "loupe_iid"
HttpResponseT = TypeVar("HttpResponseT", bound=HttpResponseBase)


def _private(response: HttpResponse) -> HttpResponse:
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store"
    return response


def keep_opener(response: HttpResponseT) -> HttpResponseT:
    """No COOP isolation: a sign-in popup must keep ``window.opener`` (the EHR's frame).

    Django sends ``Cross-Origin-Opener-Policy: same-origin`` by default; on the popup's
    pages that severs the opener whenever the frame's top-level page (the EHR) is of
    another origin, and the one-time code could never reach the frame."""
    response["Cross-Origin-Opener-Policy"] = "unsafe-none"
    return response


def refused(request: HttpRequest, error: LaunchRefused) -> HttpResponse:
    """The page a clinician sees in the frame: what happened, what to do; no patient data."""
    return _private(render(request, "error.html", {"error": error}, status=error.status))


def _viewer_url(study_uid: str) -> str:
    return reverse("viewer", args=[study_uid])


def _open_session(request: HttpRequest, verify: Callable[[], LaunchContext]) -> HttpResponse:
    """A verified launch (signed or SMART) -> a session bound to it -> 303 to its study.

    A refusal ends any earlier session (it never stays open for an earlier patient), is
    audited without trusting the launch's claims, and shows the clinician its page.
    Refusals count against the client address; past LOUPE_RATE_LIMIT_LAUNCH the launch is
    not even verified (429, ``viewer.ratelimit``), and ends any earlier session too."""
    if (limited := ratelimit.limited(request, ratelimit.LAUNCH)) is not None:
        if request.user.is_authenticated:
            logout(request)
        return _private(limited)
    try:
        context = verify()
        opened = session.open_launch_session(request, context)
    except LaunchRefused as error:
        if request.user.is_authenticated:
            logout(request)
        ratelimit.count(request, ratelimit.LAUNCH)
        audit.record_launch_refused(request, channel="ehr", reason=error.code)
        return refused(request, error)
    _audit_launch(request, context, opened)
    landing = opened.landing
    target = _viewer_url(landing.study_instance_uid) if landing else reverse("worklist")
    return _private(HttpResponseRedirect(target, status=303))


def _audit_launch(
    request: HttpRequest, context: LaunchContext, opened: session.OpenedLaunch
) -> None:
    audit.record_launch(
        request,
        opened.user,
        patient=PatientRef(*opened.scope.patients[0]),
        study_uids=(
            [opened.landing.study_instance_uid] if opened.landing else list(opened.scope.studies)
        ),
        channel="ehr",
        outcome=audit.Outcome.SUCCESS,
        alternative_user_id=context.user,
    )


@csrf_exempt  # the EHR posts cross-site; the signed token is the proof, and it is single-use
@require_http_methods(["GET", "POST"])
@embeddable
def launch(request: HttpRequest) -> HttpResponse:
    """``/ehrlaunch/launch``: a signed EHR context (``launch`` in the query or a form body)."""
    token = (
        request.POST.get("launch", "")
        if request.method == "POST"
        else request.GET.get("launch", "")
    )
    return _open_session(request, lambda: verify_signed_launch(token))


@require_GET
@embeddable
def smart_launch(request: HttpRequest) -> HttpResponse:
    """``/ehrlaunch/smart?iss=&launch=``: SMART EHR launch; on to the EHR's authorize page.

    Only a registered ``iss`` is contacted (``ehrlaunch.smart``)."""
    iss, launch_id = request.GET.get("iss", ""), request.GET.get("launch", "")
    if (limited := ratelimit.limited(request, ratelimit.LAUNCH)) is not None:
        if request.user.is_authenticated:
            logout(request)
        return _private(limited)
    try:
        if not iss or not launch_id:
            raise LaunchRefused("a SMART launch needs both iss and launch", code="smart_bad_launch")
        authorize_url = smart.begin(request, smart.ehr_for_iss(iss), launch_id)
    except LaunchRefused as error:
        if request.user.is_authenticated:
            logout(request)  # a failed launch never leaves an earlier patient's session open
        ratelimit.count(request, ratelimit.LAUNCH)
        return refused(request, error)
    return _private(HttpResponseRedirect(authorize_url, status=303))


@require_GET
@embeddable
def smart_callback(request: HttpRequest) -> HttpResponse:
    """The EHR's authorization server returns here: code -> token -> FHIR -> session."""
    return _open_session(request, lambda: smart.complete(request))


@require_GET
@embeddable
def invoke_image_display(request: HttpRequest) -> HttpResponse:
    """IHE RAD-106 ``IHEInvokeImageDisplay``: validated, kept in the session, then shown.

    The request is stored in the session and the browser sent to a URL without it, so the
    patient ID does not stay in the address bar or in later Referers."""
    try:
        parse_iid(request.GET.dict())
    except LaunchRefused as error:
        return refused(request, error)
    request.session[SESSION_IID] = request.GET.dict()
    continue_url = reverse("ehrlaunch:iid-continue")
    if request.user.is_authenticated:
        return _private(HttpResponseRedirect(continue_url, status=303))
    if request.headers.get("Sec-Fetch-Dest") == "iframe":
        # Never show a login form in someone else's frame: sign in in a popup instead.
        return _private(render(request, "ehrlaunch/signin.html", {"next": continue_url}))
    login_url = f"{reverse(settings.LOGIN_URL)}?{urlencode({'next': continue_url})}"
    return _private(HttpResponseRedirect(login_url, status=303))


def iid_notices(iid: IidRequest) -> list[str]:
    """What the page says about the IID display options Loupe does not offer (RAD-106):

    * ``keyImagesOnly=true``: Loupe has no key-image selection, so every image is shown;
    * ``viewerType``: Loupe is one viewer and shows itself, whatever type is asked for;
    * ``diagnosticQuality`` needs no notice: images at rest are lossless (PNG) at full
      resolution, the tiles included, so a diagnostic-quality display is what is shown.
    """
    notices = []
    if iid.key_images_only:
        notices.append("Key-image selection is not available in Loupe; all images are shown.")
    if iid.viewer_type:
        notices.append(
            f"The viewer type '{iid.viewer_type}' is not available; Loupe's own viewer is shown."
        )
    return notices


@require_GET
@embeddable
def iid_continue(request: HttpRequest) -> HttpResponse:
    params = request.session.get(SESSION_IID)
    if not request.user.is_authenticated or not params:
        return refused(
            request,
            LaunchRefused("there is no image display request to continue", code="iid_missing"),
        )
    iid = parse_iid(params)
    studies = list(session.iid_studies(request, iid)[:200])
    notices = iid_notices(iid)
    if len(studies) == 1 and not notices:
        return HttpResponseRedirect(_viewer_url(studies[0].study_instance_uid), status=303)
    return render(
        request, "ehrlaunch/studies.html", {"studies": studies, "notices": notices, "iid": iid}
    )


@require_GET
def popup_start(request: HttpRequest) -> HttpResponse:
    """First page of the sign-in popup: log in (SSO or password), then hand back a code."""
    done = reverse("ehrlaunch:popup-done")
    if _own_sign_in(request):
        return keep_opener(HttpResponseRedirect(done))
    login_url = f"{reverse(settings.LOGIN_URL)}?{urlencode({'next': done})}"
    return keep_opener(_private(HttpResponseRedirect(login_url)))


def _own_sign_in(request: HttpRequest) -> bool:
    """A session the user signed in to themselves (SSO or password), not a launch's."""
    return request.user.is_authenticated and scope_of(request) is None


@require_GET
def popup_done(request: HttpRequest) -> HttpResponse:
    """In the popup, after login: a one-time code posted to the opener (same origin only).

    A launch-bound session (another patient's EHR launch in this browser) is never handed
    over: the popup asks for a sign-in instead."""
    user = request.user
    if not _own_sign_in(request) or not isinstance(user, User):
        return keep_opener(HttpResponseRedirect(reverse("ehrlaunch:popup-start")))
    code = session.create_handoff(user, channel_of(request))
    return keep_opener(_private(render(request, "ehrlaunch/popup_done.html", {"code": code})))


@require_POST
def handoff(request: HttpRequest) -> HttpResponse:
    """The frame redeems the popup's code for a session of its own (CSRF-checked); refused
    codes count against the address as refused launches do (``viewer.ratelimit``)."""
    if (limited := ratelimit.limited(request, ratelimit.LAUNCH)) is not None:
        return _private(limited)
    try:
        session.redeem_handoff(request, request.POST.get("code", ""))
    except LaunchRefused as error:
        ratelimit.count(request, ratelimit.LAUNCH)
        return refused(request, error)
    return HttpResponse(status=204)
