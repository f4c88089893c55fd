"""The archive's pages in a real Chromium: log in, upload a folder, find it on the worklist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Dialog, Page, expect

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-e2e-password-42"


@pytest.fixture
def user(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("radiologist", password=PASSWORD)


def log_in(page: Page, live_server: Any) -> None:
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(f"{live_server.url}/login/?next=/")
    page.fill("input[name=username]", "radiologist")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("p.count")).to_be_visible()


def test_upload_then_open_from_the_worklist(
    page: Page, live_server: Any, user: Any, shared_dicom: Path, artifacts_dir: Path
) -> None:
    log_in(page, live_server)
    expect(page.locator("p.count")).to_have_text("0 studies")
    page.click("text=Upload")
    files = sorted((shared_dicom / "mr-series").glob("*"))[:6]
    bad = shared_dicom / "malformed" / "oob_rows_cols_65535.dcm"
    expect(page.locator("#dropzone")).to_have_attribute("data-ready", "true")  # script loaded
    page.set_input_files("#file-input", [*map(str, files), str(bad)])
    expect(page.locator("#status")).to_contain_text("Done: 6 stored", timeout=30_000)
    expect(page.locator("#results tr.rejected")).to_contain_text("frame")
    page.screenshot(path=str(artifacts_dir / "archive-upload-results.png"), full_page=True)

    page.click("text=Worklist")
    expect(page.locator("p.count")).to_have_text("1 study")
    row = page.locator("table.worklist tbody tr").first
    expect(row).to_contain_text("MR")
    expect(row.locator("td.num").last).to_have_text("6")
    page.screenshot(path=str(artifacts_dir / "archive-worklist.png"), full_page=True)
    row.locator("a.series-link").click()
    expect(page.locator(".study-head h1")).to_be_visible()
    # The series thumbnail is rendered on the server and actually decodes in the browser.
    thumbnail = page.locator("td.thumb img").first
    expect(thumbnail).to_have_js_property("complete", True)
    expect(thumbnail).to_have_js_property("naturalWidth", 128)  # 256² MR fitted to 128²
    page.screenshot(path=str(artifacts_dir / "archive-study.png"), full_page=True)


def test_names_render_as_text_in_the_browser(
    page: Page, live_server: Any, user: Any, shared_dicom: Path, artifacts_dir: Path
) -> None:
    from viewer.services import ingest

    for name in ("chrH31.dcm", "chrArab.dcm", "chrRuss.dcm", "chrX2.dcm"):
        assert ingest.ingest_file(shared_dicom / "charset" / name).status == "stored"
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    log_in(page, live_server)
    expect(page.locator("table.worklist")).to_contain_text(
        "Yamada, Tarou = 山田, 太郎 = やまだ, たろう"
    )
    expect(page.locator("table.worklist")).to_contain_text("قباني, لنزار")
    expect(page.locator("table.worklist")).to_contain_text("Wang, XiaoDong = 王, 小东")
    page.screenshot(path=str(artifacts_dir / "archive-worklist-charsets.png"), full_page=True)
    assert dialogs == []
