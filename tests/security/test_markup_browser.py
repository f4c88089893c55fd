"""The markup study in a real Chromium: worklist, study page, viewer overlays, the
measurement panel and the share guest's viewer show every payload as text, no dialog
ever opens, and the browser reports no Content-Security-Policy violation (which would
mean a payload became markup that only the policy stopped).

The study is ``payload_study`` (tests/security/conftest.py), its measurement labelled with
a payload; Debian's chromium through Playwright (tests/conftest.py's launch arguments).
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, Dialog, Page, expect

from tests.conftest import client_for
from tests.e2e.viewer_pages import ACTIVE, PASSWORD
from tests.security.conftest import LABEL, NAMED, PayloadStudy, label_measurement

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


class Watch:
    """Dialogs, page errors and CSP reports of a page, as they happen."""

    def __init__(self, page: Page) -> None:
        self.dialogs: list[str] = []
        self.violations: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self.on_dialog)
        page.on("console", self.on_console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def on_console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.violations.append(message.text)

    def assert_quiet(self) -> None:
        assert self.dialogs == [], self.dialogs
        assert self.violations == [], self.violations
        assert self.errors == [], self.errors


@pytest.fixture
def radiologist_with_password(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("radiologist", password=PASSWORD)


@pytest.fixture
def labelled(radiologist_with_password: Any, payload_study: PayloadStudy) -> Any:
    client = client_for(radiologist_with_password)
    label_measurement(client, payload_study, LABEL, [[10, 10], [60, 60]])
    return client


def test_no_payload_runs_on_the_radiologists_pages(
    page: Page, live_server: Any, labelled: Any, payload_study: PayloadStudy, artifacts_dir: Any
) -> None:
    watch = Watch(page)
    page.goto(f"{live_server.url}/")
    page.fill("input[name=username]", "radiologist")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    table = page.locator("table.worklist")
    for keyword in ("PatientName", "PatientID", "StudyDescription", "AccessionNumber"):
        expect(table).to_contain_text(NAMED[keyword])
    page.screenshot(path=str(artifacts_dir / "security-payload-worklist.png"), full_page=True)

    page.goto(f"{live_server.url}/studies/{payload_study.study}/")
    expect(page.locator("body")).to_contain_text(NAMED["SeriesDescription"])

    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"{live_server.url}/viewer/{payload_study.study}/")
    top_left = page.locator(f"{ACTIVE} .overlay.top-left")
    expect(top_left).to_contain_text(NAMED["PatientName"])
    expect(top_left).to_contain_text(NAMED["PatientID"])
    expect(page.locator(f"{ACTIVE} .overlay.top-right")).to_contain_text(NAMED["StudyDescription"])
    # The measurement panel lists the stored measurement with its label as text.
    expect(page.locator("#measurements-panel .measurement-list li .label")).to_have_text(LABEL)
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(artifacts_dir / "security-payload-viewer.png"), full_page=True)
    watch.assert_quiet()


def test_no_payload_runs_for_the_share_guest(
    browser: Any, live_server: Any, labelled: Any, payload_study: PayloadStudy
) -> None:
    made = labelled.post(
        "/api/shares",
        {"study_instance_uids": [payload_study.study], "live": True},
        content_type="application/json",
    )
    assert made.status_code == 201, made.content
    path = made.json()["url"].split("testserver", 1)[-1]
    context = browser.new_context()
    try:
        guest = context.new_page()
        watch = Watch(guest)
        guest.set_viewport_size({"width": 1400, "height": 900})
        guest.goto(f"{live_server.url}{path}")
        expect(guest.locator(f"{ACTIVE} .overlay.top-right")).to_contain_text(
            NAMED["StudyDescription"]
        )
        expect(guest.locator(f"{ACTIVE} .overlay.top-left")).to_contain_text(NAMED["PatientName"])
        guest.wait_for_load_state("networkidle")
        watch.assert_quiet()
    finally:
        context.close()
