"""Loupe inside an EHR's chart, in Chromium: the demo EHR on another origin frames Loupe
with a signed launch.

The chart is served by ``ehrlaunch.demo.ehr`` on http://127.0.0.1:<port>, Loupe by the
live server on http://localhost:<port>: two host names, so the frame is cross-site and
its cookies are third-party (SameSite=None; Secure; Partitioned).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from ehrlaunch.demo import ehr as demo_ehr
from ehrlaunch.models import EhrSystem
from tests.servers import free_port, serve_page
from viewer.models import Instance
from viewer.services import ingest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SECRET = "an-ehr-secret-that-is-long-enough-000000"


@pytest.fixture
def two_patients(shared_dicom: Path) -> dict[str, str]:
    uids = {}
    for key, folder, count in (("a", "ct-series", 3), ("b", "mr-series", 2)):
        paths = sorted((shared_dicom / folder).glob("*.dcm"))[:count]
        for path in paths:
            assert ingest.ingest_file(path).ok
        uids[key] = (
            Instance.objects.select_related("series__study")
            .get(sop_instance_uid=ingest.ingest_file(paths[0]).sop_instance_uid)
            .series.study.study_instance_uid
        )
    return uids


@pytest.fixture
def chart(live_server: Any, two_patients: dict[str, str]) -> Any:
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    EhrSystem.objects.create(
        name="Chart",
        issuer=origin,
        algorithm="HS256",
        shared_secret=SECRET,
        allowed_origins=origin,
        role_mapping={"physician": "clinician"},
    )
    config = {
        "port": port,
        "loupe_url": live_server.url,
        "issuer": origin,
        "audience": "loupe",
        "secret": SECRET,
        "user": "dr.e2e",
        "role": "physician",
        "patient": {
            "name": "C3N, Test",
            "id": "C3N-00247",
            "issuer": "",
            "birth_date": "-",
            "sex": "-",
        },
        "studies": [
            {"key": "a", "label": "CT", "uid": two_patients["a"]},
            {"key": "b", "label": "MR (another patient's)", "uid": two_patients["b"]},
        ],
    }
    server = demo_ehr.serve(config, host="127.0.0.1")
    config["_server"] = server
    yield origin, config
    if "_server" in config:
        server.shutdown()
        server.server_close()


def test_the_chart_frames_loupe_on_the_launched_study_with_no_login(
    page: Page, chart: Any, live_server: Any, artifacts_dir: Path
) -> None:
    origin, _ = chart
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{origin}/")
    frame = page.frame_locator("#loupe")
    expect(frame.locator(".viewport.active .overlay.bottom-left")).to_contain_text("Im 1/3")
    expect(frame.locator("input[name=password]")).to_have_count(0)
    loupe = next(f for f in page.frames if f.url.startswith(live_server.url))
    assert loupe.url.startswith(f"{live_server.url}/viewer/")
    assert "launch" not in loupe.url
    page.screenshot(path=str(artifacts_dir / "ehr-chart-frames-loupe.png"))


def test_a_launch_for_another_patients_study_is_refused_in_the_frame(
    page: Page, chart: Any, artifacts_dir: Path
) -> None:
    origin, _ = chart
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{origin}/?study=b")  # the chart's patient is A; the study is B's
    frame = page.frame_locator("#loupe")
    expect(frame.locator(".error-page")).to_contain_text("belongs to another patient")
    expect(frame.locator(".error-page")).to_contain_text("open the images again")
    expect(frame.locator("canvas")).to_have_count(0)
    page.screenshot(path=str(artifacts_dir / "ehr-chart-refused-launch.png"))


def test_a_launch_signed_with_the_wrong_key_is_refused_in_the_frame(
    page: Page, chart: Any, artifacts_dir: Path
) -> None:
    origin, config = chart
    config["secret"] = "another-secret-the-ehr-did-not-register-00"
    page.goto(f"{origin}/")
    expect(page.frame_locator("#loupe").locator(".error-page")).to_contain_text(
        "signature does not match"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"clock_offset_seconds": -600}, "the launch has expired"),
        ({"audience": "another-viewer"}, "addressed to another application"),
        ({"issuer": "http://unregistered.example"}, "not registered with Loupe"),
    ],
)
def test_bad_launches_are_refused_in_the_frame_with_their_message(
    page: Page, chart: Any, change: dict[str, Any], message: str, artifacts_dir: Path
) -> None:
    origin, config = chart
    config.update(change)
    page.goto(f"{origin}/")
    refusal = page.frame_locator("#loupe").locator(".error-page")
    expect(refusal).to_contain_text(message)
    expect(refusal).to_contain_text(
        "open the images again" if "registered" not in message else "administrator"
    )
    expect(page.frame_locator("#loupe").locator("canvas")).to_have_count(0)
    name = "-".join(change)
    page.screenshot(path=str(artifacts_dir / f"ehr-chart-refused-{name}.png"))


def test_a_replayed_launch_is_refused_in_the_frame(
    page: Page, chart: Any, live_server: Any
) -> None:
    origin, _ = chart
    launches: list[str] = []
    page.on("request", lambda r: launches.append(r.url) if "/ehrlaunch/launch?" in r.url else None)
    page.goto(f"{origin}/")
    expect(page.frame_locator("#loupe").locator(".viewport.active canvas")).to_have_count(1)
    assert len(launches) == 1
    # The same launch URL again, as a second frame would load it: refused, nothing shown.
    replay = page.context.new_page()
    replay.goto(launches[0])
    expect(replay.locator(".error-page")).to_contain_text("already used")
    expect(replay.locator("canvas")).to_have_count(0)


def test_pages_not_meant_for_embedding_refuse_to_render_in_a_frame(
    page: Page, chart: Any, live_server: Any, two_patients: dict[str, str]
) -> None:
    origin, config = chart
    iid = f"{live_server.url}/ehrlaunch/IHEInvokeImageDisplay?requestType=STUDY&amp;studyUID={two_patients['a']}"
    html = "".join(
        f'<iframe id="{name}" src="{url}"></iframe>'
        for name, url in (
            ("login", f"{live_server.url}/login/"),
            ("upload", f"{live_server.url}/upload/"),
            ("iid", iid),
        )
    )
    # The chart's own server stops so that its origin (the registered one) serves this page.
    port = int(config["port"])
    chart_server = config.pop("_server")
    chart_server.shutdown()
    chart_server.server_close()
    server = serve_page(lambda: f"<!DOCTYPE html><title>framing test</title>{html}", port=port)
    try:
        page.goto(f"{origin}/")
        # The embeddable sign-in page renders in the frame; login and upload do not.
        expect(page.frame_locator("#iid").locator("#signin")).to_be_visible()
        for name in ("login", "upload"):
            expect(page.frame_locator(f"#{name}").locator("form")).to_have_count(0)
        assert sum(f.url.startswith("chrome-error:") for f in page.frames) == 2
    finally:
        server.shutdown()
        server.server_close()
