"""Share links over HTTP: thin views over ``viewer.services.sharing``.

* ``POST /api/shares`` ``{"study_instance_uids": [...], "view": {...}, "audience":
  "anyone-with-link" | "signed-in", "expires_in": seconds, "deidentify": bool, "live":
  bool}`` → 201 ``{"id", "url", "expires_at"}`` (and the rest of :func:`share_json`);
  the ``url`` holds the token, shown this once and never stored;
* ``GET /api/shares`` → the links this user created (an administrator: all), newest
  first; ``GET /api/shares/<id>`` one of them; ``DELETE /api/shares/<id>`` revokes (204);
* live links: ``GET /api/shares/<id>/live`` the event stream (``text/event-stream``: an
  ``event: state`` whenever the presenter's view, the presenter or the followers change;
  ``event: gone`` with the reason when the link expires or is revoked);
  ``POST /api/shares/<id>/live`` ``{"state": {...}}`` the presenter's view;
  ``POST /api/shares/<id>/presenter`` ``{"visitor": "<id>"}`` hands presenting over;
  ``POST /api/shares/<id>/following`` ``{"following": bool}`` a follower detaches or
  follows again.

An unknown link and one this user may not manage get the same 404.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt
from rest_framework.decorators import api_view
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from viewer import access
from viewer.errors import ViewerError
from viewer.models import ShareLink
from viewer.services import sharing

POLL_SECONDS = 0.2
STREAM_LIFETIME_SECONDS = 120  # then the browser's EventSource reconnects (and re-checks)
# A WSGI application learns that its client left only when a write fails: a comment line
# every second ends the stream of a closed page within about two seconds, instead of
# holding a server thread (and polling the database) for the rest of its lifetime.
# Proxies that drop idle connections see traffic too.
KEEPALIVE_SECONDS = 1.0

_streams_lock = threading.Lock()
_open_streams = 0


def open_streams() -> int:
    """How many event streams this process is serving now (each holds a server thread)."""
    with _streams_lock:
        return _open_streams


def _count_stream(change: int) -> None:
    global _open_streams
    with _streams_lock:
        _open_streams += change


def _time(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def share_json(
    share: ShareLink, *, visitors: int | None = None, url: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": share.pk,
        "study_instance_uids": list(share.study_uids),
        "view": share.view,
        "audience": share.audience,
        "deidentify": share.deidentify,
        "live": share.live,
        "created_by": share.created_by_user_id,
        "created_at": _time(share.created_at),
        "expires_at": _time(share.expires_at),
        "revoked_at": _time(share.revoked_at),
        "state": sharing.state_of(share),
        "open_count": share.open_count,
        "first_opened_at": _time(share.first_opened_at),
        "last_opened_at": _time(share.last_opened_at),
    }
    if visitors is not None:
        body["visitors"] = visitors
    if url is not None:
        body["url"] = url
    return body


class SharesView(APIView):
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]

    def get(self, request: Request) -> Response:
        shares = list(sharing.shares_for(request._request)[:500])
        counts = sharing.visitor_counts(shares)
        return Response([share_json(s, visitors=counts[s.pk]) for s in shares])

    def post(self, request: Request) -> Response:
        created = sharing.create(request._request, request.data)
        url = request.build_absolute_uri(sharing.link_path(created.token))
        return Response(share_json(created.share, visitors=0, url=url), status=201)


class ShareView(APIView):
    renderer_classes = [JSONRenderer]

    def get(self, request: Request, share: str) -> Response:
        found = sharing.managed(request._request, share)
        return Response(share_json(found, visitors=sharing.visitor_counts([found])[found.pk]))

    def delete(self, request: Request, share: str) -> Response:
        sharing.revoke(request._request, share)
        return Response(status=204)


def _field(request: Request, name: str) -> Any:
    body = request.data
    if not isinstance(body, dict) or name not in body:
        raise ViewerError(f"the field '{name}' is missing", code="missing_field")
    return body[name]


@api_view(["POST"])
def presenter(request: Request, share: str) -> Response:
    found = sharing.hand_over(request._request, share, _field(request, "visitor"))
    return Response(sharing.live_message(found, for_user_pk=request.user.pk))


@api_view(["POST"])
def following(request: Request, share: str) -> Response:
    visitor = sharing.set_following(request._request, share, _field(request, "following"))
    return Response({"following": visitor.following})


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _stream(request: HttpRequest, share_id: str, user_pk: Any) -> Iterator[bytes]:
    """Poll the link's row (cheap: its primary key) and send the view when it changed."""
    sent_version = -1
    started = last_beat = last_sent = time.monotonic()
    _count_stream(+1)
    try:
        yield b"retry: 1000\n\n"
        while time.monotonic() - started < STREAM_LIFETIME_SECONDS:
            share = ShareLink.objects.select_related("presenter").filter(pk=share_id).first()
            state = sharing.state_of(share) if share is not None else sharing.REVOKED
            if share is None or state != sharing.ACTIVE:
                yield _event("gone", {"state": state, "message": str(sharing._gone(state).message)})
                return
            now = time.monotonic()
            if now - last_beat > sharing.STREAM_SECONDS / 3 or sent_version < 0:
                sharing.beat(request, share)
                last_beat = now
                share.refresh_from_db(fields=["live_version"])
            if share.live_version != sent_version:
                share.refresh_from_db()
                yield _event("state", sharing.live_message(share, for_user_pk=user_pk))
                sent_version = share.live_version
                last_sent = now
            elif now - last_sent > KEEPALIVE_SECONDS:
                yield b":\n\n"
                last_sent = now
            time.sleep(POLL_SECONDS)
    finally:
        _count_stream(-1)  # the server's request_finished then closes the connection


@api_view(["POST"])
def publish(request: Request, share: str) -> Response:
    found = sharing.publish(request._request, share, _field(request, "state"))
    return Response({"version": found.live_version})


@csrf_exempt  # a POST goes to DRF's view, which checks CSRF as for the rest of the API
@access.require_user
def live(request: HttpRequest, share: str) -> HttpResponseBase:
    """``/api/shares/<id>/live``: GET the event stream (a plain view: an EventSource asks
    for ``text/event-stream``, which DRF's negotiation does not know), POST the
    presenter's view (DRF, with its CSRF check)."""
    if request.method == "POST":
        return publish(request, share)
    if request.method != "GET":
        return JsonResponse(
            {"code": "method_not_allowed", "message": f"{request.method} is not allowed here"},
            status=405,
        )
    found = sharing.live_share(request, share)
    if open_streams() >= settings.LOUPE_LIVE_MAX_STREAMS:
        # Each stream holds a server thread: past the cap the images would wait. The
        # viewer's live session shows the message and tries again (live.js refused()).
        busy = JsonResponse(
            {
                "code": "too_many_streams",
                "message": "this server follows as many live sessions as it can; retrying",
            },
            status=503,
        )
        busy["Retry-After"] = "5"
        return busy
    response = StreamingHttpResponse(
        _stream(request, found.pk, request.user.pk), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-store"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response
