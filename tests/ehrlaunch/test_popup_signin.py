"""Signing in from inside an EHR's frame on another site: the identity provider opens in a
popup (never in the frame), which hands a one-time code back to the frame (docs/security.md §4
#27, (c)). Loupe runs on http://localhost:<port>, the EHR on http://127.0.0.1:<port>, so the
frame is cross-site and its cookies are partitioned."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from playwright.sync_api import Frame, Page, expect

from ehrlaunch.models import EhrSystem, SessionHandoff
from tests.ehrlaunch.conftest import EhrChart
from tests.ehrlaunch.test_sso import sign_in_at_provider, two_studies  # noqa: F401 (fixture)
from tests.servers import Server
from viewer.requester import SESSION_CHANNEL

pytestmark = [pytest.mark.e2e, pytest.mark.idp, pytest.mark.django_db(transaction=True)]

STUDY_UID = "1.2.3"


def test_an_iid_launch_in_a_cross_site_frame_signs_in_through_a_popup(
    page: Page,
    live_server: Any,
    sso: Server,
    two_studies: None,  # noqa: F811
    ehr_chart: EhrChart,
    artifacts_dir: Path,
) -> None:
    EhrSystem.objects.create(
        name="Test EHR", issuer="test-ehr", shared_secret="s" * 40, allowed_origins=ehr_chart.origin
    )
    ehr_chart.frame_url = (
        f"{live_server.url}/ehrlaunch/IHEInvokeImageDisplay?requestType=STUDY&studyUID={STUDY_UID}"
    )
    framed: list[str] = []

    def record(frame: Frame) -> None:
        if frame.parent_frame is not None:
            framed.append(frame.url)

    page.on("framenavigated", record)
    page.set_viewport_size({"width": 1200, "height": 760})
    page.goto(ehr_chart.url)
    frame = page.frame_locator("#loupe")
    expect(frame.locator("#signin")).to_be_visible()  # no session yet: the sign-in page
    page.screenshot(path=str(artifacts_dir / "popup-frame-sign-in.png"))

    with page.context.expect_page() as opened:
        frame.locator("#signin").click()
    popup = opened.value
    popup_urls: list[str] = []
    popup.on(
        "framenavigated", lambda f: popup_urls.append(f.url) if f == popup.main_frame else None
    )
    expect(popup.locator("#sso-signin")).to_be_visible()
    popup.screenshot(path=str(artifacts_dir / "popup-login-page.png"))
    popup.click("#sso-signin")
    expect(popup.locator("#test-idp")).to_be_visible()
    popup.screenshot(path=str(artifacts_dir / "popup-provider.png"))
    sign_in_at_provider(popup, sso, "rad")

    # The popup posts its one-time code to the frame and closes; the frame redeems it for
    # a session of its own and continues the launch to the study.
    expect(frame.locator(".viewport.active .overlay.bottom-left")).to_contain_text(
        "Im 1/1", timeout=20_000
    )
    expect(frame.locator(".viewport.active canvas")).to_have_attribute(
        "data-url", re.compile(r"/rendered"), timeout=15_000
    )
    page.screenshot(path=str(artifacts_dir / "popup-frame-study-open.png"))
    loupe_frame = next(f for f in page.frames if f.parent_frame is not None)
    assert loupe_frame.url == f"{live_server.url}/viewer/{STUDY_UID}/"
    assert popup.is_closed()

    # The identity provider was shown in the popup, never inside the frame.
    assert any(url.startswith(f"{sso.url}/interaction/") for url in popup_urls)
    assert framed and not any(url.startswith(sso.url) for url in framed)
    assert SessionHandoff.objects.count() == 0  # the code was used up
    channels = [s.get_decoded().get(SESSION_CHANNEL) for s in Session.objects.all()]
    assert channels.count("sso") == 2  # the popup's own session and the frame's
