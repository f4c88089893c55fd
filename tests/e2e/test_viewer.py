"""The viewer in Chromium on the 99-slice CT: open, scroll, window/level, presets, errors."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from viewer.dicom.geometry import slice_order
from viewer.models import Instance
from viewer.services import ingest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-e2e-password-42"


@pytest.fixture
def ct_study(shared_dicom: Path, django_user_model: Any) -> list[Instance]:
    django_user_model.objects.create_user("radiologist", password=PASSWORD)
    for path in sorted((shared_dicom / "ct-series").glob("*.dcm")):
        assert ingest.ingest_file(path).status == "stored"
    return slice_order(list(Instance.objects.select_related("series__study")))


def canvas_pixels(page: Page) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(page.locator("#canvas").screenshot())).convert("L"))


def open_viewer(page: Page, live_server: Any) -> None:
    page.goto(f"{live_server.url}/")
    page.fill("input[name=username]", "radiologist")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.locator("a.open").first.click()
    expect(page.locator("#overlay-bl")).to_contain_text("Im 1/99")


def test_scroll_window_level_and_presets(
    page: Page, live_server: Any, ct_study: list[Instance], artifacts_dir: Path
) -> None:
    page.set_viewport_size({"width": 1280, "height": 800})
    open_viewer(page, live_server)
    expect(page.locator("#overlay-br")).to_contain_text("W 1500 L -500")  # header preset 1
    page.screenshot(path=str(artifacts_dir / "viewer-ct-first-slice.png"))

    page.locator("#viewport").hover()
    for _ in range(49):
        page.keyboard.press("ArrowDown")
    fiftieth = ct_study[49]
    z = fiftieth.image_position_patient[2]  # type: ignore[index]
    expect(page.locator("#overlay-bl")).to_contain_text("Im 50/99")
    expect(page.locator("#overlay-bl")).to_contain_text(f"Pos {z:.1f} mm")
    expect(page.locator("#canvas")).to_have_attribute(
        "data-url", re.compile(fiftieth.sop_instance_uid)
    )
    before = canvas_pixels(page)
    page.screenshot(path=str(artifacts_dir / "viewer-ct-slice-50.png"))

    box = page.locator("#viewport").bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - 150, y + 60, steps=8)
    page.mouse.up()
    expect(page.locator("#overlay-br")).not_to_contain_text("W 1500 L -500")
    expect(page.locator("#canvas")).to_have_attribute("data-url", re.compile("accept=image%2Fpng"))
    after = canvas_pixels(page)
    assert np.abs(after.astype(int) - before.astype(int)).mean() > 1.0  # the image changed
    page.screenshot(path=str(artifacts_dir / "viewer-ct-window-dragged.png"))

    lung = page.locator("#preset option", has_text="Lung").first.get_attribute("value")
    page.select_option("#preset", value=lung)
    expect(page.locator("#overlay-br")).to_contain_text("W 1500 L -600")
    page.screenshot(path=str(artifacts_dir / "viewer-ct-lung-preset.png"))


def test_a_broken_frame_shows_its_message_in_the_viewport(
    page: Page, live_server: Any, shared_dicom: Path, django_user_model: Any, artifacts_dir: Path
) -> None:
    django_user_model.objects.create_user("radiologist", password=PASSWORD)
    assert (
        ingest.ingest_file(shared_dicom / "malformed" / "NM_WG04_JPLY_bad_SOS.dcm").status
        == "stored"
    )
    page.goto(f"{live_server.url}/")
    page.fill("input[name=username]", "radiologist")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.locator("a.open").first.click()
    expect(page.locator("#message")).to_be_visible()
    expect(page.locator("#message")).to_contain_text("cannot be decoded")
    expect(page.locator("#overlay-bl")).to_contain_text("Im 1/1")  # the rest keeps working
    page.screenshot(path=str(artifacts_dir / "viewer-broken-frame.png"))


def test_zoom_fetches_only_the_tiles_in_view(
    page: Page, live_server: Any, shared_dicom: Path, django_user_model: Any, artifacts_dir: Path
) -> None:
    """A 2010×2446 radiograph at 4×: full-resolution tiles, only those around the centre."""
    django_user_model.objects.create_user("radiologist", password=PASSWORD)
    path = shared_dicom / "cr-monochrome1" / "Monochrome1-Jpeg.dcm"
    assert ingest.ingest_file(path).status == "stored"
    page.set_viewport_size({"width": 1280, "height": 800})
    tiles: list[str] = []
    page.on(
        "request", lambda request: tiles.append(request.url) if "/tiles/" in request.url else None
    )
    page.goto(f"{live_server.url}/")
    page.fill("input[name=username]", "radiologist")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.locator("a.open").first.click()
    expect(page.locator("#overlay-bl")).to_contain_text("Im 1/1")
    page.wait_for_load_state("networkidle")
    assert tiles == []  # at fit, one whole-image render at the canvas's size
    page.locator("#viewport").hover()
    page.keyboard.press("+")
    page.keyboard.press("+")
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(300)
    page.screenshot(path=str(artifacts_dir / "viewer-radiograph-zoom-4x.png"))
    grid = {
        tuple(int(v) for v in url.split("/tiles/")[1].split("?")[0].split("/")) for url in tiles
    }
    assert grid, "no tile was requested"
    levels = {level for level, _, _ in grid}
    assert levels == {0}  # at 4× the view needs full resolution (2446 rows on ~750 px × 4)
    # Level 0 has 8 × 10 tiles of 256 px; the view around the centre (column 3.9, row 4.8)
    # spans a handful of them.
    assert len(grid) < 80 / 2
    assert all(2 <= column <= 5 and 3 <= row <= 6 for _, column, row in grid), sorted(grid)
