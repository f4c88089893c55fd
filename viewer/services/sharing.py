"""Tumor-board share links: capability URLs done right, and the live session they carry.

A link is ``/s/<token>``: 256 random bits (``secrets.token_urlsafe(32)``) handed out once at
creation; the database keeps only its SHA-256 (``ShareLink.token_sha256``), so a stolen
backup opens nothing. Opening it exchanges the token for a session bound to a
:class:`viewer.access.Scope` of channel ``share`` whose ``studies`` are the link's and
nothing else (the gate in ``viewer.access`` applies it to every page, API call, image,
tile and DICOMweb request), then redirects to the viewer: the token never appears in a
later URL, a Referer or the audit trail (which names the link's ``id``).

Read-only always: a share session acts in the role ``guest``, which may neither store,
measure, nor share again. "anyone-with-link" visitors without an account act as the link's
own guest account (no password, no role groups); "signed-in" links ask for a sign-in
first and keep the visitor's own account (in the share's read-only scope).

Every request of a share session checks the link (``check_session``, from
``viewer.middleware.ShareSessionMiddleware``): expired or revoked, it answers 410 saying
which. The state is read from the database and remembered per process for
``CHECK_SECONDS``, so a revocation holds on every node within that time (at once on the
node that revoked). Unknown tokens count against the client address: after
``LOUPE_SHARE_GUESS_LIMIT`` misses in ``GUESS_WINDOW_SECONDS`` the address gets 429
(``viewer.ratelimit.SHARE``, with Retry-After; in Redis across nodes).

A live link (``live``) carries the presenter's view: the presenter posts it
(:func:`publish`), each follower's event stream (``viewer.api.shares.live_events``) sends
it on when ``live_version`` moves. Presenting can be handed over to a signed-in visitor.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from viewer import access, ratelimit, requester
from viewer.dicom.patients import PatientRef
from viewer.dicom.uids import uid_problem
from viewer.errors import Forbidden, NotFound, ViewerError
from viewer.lru import Lru
from viewer.models import ShareLink, ShareVisitor, Study
from viewer.roles import ADMINISTRATOR, CLINICIAN, RADIOLOGIST
from viewer.services import audit

GUEST = "guest"  # the role a share session acts in (viewer.access)
TOKEN_BYTES = 32
DEFAULT_SECONDS = 72 * 3600
MIN_SECONDS = 60
MAX_STUDIES = 4
MAX_VIEW_BYTES = 16 * 1024
MAX_STATE_BYTES = 16 * 1024
VIEW_FIELDS = frozenset(
    {"layout", "series", "slice", "window", "zoom", "pan", "measurements", "viewports"}
)
CHECK_SECONDS = 10.0
GUESS_WINDOW_SECONDS = ratelimit.SHARE_WINDOW_SECONDS
SESSION_SHARE = audit.SESSION_SHARE  # {"id", "created_by"}: for the audit; never the token
SESSION_PENDING = "loupe_share_pending"  # a signed-in link's id while its visitor signs in
STREAM_SECONDS = 15  # a visitor counts as connected this long after its stream's last beat


class ShareGone(ViewerError):
    """The link expired or was revoked: the page says which (410)."""

    status = 410
    code = "share_gone"


class TooManyGuesses(ratelimit.RateLimited):
    code = "too_many_share_guesses"


@dataclass(frozen=True)
class Created:
    share: ShareLink
    token: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


# -- creating ------------------------------------------------------------------------


def check_may_share(request: HttpRequest) -> None:
    """Radiologists and administrators may share any study they see; a launched clinician
    the launched patient's; a share session never shares again."""
    role = access.role_of(request)
    scope = access.scope_of(request)
    if role in (RADIOLOGIST, ADMINISTRATOR) or (role == CLINICIAN and scope is not None):
        return
    raise Forbidden("this session may not create share links")


