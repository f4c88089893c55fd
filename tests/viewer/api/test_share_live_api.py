"""A live share link's API (issue 15): the event stream ``GET /api/shares/<id>/live``,
the presenter's ``POST`` of its view, ``following`` and the hand-over to a signed-in
follower, on patient A's stored CT. The browser side is tests/e2e/test_share_live.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from tests.conftest import client_for
from tests.factories import StoredStudy
from viewer.api import shares
from viewer.models import ShareLink, ShareVisitor

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def short_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each stream ends after a moment (as it does after its lifetime, then the browser's
    EventSource reconnects), so a test reads it whole."""
    monkeypatch.setattr(shares, "STREAM_LIFETIME_SECONDS", 0.3)


def first_event(client: Client, share_id: str) -> tuple[str, dict[str, Any]]:
    """The stream's first event (name, data)."""
    response = client.get(f"/api/shares/{share_id}/live", HTTP_ACCEPT="text/event-stream")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/event-stream"
    assert response["Cache-Control"] == "no-store"
    text = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    assert text.startswith("retry: 1000\n\n"), text
    event = next(block for block in text.split("\n\n") if block.startswith("event: "))
    name, data = event.split("\n", 1)
    return name.removeprefix("event: "), json.loads(data.removeprefix("data: "))


def view_of(study: StoredStudy, **viewport: Any) -> dict[str, Any]:
    return {
        "layout": "1x1",
        "viewports": [
            {
                "study_instance_uid": study.study,
                "series_instance_uid": study.series,
                "sop_instance_uid": study.instance,
                "frame": 1,
                "window": {"center": 40, "width": 400},
                "zoom": 2,
                "pan": {"x": 0.4, "y": 0.6},
                **viewport,
            }
        ],
        "active": 0,
        "measurement": None,
    }


def publish(client: Client, share_id: str, state: Any) -> Any:
    return client.post(
        f"/api/shares/{share_id}/live", {"state": state}, content_type="application/json"
    )


@pytest.fixture
def presenter(radiologist: Any) -> Client:
    return client_for(radiologist)


