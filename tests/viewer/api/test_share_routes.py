"""A share link for study X reaches X and nothing else, on every route Loupe has (issue 15).

The routes are not listed by hand: the test walks Django's URL resolver, so a route added
later is checked too. Every route whose path names a study (pages, API, measurements by
study, SR, priors, hanging protocols, DICOMweb rendered, tiles, thumbnails), a
measurement or a share is filled with study Y's values (patient B's MR, its measurement)
and must answer a share session for X (patient A's CT) exactly as it answers a study that
does not exist: 404 to a read, and never a different status that would tell Y exists. The
same routes filled with X's values answer; after the link is revoked, every one of them
answers 410. Routes without such a parameter must not name Y in their body.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from pydicom.uid import generate_uid

from tests.conftest import client_for
from tests.factories import StoredStudy
from viewer.models import Measurement

pytestmark = pytest.mark.django_db

# Path parameters that name something a share's scope decides.
SCOPED = {"study", "study_instance_uid", "series", "instance", "measurement"}
# Routes no share session serves at all, whatever the study (sign-in, the EHR launch, the
# admin, the share link itself): outside this test's question.
OUTSIDE = ("admin/", "login/", "logout/", "oidc/", "ehrlaunch/", "s/", "remote/")
# A route that refuses a share session before it looks at the study answers the same for
# every study (no oracle): 403 read-only, or 405 where the route has no GET.
NOT_REVEALING = {403, 404, 405}


def walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from walk(entry.url_patterns, prefix + str(entry.pattern))
        else:
            yield prefix + str(entry.pattern), entry


def routes() -> list[tuple[str, list[str]]]:
    """Every route of the URL conf as (path template, its parameter names)."""
    found = []
    for template, pattern in walk(get_resolver().url_patterns):
        if template.startswith(OUTSIDE) or "(?P<" in template:
            continue
        found.append((template, list(pattern.pattern.converters)))
    return found


def body_of(response: Any) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)
    return bytes(response.content)


def fill(template: str, values: dict[str, str]) -> str:
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[str(m.group(1))], template)


def values_for(study: StoredStudy, measurement: str) -> dict[str, str]:
    return {
        "study": study.study,
        "study_instance_uid": study.study,
        "series": study.series,
        "instance": study.instance,
        "measurement": measurement,
        "frame": "1",
        "frames": "1",
        "path": "7FE00010",
        "upstream_name": "pacs",
        "endpoint": "dicomweb-wado-rs",
        "level": "0",
        "column": "0",
        "row": "0",
    }


def measure(client: Client, study: StoredStudy) -> str:
    response = client.post(
        "/api/measurements",
        {
            "study_instance_uid": study.study,
            "series_instance_uid": study.series,
            "sop_instance_uid": study.instance,
            "kind": "length",
            "points": [[5, 5], [40, 40]],
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    return str(response.json()["id"])


@pytest.fixture
def world(radiologist: Any, patient_a: StoredStudy, patient_b: StoredStudy) -> dict[str, Any]:
    """Both studies measured; a link for A, opened by a fresh client."""
    creator = client_for(radiologist)
    x_measurement = measure(creator, patient_a)
    y_measurement = measure(creator, patient_b)
    created = creator.post(
        "/api/shares",
        {"study_instance_uids": [patient_a.study]},
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    guest = Client()
    opened = guest.get(created.json()["url"].split("testserver", 1)[-1], HTTP_ACCEPT="text/html")
    assert opened.status_code == 302
    unknown = StoredStudy(generate_uid(), generate_uid(), generate_uid())
    return {
        "creator": creator,
        "guest": guest,
        "share": created.json()["id"],
        "x": values_for(patient_a, x_measurement),
        "y": values_for(patient_b, y_measurement),
        "unknown": values_for(unknown, "999999999"),
        "b": patient_b,
    }


def scoped_routes() -> list[str]:
    found = [t for t, names in routes() if SCOPED & set(names)]
    # The walk found what the share must be checked on: the list of routes.
    for needed in ("viewer/", "studies/", "api/studies/", "api/measurements/", "dicom-web/"):
        assert any(t.startswith(needed) for t in found), needed
    assert any("tiles" in t for t in found) and any("thumbnail" in t for t in found)
    return found


def test_every_route_that_names_study_y_answers_as_for_no_study(world: dict[str, Any]) -> None:
    guest: Client = world["guest"]
    checked = 0
    for template in scoped_routes():
        y = guest.get(fill(template, world["y"]), HTTP_ACCEPT="*/*")
        nothing = guest.get(fill(template, world["unknown"]), HTTP_ACCEPT="*/*")
        assert y.status_code == nothing.status_code, (template, y.status_code, nothing.status_code)
        assert y.status_code in NOT_REVEALING, (template, y.status_code)
        if y.status_code == 405:  # no GET: the route's own method, with an empty body
            y = guest.post(fill(template, world["y"]), {}, content_type="application/json")
            nothing = guest.post(
                fill(template, world["unknown"]), {}, content_type="application/json"
            )
            assert y.status_code == nothing.status_code, template
            assert y.status_code in (403, 404), (template, y.status_code)
        assert world["b"].study.encode() not in body_of(y), template
        checked += 1
    assert checked >= 15


def test_the_same_routes_for_study_x_answer_and_410_once_revoked(world: dict[str, Any]) -> None:
    guest: Client = world["guest"]
    answered = []
    for template in scoped_routes():
        response = guest.get(fill(template, world["x"]), HTTP_ACCEPT="*/*")
        body_of(response)
        if response.status_code == 200:
            answered.append(template)
    # Reads of X: the pages, metadata, measurements (by study and by id), priors, hanging
    # protocols, the file, every image route.
    assert any(t.startswith("api/measurements/") for t in answered), answered
    assert any("tiles" in t for t in answered) and any(t.startswith("viewer/") for t in answered)
    assert len(answered) >= 14, answered
    assert Measurement.objects.count() == 2
    revoked = world["creator"].delete(f"/api/shares/{world['share']}")
    assert revoked.status_code == 204
    for template in answered:
        gone = guest.get(fill(template, world["x"]), HTTP_ACCEPT="*/*")
        assert gone.status_code == 410, (template, gone.status_code)
        assert "revoked" in gone.content.decode(), template


def test_routes_without_a_study_list_nothing_outside_the_link(world: dict[str, Any]) -> None:
    guest: Client = world["guest"]
    b: StoredStudy = world["b"]
    for template, names in routes():
        if names and not set(names) <= {"share", "share_id", "link", "patient_id"}:
            continue
        if template.endswith("/live"):
            continue  # the live stream: a link that is not live answers 404 (test_shares)
        url = fill(
            template,
            {"share": world["share"], "share_id": world["share"], "link": "1", "patient_id": "x"},
        )
        response = guest.get(url, HTTP_ACCEPT="*/*")
        assert response.status_code < 500, (template, response.status_code)
        body = body_of(response)
        assert b.study.encode() not in body, template
        assert b.series.encode() not in body, template