def _bool(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise ViewerError(f"'{name}' must be true or false", code="bad_share")
    return value


def _json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")))


def _view(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ViewerError("'view' must be an object", code="bad_share")
    unknown = sorted(set(value) - VIEW_FIELDS)
    if unknown:
        raise ViewerError(f"unknown field 'view.{unknown[0][:40]}'", code="bad_share")
    if _json_size(value) > MAX_VIEW_BYTES:
        raise ViewerError(f"'view' is larger than {MAX_VIEW_BYTES} bytes", code="bad_share")
    return value


def _expires_in(value: Any) -> int:
    cap: int = settings.LOUPE_SHARE_MAX_SECONDS
    if value is None:
        return min(DEFAULT_SECONDS, cap)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ViewerError("'expires_in' must be a whole number of seconds", code="bad_share")
    if value < MIN_SECONDS:
        raise ViewerError(f"'expires_in' must be at least {MIN_SECONDS} seconds", code="bad_share")
    return min(value, cap)


def _studies(request: HttpRequest, value: Any) -> list[Study]:
    if not isinstance(value, list) or not value:
        raise ViewerError(
            "'study_instance_uids' must be a non-empty list of Study Instance UIDs",
            code="bad_share",
        )
    if len(value) > MAX_STUDIES:
        raise ViewerError(
            f"a share link holds at most {MAX_STUDIES} studies; {len(value)} given",
            code="bad_share",
        )
    uids: list[str] = []
    for uid in value:
        problem = uid_problem(uid) if isinstance(uid, str) else "is not a string"
        if problem:
            raise ViewerError(f"study_instance_uids: the UID {problem}", code="bad_share")
        if uid not in uids:
            uids.append(uid)
    # The gate: the same 404 for an unknown study and one this session may not see.
    return [access.study_for(request, uid) for uid in uids]


def create(request: HttpRequest, body: Any) -> Created:
    """A new link from the API's body (``POST /api/shares``); each field checked, a
    wrong one a 400 naming it, nothing stored then. Recorded as a Data Export (PS3.15
    A.5.3.4) of each study with the link's id."""
    check_may_share(request)
    if not isinstance(body, dict):
        raise ViewerError("the request body must be a JSON object", code="invalid_body")
    allowed = {"study_instance_uids", "view", "audience", "expires_in", "deidentify", "live"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ViewerError(f"unknown field '{unknown[0][:40]}'", code="unknown_field")
    audience = body.get("audience", ShareLink.Audience.ANYONE)
    if audience not in ShareLink.Audience.values:
        raise ViewerError(
            '\'audience\' must be "anyone-with-link" or "signed-in"', code="bad_share"
        )
    view = _view(body.get("view"))
    seconds = _expires_in(body.get("expires_in"))
    deidentify = _bool(body, "deidentify", False)
    live = _bool(body, "live", False)
    studies = _studies(request, body.get("study_instance_uids"))
    return _make(
        request,
        request.user,
        studies,
        view=view,
        audience=audience,
        seconds=seconds,
        deidentify=deidentify,
        live=live,
    )


def create_for_user(
    user: Any,
    studies: list[Study],
    *,
    live: bool = False,
    deidentify: bool = False,
    seconds: int = DEFAULT_SECONDS,
    view: dict[str, Any] | None = None,
) -> Created:
    """A link made outside a request (``manage.py demo``'s tumor-board link): ``user``
    is its creator and, when live, its presenter; audited as a Data Export by that user
    on the command line. The caller chose the studies (no session's gate applies)."""
    return _make(
        None,
        user,
        studies,
        view=view or {},
        audience=ShareLink.Audience.ANYONE,
        seconds=min(max(seconds, MIN_SECONDS), settings.LOUPE_SHARE_MAX_SECONDS),
        deidentify=deidentify,
        live=live,
    )


def _make(
    request: HttpRequest | None,
    user: Any,
    studies: list[Study],
    *,
    view: dict[str, Any],
    audience: str,
    seconds: int,
    deidentify: bool,
    live: bool,
) -> Created:
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = timezone.now()
    with transaction.atomic():
        share = ShareLink(
            id=_new_id("sh"),
            token_sha256=_digest(token),
            study_uids=[s.study_instance_uid for s in studies],
            view=view,
            audience=audience,
            deidentify=deidentify,
            live=live,
            created_by=user,
            created_by_user_id=requester.user_id(request) if request else user.get_username(),
            created_at=now,
            expires_at=now + dt.timedelta(seconds=seconds),
            presenter=user if live else None,
        )
        if audience == ShareLink.Audience.ANYONE:
            guest = User(username=f"share:{share.id}")
            guest.set_unusable_password()
            guest.save()
            share.guest = guest
        share.save(force_insert=True)
        for study in studies:
            audit.record_export(
                request,
                study,
                outcome=audit.Outcome.SUCCESS,
                kind="share",
                share_link_id=share.id,
                user=None if request else user.get_username(),
            )
    return Created(share, token)


def link_path(token: str) -> str:
    return f"/s/{token}"


# -- the state of a link ---------------------------------------------------------------

ACTIVE, EXPIRED, REVOKED = "active", "expired", "revoked"

# share id -> (expires_at, revoked): the per-process memory of check_session.
_states: Lru[str, tuple[dt.datetime, bool]] = Lru(entries=10_000, seconds=CHECK_SECONDS)


def state_of(share: ShareLink, now: dt.datetime | None = None) -> str:
    if share.revoked_at is not None:
        return REVOKED
    return EXPIRED if share.expires_at <= (now or timezone.now()) else ACTIVE


def _gone(state: str) -> ShareGone:
    if state == REVOKED:
        return ShareGone("This share link was revoked by the person who shared it")
    return ShareGone("This share link has expired")


def check_session(request: HttpRequest, scope: access.Scope) -> None:
    """Raise :class:`ShareGone` (410) when the share session's link has expired or was
    revoked (the link's state read at most every CHECK_SECONDS per process)."""
    share_id = scope.source
    known = _states.get(share_id)
    if known is None:
        row = ShareLink.objects.filter(pk=share_id).values_list("expires_at", "revoked_at").first()
        known = (row[0], row[1] is not None) if row else (timezone.now(), True)
        _states.set(share_id, known)
    expires_at, revoked = known
    if revoked:
        raise _gone(REVOKED)
    if expires_at <= timezone.now():
        raise _gone(EXPIRED)


# -- opening ---------------------------------------------------------------------------


def _check_guesses(request: HttpRequest) -> None:
    ratelimit.check(request, ratelimit.SHARE, error=TooManyGuesses)


def _count_miss(request: HttpRequest) -> None:
    ratelimit.count(request, ratelimit.SHARE)


@dataclass(frozen=True)
class Opened:
    share: ShareLink
    landing: str  # the viewer's path, no token in it
    needs_sign_in: bool = False


def _landing(share: ShareLink) -> str:
    first, *others = share.study_uids
    suffix = f"?compare={','.join(others)}" if others else ""
    return f"/viewer/{first}/{suffix}"


def open_link(request: HttpRequest, token: str) -> Opened:
    """Exchange ``token`` for a share session (``/s/<token>``): 404 for an unknown token
    (counted against the client address), 429 after too many, 410 for an expired or
    revoked link; a "signed-in" link with nobody signed in remembers the link's id in the
    session and says so (``needs_sign_in``: the page sends the visitor to sign in and
    back to ``/s/continue/``)."""
    _check_guesses(request)
    share = (
        ShareLink.objects.select_related("guest", "created_by")
        .filter(token_sha256=_digest(token or ""))
        .first()
        if 20 <= len(token or "") <= 100
        else None
    )
    if share is None:
        _count_miss(request)
        audit.record_launch_refused(request, channel="share", reason="unknown_share_token")
        raise NotFound("no such share link", code="not_found")
    return _enter(request, share)


def continue_after_sign_in(request: HttpRequest) -> Opened:
    """``/s/continue/``: the signed-in link remembered before the sign-in."""
    share_id = request.session.pop(SESSION_PENDING, None)
    share = (
        ShareLink.objects.select_related("guest", "created_by").filter(pk=share_id).first()
        if isinstance(share_id, str)
        else None
    )
    if share is None:
        raise NotFound("no share link is waiting for this sign-in", code="not_found")
    return _enter(request, share)


def _is_guest_account(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and str(
        getattr(user, "username", "")
    ).startswith("share:")


def _enter(request: HttpRequest, share: ShareLink) -> Opened:
    from ehrlaunch.session import log_in  # ehrlaunch imports viewer; keep this one-way

    state = state_of(share)
    if state != ACTIVE:
        audit.record_launch_refused(request, channel="share", reason=f"share_{state}")
        raise _gone(state)
    signed_in = request.user.is_authenticated and not _is_guest_account(request.user)
    if share.audience == ShareLink.Audience.SIGNED_IN and not signed_in:
        request.session[SESSION_PENDING] = share.id
        return Opened(share, "/s/continue/", needs_sign_in=True)
    user = request.user if signed_in else share.guest
    if user is None:  # a signed-in link always has a signed-in visitor here
        raise NotFound("no such share link", code="not_found")
    log_in(
        request,
        user,  # type: ignore[arg-type]
        channel="share",
        alternative_user=f"share-link:{share.id}",
    )
    access.bind_scope(
        request,
        access.Scope(
            role=GUEST,
            channel="share",
            studies=tuple(share.study_uids),
            source=share.id,
            options={
                "deidentify": "1" if share.deidentify else "",
                "live": "1" if share.live else "",
            },
        ),
    )
    request.session[SESSION_SHARE] = {"id": share.id, "created_by": share.created_by_user_id}
    request.session.save()  # the visitor row keys on the session
    now = timezone.now()
    ShareLink.objects.filter(pk=share.pk).update(open_count=F("open_count") + 1, last_opened_at=now)
    ShareLink.objects.filter(pk=share.pk, first_opened_at__isnull=True).update(first_opened_at=now)
    visitor_for(request, share, create=True)
    opened = Study.objects.select_related("patient").filter(study_instance_uid__in=share.study_uids)
    for study in opened:
        audit.record_launch(
            request,
            request.user,  # type: ignore[arg-type]
            patient=PatientRef.of(study),
            study_uids=[study.study_instance_uid],
            channel="share",
            outcome=audit.Outcome.SUCCESS,
            alternative_user_id=f"share-link:{share.id}",
        )
    return Opened(share, _landing(share))


def session_view(request: HttpRequest) -> dict[str, Any] | None:
    """The view a share session's link opens with (its ``view``: layout, viewports ...,
    static/viewer/js/sharedView.js applies it); None outside a share session."""
    scope = access.share_scope(request)
    if scope is None:
        return None
    view = ShareLink.objects.filter(pk=scope.source).values_list("view", flat=True).first()
    return view if isinstance(view, dict) and view else None


# -- visitors --------------------------------------------------------------------------


def _session_digest(request: HttpRequest) -> str:
    return requester.session_hash(request) or "none"


def visitor_for(
    request: HttpRequest, share: ShareLink, *, create: bool = False
) -> ShareVisitor | None:
    """This browser session's visitor row of ``share`` (made on open)."""
    digest = _session_digest(request)
    found = ShareVisitor.objects.filter(share=share, session_sha256=digest).first()
    if found is not None or not create:
        return found
    user = request.user
    signed_in = user.is_authenticated and not _is_guest_account(user)
    name = ""
    if signed_in:
        name = (user.get_full_name() or user.get_username())[:255]  # type: ignore[union-attr]
    visitor, _ = ShareVisitor.objects.get_or_create(
        share=share,
        session_sha256=digest,
        defaults={
            "id": _new_id("v"),
            "user": user if signed_in else None,
            "display_name": name or "Guest",
            "signed_in": signed_in,
            "client_address": requester.client_address(request)[:64],
        },
    )
    return visitor


# -- managing --------------------------------------------------------------------------


def shares_for(request: HttpRequest) -> QuerySet[ShareLink]:
    """The links this user created; every link for an administrator."""
    if access.scope_of(request) is not None and access.channel_of(request) == "share":
        return ShareLink.objects.none()
    links = ShareLink.objects.select_related("created_by").order_by("-created_at")
    if access.is_administrator(request):
        return links
    return links.filter(created_by_id=getattr(request.user, "pk", None))


def managed(request: HttpRequest, share_id: str) -> ShareLink:
    """A link this user may manage (its creator, an administrator); 404 otherwise."""
    found = shares_for(request).filter(pk=share_id).first() if len(share_id) <= 24 else None
    if found is None:
        raise NotFound("no such share link", code="not_found")
    return found


def revoke(request: HttpRequest, share_id: str) -> ShareLink:
    """Revoke a link: from the next request on (within CHECK_SECONDS on other nodes) every
    page, image and event stream of it answers 410. Revoking twice changes nothing."""
    share = managed(request, share_id)
    if share.revoked_at is None:
        share.revoked_at = timezone.now()
        share.revoked_by_user_id = requester.user_id(request)[:255]
        share.save(update_fields=["revoked_at", "revoked_by_user_id"])
    _states.forget_where(lambda key: key == share.id)
    return share


def visitor_counts(shares: list[ShareLink]) -> dict[str, int]:
    """How many browser sessions opened each link."""
    counts: dict[str, int] = {s.pk: 0 for s in shares}
    for share_id in ShareVisitor.objects.filter(share__in=shares).values_list(
        "share_id", flat=True
    ):
        counts[share_id] += 1
    return counts


# -- live ------------------------------------------------------------------------------


def live_share(request: HttpRequest, share_id: str) -> ShareLink:
    """A live link this session takes part in: as a visitor of it (a share session of this
    link), or as its presenter or creator. 404 otherwise (as for an unknown link); 410 when
    it expired or was revoked."""
    share = (
        ShareLink.objects.select_related("presenter").filter(pk=share_id, live=True).first()
        if len(share_id) <= 24
        else None
    )
    if share is None or not takes_part(request, share):
        raise NotFound("no such share link", code="not_found")
    state = state_of(share)
    if state != ACTIVE:
        raise _gone(state)
    return share


def takes_part(request: HttpRequest, share: ShareLink) -> bool:
    scope = access.scope_of(request)
    if scope is not None and scope.channel == "share":
        return scope.source == share.pk
    user_pk = getattr(request.user, "pk", None)
    return user_pk is not None and user_pk in (share.created_by_id, share.presenter_id)


def _check_uid(value: Any, name: str) -> str:
    if not isinstance(value, str) or uid_problem(value):
        raise ViewerError(f"'{name}' must be a DICOM UID", code="bad_live_state")
    return value


def _check_state(share: ShareLink, state: Any) -> dict[str, Any]:
    """The presenter's view: ``{"layout", "viewports": [{"study_instance_uid",
    "series_instance_uid", "sop_instance_uid", "frame", "window", "zoom", "pan"}],
    "active", "measurement"}``; every study in it must be the link's (a presenter
    never shows followers anything outside the scope)."""
    if not isinstance(state, dict):
        raise ViewerError("the live state must be a JSON object", code="bad_live_state")
    if _json_size(state) > MAX_STATE_BYTES:
        raise ViewerError(
            f"the live state is larger than {MAX_STATE_BYTES} bytes", code="bad_live_state"
        )
    viewports = state.get("viewports", [])
    if not isinstance(viewports, list) or len(viewports) > 16:
        raise ViewerError("'viewports' must be a list of at most 16", code="bad_live_state")
    for n, viewport in enumerate(viewports):
        if not isinstance(viewport, dict):
            raise ViewerError(f"'viewports[{n}]' must be an object", code="bad_live_state")
        study = viewport.get("study_instance_uid")
        if study is not None and _check_uid(study, f"viewports[{n}].study_instance_uid") not in (
            share.study_uids
        ):
            raise Forbidden(
                f"viewports[{n}] shows a study outside this share link", code="outside_share"
            )
        for key in ("series_instance_uid", "sop_instance_uid"):
            if viewport.get(key) is not None:
                _check_uid(viewport[key], f"viewports[{n}].{key}")
    return state


def publish(request: HttpRequest, share_id: str, state: Any) -> ShareLink:
    """The presenter's new view; followers' streams send it on within their poll."""
    share = live_share(request, share_id)
    if share.presenter_id != getattr(request.user, "pk", None):
        raise Forbidden(
            "only the presenter may change what the followers see", code="not_presenter"
        )
    checked = _check_state(share, state)
    ShareLink.objects.filter(pk=share.pk).update(
        live_state=checked, live_version=F("live_version") + 1, live_updated_at=timezone.now()
    )
    share.refresh_from_db(fields=["live_state", "live_version", "live_updated_at"])
    return share


def hand_over(request: HttpRequest, share_id: str, visitor_id: Any) -> ShareLink:
    """The presenter (or the creator) hands presenting to a signed-in visitor."""
    share = live_share(request, share_id)
    user_pk = getattr(request.user, "pk", None)
    if user_pk not in (share.presenter_id, share.created_by_id):
        raise Forbidden("only the presenter may hand presenting over", code="not_presenter")
    visitor = (
        ShareVisitor.objects.filter(share=share, pk=visitor_id).select_related("user").first()
        if isinstance(visitor_id, str)
        else None
    )
    if visitor is None:
        raise NotFound("no such follower of this link", code="not_found")
    if not visitor.signed_in or visitor.user is None:
        raise ViewerError(
            "presenting can be handed only to a signed-in follower", code="follower_not_signed_in"
        )
    ShareLink.objects.filter(pk=share.pk).update(
        presenter=visitor.user, live_version=F("live_version") + 1, live_updated_at=timezone.now()
    )
    share.refresh_from_db()
    return share


def set_following(request: HttpRequest, share_id: str, following: Any) -> ShareVisitor:
    share = live_share(request, share_id)
    if not isinstance(following, bool):
        raise ViewerError("'following' must be true or false", code="bad_request")
    visitor = visitor_for(request, share, create=True)
    assert visitor is not None
    ShareVisitor.objects.filter(pk=visitor.pk).update(following=following)
    ShareLink.objects.filter(pk=share.pk).update(live_version=F("live_version") + 1)
    visitor.following = following
    return visitor


def beat(request: HttpRequest, share: ShareLink) -> None:
    """This session's event stream is connected (for the follower count)."""
    visitor = visitor_for(request, share, create=True)
    if visitor is None:
        return
    now = timezone.now()
    was_connected = visitor.streaming_until is not None and visitor.streaming_until > now
    ShareVisitor.objects.filter(pk=visitor.pk).update(
        last_seen_at=now, streaming_until=now + dt.timedelta(seconds=STREAM_SECONDS)
    )
    if not was_connected:  # one more follower: every stream says so
        ShareLink.objects.filter(pk=share.pk).update(live_version=F("live_version") + 1)


def live_message(share: ShareLink, *, for_user_pk: Any = None) -> dict[str, Any]:
    """What every stream sends: the presenter's view, who presents, how many follow; the
    presenter also gets the signed-in visitors they may hand presenting to."""
    now = timezone.now()
    connected = ShareVisitor.objects.filter(share=share, streaming_until__gt=now)
    if share.presenter_id is not None:
        connected = connected.exclude(user_id=share.presenter_id, signed_in=True)
    presenter = share.presenter
    message: dict[str, Any] = {
        "version": share.live_version,
        "presenter": (
            (presenter.get_full_name() or presenter.get_username()) if presenter else None
        ),
        "followers": connected.filter(following=True).count(),
        "connected": connected.count(),
        "state": share.live_state,
        "you_present": for_user_pk is not None and for_user_pk == share.presenter_id,
    }
    if message["you_present"] or for_user_pk == share.created_by_id:
        message["signed_in_followers"] = [
            {"id": v.pk, "name": v.display_name}
            for v in connected.filter(signed_in=True).order_by("opened_at")
        ]
    return message