def make(presenter: Client, study: StoredStudy, **fields: Any) -> dict[str, Any]:
    created = presenter.post(
        "/api/shares",
        {"study_instance_uids": [study.study], "live": True, **fields},
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    return dict(created.json())


def follow(url: str, client: Client | None = None) -> Client:
    visitor = client or Client()
    opened = visitor.get(url.split("testserver", 1)[-1], HTTP_ACCEPT="text/html")
    assert opened.status_code == 302, opened.content
    return visitor


def test_the_presenters_view_reaches_a_follower_through_the_stream(
    presenter: Client, patient_a: StoredStudy
) -> None:
    share = make(presenter, patient_a)
    follower = follow(share["url"])
    view = view_of(patient_a)
    published = publish(presenter, share["id"], view)
    assert published.status_code == 200, published.content
    name, data = first_event(follower, share["id"])
    assert name == "state"
    assert data["state"] == view
    assert data["presenter"] == "radiologist" and data["you_present"] is False
    assert data["followers"] == 1  # this stream, counted as it connected
    assert "signed_in_followers" not in data  # only the presenter learns who they are
    name, mine = first_event(presenter, share["id"])
    assert mine["you_present"] is True and mine["followers"] == 1
    assert mine["version"] >= data["version"]


def test_only_the_presenter_publishes_and_only_the_links_studies(
    presenter: Client, patient_a: StoredStudy, patient_b: StoredStudy
) -> None:
    share = make(presenter, patient_a)
    follower = follow(share["url"])
    refused = publish(follower, share["id"], view_of(patient_a))
    assert refused.status_code == 403 and refused.json()["code"] == "not_presenter"
    outside = publish(presenter, share["id"], view_of(patient_b))
    assert outside.status_code == 403 and outside.json()["code"] == "outside_share"
    for state, named in (
        ("a view", "JSON object"),
        ({"viewports": "all"}, "viewports"),
        (view_of(patient_a, sop_instance_uid="1.2.x"), "viewports[0].sop_instance_uid"),
        ({"viewports": [{"pad": "x" * 20_000}]}, "larger than"),
    ):
        bad = publish(presenter, share["id"], state)
        assert bad.status_code == 400, (state, bad.content)
        assert named in bad.json()["message"], bad.json()
    assert ShareLink.objects.get(pk=share["id"]).live_state in (None, {})
    missing = presenter.post(f"/api/shares/{share['id']}/live", {}, content_type="application/json")
    assert missing.status_code == 400 and "state" in missing.json()["message"]


def test_a_follower_detaches_and_the_count_says_so(
    presenter: Client, patient_a: StoredStudy
) -> None:
    share = make(presenter, patient_a)
    follower = follow(share["url"])
    first_event(follower, share["id"])
    detached = follower.post(
        f"/api/shares/{share['id']}/following",
        {"following": False},
        content_type="application/json",
    )
    assert detached.status_code == 200 and detached.json() == {"following": False}
    _, seen = first_event(presenter, share["id"])
    assert seen["followers"] == 0 and seen["connected"] == 1
    bad = follower.post(
        f"/api/shares/{share['id']}/following", {"following": "no"}, content_type="application/json"
    )
    assert bad.status_code == 400
    follower.post(
        f"/api/shares/{share['id']}/following", {"following": True}, content_type="application/json"
    )
    _, seen = first_event(presenter, share["id"])
    assert seen["followers"] == 1


def test_presenting_is_handed_to_a_signed_in_follower_only(
    presenter: Client, patient_a: StoredStudy, django_user_model: Any
) -> None:
    share = make(presenter, patient_a, audience="signed-in")
    oncologist = django_user_model.objects.create_user("oncologist", password="x" * 20)
    joined = Client()
    opened = joined.get(share["url"].split("testserver", 1)[-1], HTTP_ACCEPT="text/html")
    assert opened.status_code == 302
    joined.force_login(oncologist)
    assert joined.get("/s/continue/").status_code == 302
    first_event(joined, share["id"])
    _, seen = first_event(presenter, share["id"])
    [candidate] = seen["signed_in_followers"]
    assert candidate["name"] == "oncologist"

    unknown = presenter.post(
        f"/api/shares/{share['id']}/presenter",
        {"visitor": "nobody"},
        content_type="application/json",
    )
    assert unknown.status_code == 404
    not_theirs = joined.post(
        f"/api/shares/{share['id']}/presenter",
        {"visitor": candidate["id"]},
        content_type="application/json",
    )
    assert not_theirs.status_code == 403  # a follower does not take presenting itself
    handed = presenter.post(
        f"/api/shares/{share['id']}/presenter",
        {"visitor": candidate["id"]},
        content_type="application/json",
    )
    assert handed.status_code == 200, handed.content
    assert handed.json()["presenter"] == "oncologist" and handed.json()["you_present"] is False
    assert publish(joined, share["id"], view_of(patient_a)).status_code == 200
    old = publish(presenter, share["id"], view_of(patient_a))
    assert old.status_code == 403 and old.json()["code"] == "not_presenter"
    _, told = first_event(joined, share["id"])
    assert told["you_present"] is True


def test_an_anonymous_follower_cannot_be_handed_presenting(
    presenter: Client, patient_a: StoredStudy
) -> None:
    share = make(presenter, patient_a)
    follow(share["url"])
    visitor = ShareVisitor.objects.get(share_id=share["id"])
    refused = presenter.post(
        f"/api/shares/{share['id']}/presenter",
        {"visitor": visitor.pk},
        content_type="application/json",
    )
    assert refused.status_code == 400
    assert refused.json()["code"] == "follower_not_signed_in"


def test_the_stream_says_gone_on_revocation_and_a_link_not_live_has_none(
    presenter: Client, patient_a: StoredStudy
) -> None:
    share = make(presenter, patient_a)
    follower = follow(share["url"])
    assert presenter.delete(f"/api/shares/{share['id']}").status_code == 204
    refused = follower.get(f"/api/shares/{share['id']}/live", HTTP_ACCEPT="text/event-stream")
    assert refused.status_code == 410 and "revoked" in refused.json()["message"]
    still_open = presenter.get(f"/api/shares/{share['id']}/live")
    assert still_open.status_code == 410
    static = presenter.post(
        "/api/shares", {"study_instance_uids": [patient_a.study]}, content_type="application/json"
    ).json()
    guest = follow(static["url"])
    assert guest.get(f"/api/shares/{static['id']}/live").status_code == 404
    # Another live link's stream is not this session's.
    other = make(presenter, patient_a)
    assert guest.get(f"/api/shares/{other['id']}/live").status_code == 404


def test_past_the_stream_cap_a_follower_is_told_to_retry(
    presenter: Client, patient_a: StoredStudy, settings: Any
) -> None:
    """Each stream holds a server thread: past LOUPE_LIVE_MAX_STREAMS a process answers
    503 with Retry-After (live.js shows the message and connects again)."""
    share = make(presenter, patient_a)
    follower = follow(share["url"])
    settings.LOUPE_LIVE_MAX_STREAMS = 0
    busy = follower.get(f"/api/shares/{share['id']}/live", HTTP_ACCEPT="text/event-stream")
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "5"
    assert busy.json()["code"] == "too_many_streams"
    settings.LOUPE_LIVE_MAX_STREAMS = 1
    assert first_event(follower, share["id"])[0] == "state"
