"""Share links: ``POST/GET/DELETE /api/shares``, ``/s/<token>`` and the share session's
scope, on real stored studies (patient A's CT, patient B's MR)."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.utils import timezone

from tests.conftest import client_for
from tests.factories import StoredStudy, ct_small
from viewer.models import AuditEvent, Measurement, ShareLink, ShareVisitor
from viewer.services import sharing

pytestmark = pytest.mark.django_db

SHARES = "/api/shares"


def create(client: Client, study: StoredStudy, **fields: Any) -> Any:
    return client.post(
        SHARES,
        {"study_instance_uids": [study.study], **fields},
        content_type="application/json",
    )


def token_of(url: str) -> str:
    assert "/s/" in url
    return url.rsplit("/s/", 1)[1]


def open_link(url: str, client: Client | None = None) -> tuple[Client, Any]:
    visitor = client or Client()
    response = visitor.get(url.split("testserver", 1)[-1], HTTP_ACCEPT="text/html")
    return visitor, response


@pytest.fixture
def radiologist_client(radiologist: Any) -> Client:
    return client_for(radiologist)


@pytest.fixture
def shared_a(radiologist_client: Client, patient_a: StoredStudy) -> dict[str, Any]:
    response = create(radiologist_client, patient_a)
    assert response.status_code == 201, response.content
    return dict(response.json())


def test_a_radiologist_creates_a_link_with_its_id_url_and_expiry(
    radiologist_client: Client, patient_a: StoredStudy
) -> None:
    before = timezone.now()
    response = create(radiologist_client, patient_a, deidentify=True, live=True)
    assert response.status_code == 201, response.content
    body = response.json()
    assert {"id", "url", "expires_at"} <= set(body)
    token = token_of(body["url"])
    assert len(token) >= 43  # 256 bits in URL-safe base64; at least 128 are required
    expires = dt.datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert (
        dt.timedelta(hours=71, minutes=59) < expires - before <= dt.timedelta(hours=72, seconds=5)
    )
    assert body["deidentify"] is True and body["live"] is True
    assert body["study_instance_uids"] == [patient_a.study]
    # Only a hash is kept: the token is nowhere in the database, in any table.
    for table in connection.introspection.table_names():
        with connection.cursor() as cursor:
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - our own table names
            assert token not in repr(cursor.fetchall()), table
    share = ShareLink.objects.get(pk=body["id"])
    assert share.token_sha256 != token and len(share.token_sha256) == 64
    export = AuditEvent.objects.get(event_id="110106")
    assert export.detail == {"kind": "share", "share_link_id": body["id"]}
    assert export.study_uids == [patient_a.study]


def test_expiry_is_capped_and_bad_fields_are_named(
    radiologist_client: Client, patient_a: StoredStudy, settings: Any
) -> None:
    settings.LOUPE_SHARE_MAX_SECONDS = 3600
    capped = create(radiologist_client, patient_a, expires_in=10 * 24 * 3600).json()
    lifetime = ShareLink.objects.get(pk=capped["id"])
    assert lifetime.expires_at - lifetime.created_at == dt.timedelta(seconds=3600)
    cases = [
        ({"study_instance_uids": []}, "study_instance_uids"),
        ({"study_instance_uids": ["1.2.x"]}, "study_instance_uids"),
        ({"study_instance_uids": [patient_a.study], "audience": "everyone"}, "audience"),
        ({"study_instance_uids": [patient_a.study], "expires_in": "soon"}, "expires_in"),
        ({"study_instance_uids": [patient_a.study], "expires_in": 5}, "expires_in"),
        ({"study_instance_uids": [patient_a.study], "live": "yes"}, "live"),
        ({"study_instance_uids": [patient_a.study], "view": {"colour": 1}}, "view.colour"),
        ({"study_instance_uids": [patient_a.study], "token": "x"}, "token"),
    ]
    count = ShareLink.objects.count()
    for body, named in cases:
        response = radiologist_client.post(SHARES, body, content_type="application/json")
        assert response.status_code == 400, (body, response.content)
        assert named in response.json()["message"], (body, response.json())
    assert ShareLink.objects.count() == count
    unknown = radiologist_client.post(
        SHARES, {"study_instance_uids": ["1.2.3.4"]}, content_type="application/json"
    )
    assert unknown.status_code == 404


def test_the_link_opens_its_study_and_nothing_else_on_every_route(
    shared_a: dict[str, Any], patient_a: StoredStudy, patient_b: StoredStudy
) -> None:
    guest, response = open_link(shared_a["url"])
    assert response.status_code == 302
    landing = response.headers["Location"]
    assert landing == f"/viewer/{patient_a.study}/"
    assert token_of(shared_a["url"]) not in landing
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "noindex" in response.headers["X-Robots-Tag"]
    page = guest.get(landing, HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "noindex" in page.headers["X-Robots-Tag"]
    assert token_of(shared_a["url"]) not in page.content.decode()
    for route in patient_a.routes():
        assert guest.get(route).status_code == 200, route
    for route in patient_b.routes():
        assert guest.get(route).status_code == 404, route
    # Nothing outside the scope is listed: the worklist shows study A only.
    worklist = guest.get("/", HTTP_ACCEPT="text/html").content.decode()
    assert patient_a.study in worklist and patient_b.study not in worklist


def test_a_share_session_is_read_only(shared_a: dict[str, Any], patient_a: StoredStudy) -> None:
    ct_small_bytes = ct_small()
    guest, _ = open_link(shared_a["url"])
    measured = guest.post(
        "/api/measurements",
        {
            "study_instance_uid": patient_a.study,
            "series_instance_uid": patient_a.series,
            "sop_instance_uid": patient_a.instance,
            "kind": "length",
            "points": [[1, 1], [10, 10]],
        },
        content_type="application/json",
    )
    assert measured.status_code == 403 and "read-only" in measured.json()["message"]
    assert not Measurement.objects.exists()
    stored = guest.post("/api/instances", ct_small_bytes, content_type="application/dicom")
    assert stored.status_code == 403
    again = create(guest, patient_a)
    assert again.status_code == 403
    assert guest.get(SHARES).json() == []  # a share session manages no links


def test_unknown_tokens_are_404_and_guessing_is_rate_limited(
    shared_a: dict[str, Any], settings: Any
) -> None:
    settings.LOUPE_SHARE_GUESS_LIMIT = 3
    guesser = Client()
    for n in range(3):
        response = guesser.get(f"/s/{'A' * 40}{n}")
        assert response.status_code == 404
    limited = guesser.get(f"/s/{'B' * 43}")
    assert limited.status_code == 429
    # Even the right token waits now, for this address.
    assert guesser.get(shared_a["url"].split("testserver", 1)[-1]).status_code == 429
    refusals = AuditEvent.objects.filter(event_id="110100", outcome=4)
    assert refusals.count() == 3
    assert all("A" * 40 not in json.dumps(r.detail) for r in refusals)


def test_revocation_answers_410_on_the_next_request(
    radiologist_client: Client, shared_a: dict[str, Any], patient_a: StoredStudy
) -> None:
    guest, _ = open_link(shared_a["url"])
    image = patient_a.routes()[-1]
    assert guest.get(image).status_code == 200
    assert radiologist_client.delete(f"{SHARES}/{shared_a['id']}").status_code == 204
    refused = guest.get(image)
    assert refused.status_code == 410
    assert "revoked" in refused.json()["message"]
    page = guest.get(f"/viewer/{patient_a.study}/", HTTP_ACCEPT="text/html")
    assert page.status_code == 410 and "revoked" in page.content.decode()
    assert open_link(shared_a["url"])[1].status_code == 410
    listed = radiologist_client.get(SHARES).json()
    assert listed[0]["state"] == "revoked" and listed[0]["revoked_at"]


def test_expiry_is_enforced_on_the_server(shared_a: dict[str, Any], patient_a: StoredStudy) -> None:
    guest, _ = open_link(shared_a["url"])
    ShareLink.objects.filter(pk=shared_a["id"]).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    sharing._states.forget_where(lambda key: True)  # as CHECK_SECONDS passing would
    refused = guest.get(f"/api/studies/{patient_a.study}")
    assert refused.status_code == 410 and "expired" in refused.json()["message"]
    assert open_link(shared_a["url"])[1].status_code == 410


def test_a_launched_clinicians_link_cannot_reach_another_patient(
    clinician_for_patient_a: Client, patient_a: StoredStudy, patient_b: StoredStudy
) -> None:
    assert create(clinician_for_patient_a, patient_b).status_code == 404
    created = create(clinician_for_patient_a, patient_a)
    assert created.status_code == 201, created.content
    guest, _ = open_link(created.json()["url"])
    for route in patient_b.routes():
        assert guest.get(route).status_code == 404, route


def test_a_signed_in_link_asks_for_a_sign_in_and_keeps_the_token_out_of_it(
    radiologist_client: Client, patient_a: StoredStudy, django_user_model: Any
) -> None:
    created = create(radiologist_client, patient_a, audience="signed-in").json()
    visitor, response = open_link(created["url"])
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login/")
    assert token_of(created["url"]) not in response.headers["Location"]
    assert "s/continue" in response.headers["Location"]
    assert visitor.get(f"/api/studies/{patient_a.study}").status_code == 401
    oncologist = django_user_model.objects.create_user("oncologist", password="x" * 20)
    visitor.force_login(oncologist)
    back = visitor.get("/s/continue/")
    assert back.status_code == 302 and back.headers["Location"] == f"/viewer/{patient_a.study}/"
    assert visitor.get(f"/api/studies/{patient_a.study}").status_code == 200
    row = ShareVisitor.objects.get(share_id=created["id"])
    assert row.signed_in and row.user == oncologist


def test_opening_and_image_access_are_audited_with_the_links_id_and_creator(
    shared_a: dict[str, Any], patient_a: StoredStudy
) -> None:
    guest, _ = open_link(shared_a["url"], Client(REMOTE_ADDR="10.1.2.3"))
    guest.get(patient_a.routes()[-1])
    opened = AuditEvent.objects.get(event_id="110100", outcome=0, channel="share")
    assert opened.alternative_user_id == f"share-link:{shared_a['id']}"
    assert opened.client_address == "10.1.2.3"
    assert opened.detail["share_link_id"] == shared_a["id"]
    assert opened.detail["share_created_by"] == "radiologist"
    accessed = AuditEvent.objects.filter(event_id="110103", channel="share")
    assert accessed.exists()
    for row in accessed:
        assert row.detail["share_link_id"] == shared_a["id"]
        assert row.detail["share_created_by"] == "radiologist"
        assert row.client_address == "10.1.2.3"
    token = token_of(shared_a["url"])
    assert not any(token in json.dumps(r.detail) for r in AuditEvent.objects.all())
    share = ShareLink.objects.get(pk=shared_a["id"])
    assert share.open_count == 1 and share.first_opened_at is not None


def test_only_the_creator_or_an_administrator_manages_a_link(
    shared_a: dict[str, Any], administrator: Any, django_user_model: Any
) -> None:
    other = client_for(django_user_model.objects.create_user("colleague", password="x" * 20))
    assert other.get(SHARES).json() == []
    assert other.get(f"{SHARES}/{shared_a['id']}").status_code == 404
    assert other.delete(f"{SHARES}/{shared_a['id']}").status_code == 404
    admin = client_for(administrator)
    assert [s["id"] for s in admin.get(SHARES).json()] == [shared_a["id"]]
    open_link(shared_a["url"])
    open_link(shared_a["url"])
    listed = admin.get(f"{SHARES}/{shared_a['id']}").json()
    assert listed["open_count"] == 2 and listed["visitors"] == 2
    page = admin.get("/shares/", HTTP_ACCEPT="text/html").content.decode()
    assert shared_a["id"] in page and "Revoke" in page
    revoked = admin.post(f"/shares/{shared_a['id']}/revoke")
    assert revoked.status_code == 302
    assert ShareLink.objects.get(pk=shared_a["id"]).revoked_at is not None
    assert not User.objects.filter(username=f"share:{shared_a['id']}", is_staff=True).exists()


def test_the_viewer_page_carries_the_links_view_and_live_flag_for_its_script(
    radiologist_client: Client, patient_a: StoredStudy, settings: Any
) -> None:
    settings.LOUPE_UPSTREAM_DICOMWEB = ["an upstream archive is configured"]
    page = f"/viewer/{patient_a.study}/"
    own = radiologist_client.get(page, HTTP_ACCEPT="text/html").content.decode()
    assert 'id="share"' in own and 'id="share-dialog"' in own and "share-session" not in own
    assert 'data-upstream="true"' in own
    view = {
        "layout": "1x1",
        "viewports": [{"series_instance_uid": patient_a.series, "zoom": 2, "window": None}],
    }
    created = create(radiologist_client, patient_a, view=view, live=True).json()
    guest, _ = open_link(created["url"])
    shared = guest.get(page, HTTP_ACCEPT="text/html").content.decode()
    assert 'id="share-dialog"' not in shared and 'id="share"' not in shared  # no sharing on
    assert "data-upstream" not in shared  # a share session never reaches upstream archives
    session = re.search(r'<div id="share-session"[^>]*>', shared)
    assert session, shared[:2000]
    attributes = dict(re.findall(r'(data-share-[a-z]+)="([^"]*)"', session[0]))
    assert attributes["data-share-id"] == created["id"]
    assert attributes["data-share-live"] == "true"
    assert json.loads(html.unescape(attributes["data-share-view"])) == view
