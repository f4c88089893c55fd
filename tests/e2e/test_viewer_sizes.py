"""The viewer from an EHR chart's 800×500 frame to a 4K screen, in Chromium."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.viewer_pages import BOTTOM_LEFT, CANVAS, log_in_and_open
from viewer.models import Instance

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CONTROLS = "#toolbar button, #toolbar select, #toolbar input, #toolbar a"


def test_an_800_by_500_frame_keeps_the_image_and_every_control(
    page: Page, live_server: Any, ct_study: list[Instance], artifacts_dir: Path
) -> None:
    page.set_viewport_size({"width": 800, "height": 500})
    log_in_and_open(page, live_server)
    expect(page.locator(BOTTOM_LEFT)).to_contain_text("Im 1/99")
    canvas = page.locator(CANVAS)
    box = canvas.bounding_box()
    assert box is not None
    # The image has the room: at least 60% of the height, most of the width (the series
    # panel is folded away in a frame this narrow), and all of it on screen.
    assert box["height"] >= 0.6 * 500
    assert box["width"] >= 0.9 * 800
    assert box["y"] + box["height"] <= 500 and box["x"] + box["width"] <= 800
    expect(page.locator("#series-panel")).to_be_hidden()
    page.screenshot(path=str(artifacts_dir / "viewer-800x500.png"))

    # Every toolbar control can be reached: in the row, or in the "More" menu, which
    # opens over the image without moving it.
    controls = page.locator(CONTROLS)
    count = controls.count()
    assert count >= 20
    folded = []
    for index in range(count):
        control = controls.nth(index)
        if not control.is_visible():
            page.click("#more")
            folded.append(control.get_attribute("id") or control.get_attribute("data-action"))
        expect(control).to_be_visible()
        control_box = control.bounding_box()
        assert control_box is not None
        assert 0 <= control_box["x"] and control_box["x"] + control_box["width"] <= 800
        assert 0 <= control_box["y"] and control_box["y"] + control_box["height"] <= 500
        expect(control).to_be_enabled()
        if page.locator("#more-tools.open").count():
            assert canvas.bounding_box() == box
            page.screenshot(path=str(artifacts_dir / "viewer-800x500-more-menu.png"))
            page.keyboard.press("Escape")
            expect(page.locator("#more-tools")).not_to_have_class("more-tools open")
    assert {"cine", "fps", "zoom-fit", "toggle-overlays"} <= set(folded)
    # A folded control works from the menu: zoom in, and the menu closes.
    page.click("#more")
    page.click("#zoom-in")
    expect(page.locator("#more-tools")).not_to_have_class("more-tools open")
    expect(page.locator(f"{CANVAS.split(' ')[0]} .overlay.bottom-right")).to_contain_text("Zoom")

    # The series panel comes back with its toggle, and goes again.
    page.click("[data-action=series-panel]")
    expect(page.locator("#series-panel")).to_be_visible()
    assert (canvas.bounding_box() or {"height": 0})["height"] >= 0.6 * 500
    thumbnail = page.locator("#series-panel img").first
    expect(thumbnail).to_have_js_property("complete", True)
    expect(thumbnail).not_to_have_js_property("naturalWidth", 0)
    page.screenshot(path=str(artifacts_dir / "viewer-800x500-series-panel.png"))
    page.click("[data-action=series-panel]")
    expect(page.locator("#series-panel")).to_be_hidden()


def test_a_4k_screen_gives_the_image_the_room(
    page: Page, live_server: Any, ct_study: list[Instance], artifacts_dir: Path
) -> None:
    page.set_viewport_size({"width": 3840, "height": 2160})
    log_in_and_open(page, live_server)
    expect(page.locator(BOTTOM_LEFT)).to_contain_text("Im 1/99")
    box = page.locator(CANVAS).bounding_box()
    toolbar = page.locator("#toolbar").bounding_box()
    assert box is not None and toolbar is not None
    assert toolbar["height"] < 80  # one row
    assert box["height"] >= 0.95 * 2160 - toolbar["height"]
    expect(page.locator("#more")).to_be_hidden()  # nothing folded on a wide screen
    for control in page.locator(CONTROLS).all():
        if control.get_attribute("id") != "more":
            expect(control).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "viewer-3840x2160.png"))
