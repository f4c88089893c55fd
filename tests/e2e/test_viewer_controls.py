"""The viewer's controls in Chromium: the help panel, touch, the preset table, mouse zoom and
pan, reset."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.viewer_pages import (
    ACTIVE,
    BOTTOM_LEFT,
    BOTTOM_RIGHT,
    CANVAS,
    expect_letters,
    log_in_and_open,
    settled_window,
    still_pixels,
)
from viewer.models import Instance

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_help_panel_lists_every_shortcut_and_gesture_from_the_one_table(
    browser: Any, live_server: Any, ct_study: list[Instance], artifacts_dir: Path
) -> None:
    # bypass_csp: only so the test can import the bindings table the page itself uses.
    context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    page = context.new_page()
    log_in_and_open(page, live_server)
    expect(page.locator(BOTTOM_LEFT)).to_contain_text("Im 1/99")
    bindings: list[dict[str, Any]] = page.evaluate(
        "import('/static/viewer/js/toolbox.js').then((m) => m.BINDINGS)"
    )
    help_panel = page.locator("#help-panel")
    expect(help_panel).to_be_hidden()
    page.locator(ACTIVE).hover()
    page.keyboard.press("?")
    expect(help_panel).to_be_visible()
    rows = help_panel.locator("tbody tr.key, tbody tr.gesture")
    expect(rows).to_have_count(len(bindings))
    for index, binding in enumerate(bindings):
        expect(rows.nth(index)).to_contain_text(binding["label"])
    assert {b["kind"] for b in bindings} == {"key", "gesture"}
    expect(help_panel).to_contain_text("Pinch (two fingers)")
    expect(help_panel.locator("tr.key", has_text="Rotate 90° right").locator("kbd")).to_have_text(
        "R"
    )
    page.screenshot(path=str(artifacts_dir / "viewer-help-panel.png"))
    page.keyboard.press("Escape")
    expect(help_panel).to_be_hidden()
    # The toolbar button opens it too; the close button closes it.
    page.click("#help")
    expect(help_panel).to_be_visible()
    help_panel.locator("[data-close]").click()
    expect(help_panel).to_be_hidden()
    # Every toolbar action with a key says so in its title (the same table).
    names = {" ": "Space", "Escape": "Esc"}
    for binding in bindings:
        button = page.locator(f"#toolbar [data-action='{binding.get('action')}']")
        if binding["kind"] == "key" and button.count():
            keys = " or ".join(
                names.get(k, k.upper() if len(k) == 1 else k) for k in binding["keys"]
            )
            expect(button).to_have_attribute("title", f"{binding['label']} ({keys})")
    # And the keys of the table act: "n"/"w"/"p" are not typed into anything.
    page.keyboard.press("p")
    expect(page.locator("[data-action=tool-pan]")).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("w")
    expect(page.locator("[data-action=tool-windowLevel]")).to_have_attribute("aria-pressed", "true")
    context.close()


def zoom_in_overlay(page: Page) -> float:
    """The overlay's zoom, once the overlay shows one (it is drawn after the first image)."""
    overlay = page.locator(BOTTOM_RIGHT)
    expect(overlay).to_contain_text(re.compile(r"Zoom [\d.]+"))
    found = re.search(r"Zoom ([\d.]+)", overlay.inner_text())
    assert found is not None
    return float(found.group(1))


def wait_for_zoom(page: Page, expected: float) -> None:
    """Until the overlay's zoom is ``expected`` (to the overlay's two decimals)."""
    for _ in range(100):
        if abs(zoom_in_overlay(page) - expected) <= 0.011 * expected:
            return
        page.wait_for_timeout(50)
    assert zoom_in_overlay(page) == pytest.approx(expected, rel=0.011)


def test_touch_one_finger_windows_two_fingers_pinch_and_pan(
    page: Page, live_server: Any, ct_study: list[Instance], artifacts_dir: Path
) -> None:
    """Real touch input through the DevTools protocol (Input.dispatchTouchEvent), which
    Chromium turns into Pointer Events of type "touch" as a tablet would."""
    page.set_viewport_size({"width": 1024, "height": 768})
    log_in_and_open(page, live_server)
    expect(page.locator(BOTTOM_LEFT)).to_contain_text("Im 1/99")
    expect(page.locator(BOTTOM_RIGHT)).to_contain_text("W 1500 L -500")
    cdp = page.context.new_cdp_session(page)
    box = page.locator(ACTIVE).bounding_box()
    assert box is not None
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

    def touch(kind: str, points: list[tuple[float, float]]) -> None:
        cdp.send(
            "Input.dispatchTouchEvent",
            {
                "type": kind,
                "touchPoints": [{"x": x, "y": y, "id": i} for i, (x, y) in enumerate(points)],
            },
        )

    # One finger: the active tool, window/level.
    touch("touchStart", [(cx, cy)])
    for step in range(1, 9):
        touch("touchMove", [(cx + 10 * step, cy + 5 * step)])
    touch("touchEnd", [])
    expect(page.locator(BOTTOM_RIGHT)).not_to_contain_text("W 1500 L -500")
    window = settled_window(page)

    # Two fingers spreading from 100 to 300 px apart: three times the magnification.
    fitted = zoom_in_overlay(page)
    touch("touchStart", [(cx - 50, cy), (cx + 50, cy)])
    for step in range(1, 11):
        touch("touchMove", [(cx - 50 - 10 * step, cy), (cx + 50 + 10 * step, cy)])
    wait_for_zoom(page, 3 * fitted)
    expect(page.locator(BOTTOM_RIGHT)).to_contain_text(window)  # a pinch is not a window drag
    pinched = zoom_in_overlay(page)
    page.keyboard.press("o")
    before = still_pixels(page)
    # Both fingers move 80 px right together: the image pans with them, no zoom.
    for step in range(1, 9):
        touch("touchMove", [(cx - 150 + 10 * step, cy), (cx + 150 + 10 * step, cy)])
    touch("touchEnd", [])
    after = still_pixels(page)
    page.keyboard.press("o")
    assert zoom_in_overlay(page) == pytest.approx(pinched, rel=0.001)
    moved = float(np.abs(after[:, 120:-120] - before[:, 40:-200]).mean())
    still = float(np.abs(after[:, 120:-120] - before[:, 120:-120]).mean())
    assert moved < 0.3 * still
    page.screenshot(path=str(artifacts_dir / "viewer-touch-pinch.png"))


def test_ct_presets_are_an_editable_table_saved_in_the_browser(
    page: Page, live_server: Any, ct_study: list[Instance], artifacts_dir: Path
) -> None:
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in_and_open(page, live_server)
    expect(page.locator(BOTTOM_LEFT)).to_contain_text("Im 1/99")
    options = page.locator("#preset option")
    for name in ("Brain (40/80)", "Lung (-600/1500)", "Liver (90/150)"):
        expect(options.filter(has_text=name)).to_have_count(1)
    page.click("#edit-presets")
    editor = page.locator("#preset-editor")
    expect(editor).to_be_visible()
    expect(editor).to_contain_text("Saved in this browser only")
    rows = editor.locator("tbody tr")
    expect(rows).to_have_count(6)
    brain, lung, liver = rows.nth(0), rows.nth(2), rows.nth(5)
    expect(brain.locator("input[name=name]")).to_have_value("Brain")

    # Bad input: the problem is named next to its field and nothing is saved.
    brain.locator("input[name=width]").fill("0")
    lung.locator("input[name=center]").fill("-6OO")
    page.click("#preset-save")
    expect(editor).to_be_visible()
    expect(brain.locator(".field-error").nth(2)).to_have_text("must be greater than 0")
    expect(brain.locator("input[name=width]")).to_have_attribute("aria-invalid", "true")
    expect(lung.locator(".field-error").nth(1)).to_have_text('"-6OO" is not a number')
    page.screenshot(path=str(artifacts_dir / "viewer-preset-editor-errors.png"))

    brain.locator("input[name=width]").fill("90")
    lung.locator("input[name=center]").fill("-650")
    lung.locator("input[name=width]").fill("1600")
    liver.locator("button", has_text="Remove").click()
    page.click("#preset-add")
    added = rows.last
    added.locator("input[name=name]").fill("Mediastinum")
    added.locator("input[name=center]").fill("50")
    added.locator("input[name=width]").fill("350")
    expect(brain.locator(".field-error").nth(2)).to_have_text("")
    page.screenshot(path=str(artifacts_dir / "viewer-preset-editor.png"))
    page.click("#preset-save")
    expect(editor).to_be_hidden()

    # The menu uses the edited table, and so does the next page load in this browser.
    expect(options.filter(has_text="Liver")).to_have_count(0)
    expect(options.filter(has_text="Brain (40/90)")).to_have_count(1)
    mediastinum = options.filter(has_text="Mediastinum (50/350)")
    page.select_option("#preset", value=mediastinum.get_attribute("value"))
    expect(page.locator(BOTTOM_RIGHT)).to_contain_text("W 350 L 50")
    page.reload()
    expect(page.locator(BOTTOM_LEFT)).to_contain_text("Im 1/99")
    expect(options.filter(has_text="Lung (-650/1600)")).to_have_count(1)
    page.keyboard.press("e")  # the shortcut opens the editor too
    expect(editor).to_be_visible()
    page.click("#preset-defaults")
    expect(rows).to_have_count(6)
    page.click("#preset-save")
    expect(editor).to_be_hidden()
    expect(options.filter(has_text="Liver (90/150)")).to_have_count(1)
    expect(options.filter(has_text="Mediastinum")).to_have_count(0)


def test_mouse_zoom_and_pan_tools(
    page: Page, live_server: Any, ct_study: list[Instance], artifacts_dir: Path
) -> None:
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in_and_open(page, live_server)
    expect(page.locator(BOTTOM_LEFT)).to_contain_text("Im 1/99")
    box = page.locator(ACTIVE).bounding_box()
    assert box is not None
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    fitted = zoom_in_overlay(page)

    # Right-drag zooms: 100 px up doubles the magnification; the window stays.
    page.mouse.move(cx, cy)
    page.mouse.down(button="right")
    page.mouse.move(cx, cy - 100, steps=5)
    page.mouse.up(button="right")
    wait_for_zoom(page, 2 * fitted)
    expect(page.locator(BOTTOM_RIGHT)).to_contain_text("W 1500 L -500")
    # Ctrl + wheel zooms by 1.25 about the pointer.
    page.keyboard.down("Control")
    page.mouse.wheel(0, -100)
    page.keyboard.up("Control")
    wait_for_zoom(page, 2.5 * fitted)
    expect(page.locator(BOTTOM_LEFT)).to_contain_text("Im 1/99")  # not a slice scroll

    # The pan tool (P): a drag moves the image with the pointer.
    page.keyboard.press("o")
    before = still_pixels(page)
    page.keyboard.press("p")
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 80, cy, steps=8)
    page.mouse.up()
    after = still_pixels(page)
    page.keyboard.press("o")
    expect(page.locator(BOTTOM_RIGHT)).to_contain_text("W 1500 L -500")  # no window change
    moved = float(np.abs(after[:, 120:-120] - before[:, 40:-200]).mean())
    still = float(np.abs(after[:, 120:-120] - before[:, 120:-120]).mean())
    assert moved < 0.3 * still
    page.screenshot(path=str(artifacts_dir / "viewer-mouse-zoom-pan.png"))


def overlay_slice(page: Page) -> int:
    """The slice number of the overlay's "Im k/99"."""
    text = page.locator(BOTTOM_LEFT).inner_text()
    return int(re.search(r"Im (\d+)/99", text).group(1))  # type: ignore[union-attr]


def expect_reset_view(page: Page, fitted: float) -> None:
    """The image's default window, uninverted, at fit, upright and unflipped."""
    expect(page.locator(BOTTOM_RIGHT)).to_contain_text("W 1500 L -500")
    wait_for_zoom(page, fitted)
    expect(page.locator(CANVAS)).to_have_attribute("data-rotation", "0")
    expect(page.locator(CANVAS)).to_have_attribute("data-flipped", "false")
    expect(page.locator(CANVAS)).to_have_attribute("data-inverted", "false")
    expect_letters(page, UPRIGHT_LETTERS)


UPRIGHT_LETTERS = {"left": "R", "right": "L", "top": "A", "bottom": "P"}


def test_reset_restores_window_zoom_rotation_and_flip_and_keeps_slice_and_cine(
    page: Page, live_server: Any, ct_study: list[Instance], artifacts_dir: Path
) -> None:
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in_and_open(page, live_server)
    expect(page.locator(BOTTOM_LEFT)).to_contain_text("Im 1/99")
    fitted = zoom_in_overlay(page)
    box = page.locator(ACTIVE).bounding_box()
    assert box is not None
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.locator(ACTIVE).hover()
    for _ in range(39):
        page.keyboard.press("ArrowDown")
    expect(page.locator(BOTTOM_LEFT)).to_contain_text("Im 40/99")
    expect_reset_view(page, fitted)
    page.keyboard.press("o")
    shown = still_pixels(page)
    page.keyboard.press("o")

    # Space: window (a preset, inverted), zoom and pan, rotation and flip all changed.
    brain = page.locator("#preset option", has_text="Brain").first.get_attribute("value")
    page.select_option("#preset", value=brain)
    expect(page.locator(BOTTOM_RIGHT)).to_contain_text("W 80 L 40")
    page.locator(ACTIVE).focus()
    for key in ("+", "+", "r", "h", "i"):
        page.keyboard.press(key)
    page.mouse.move(cx, cy)
    page.mouse.down(button="middle")
    page.mouse.move(cx + 60, cy + 40, steps=6)
    page.mouse.up(button="middle")
    wait_for_zoom(page, 4 * fitted)
    expect(page.locator(CANVAS)).to_have_attribute("data-rotation", "270")
    expect(page.locator(CANVAS)).to_have_attribute("data-flipped", "true")
    expect(page.locator(CANVAS)).to_have_attribute("data-inverted", "true")
    page.keyboard.press("Space")
    expect_reset_view(page, fitted)
    expect(page.locator(BOTTOM_LEFT)).to_contain_text("Im 40/99")
    expect(page.locator("#preset option:checked")).to_have_text("WINDOW1 (-500/1500)")
    page.keyboard.press("o")
    assert float(np.abs(still_pixels(page) - shown).mean()) < 1.0  # the view it started with
    page.keyboard.press("o")

    # The toolbar's Reset while cine plays: cine goes on from where it was.
    page.fill("#fps", "4")
    page.click("#cine")
    expect(page.locator("#cine")).to_have_text("Stop")
    expect(page.locator(BOTTOM_LEFT)).not_to_contain_text("Im 40/99")
    page.locator(ACTIVE).focus()
    for key in ("-", "+", "l", "v"):  # "-" at fit stays at fit: "+" after it zooms in
        page.keyboard.press(key)
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx - 120, cy + 50, steps=6)
    page.mouse.up()
    expect(page.locator(BOTTOM_RIGHT)).not_to_contain_text("W 1500 L -500")
    wait_for_zoom(page, 2 * fitted)
    expect(page.locator(CANVAS)).to_have_attribute("data-rotation", "270")
    expect(page.locator(CANVAS)).to_have_attribute("data-flipped", "true")
    before = overlay_slice(page)
    page.click("#reset")
    after = overlay_slice(page)
    assert before <= after <= before + 4  # 4 per second: the click takes well under a second
    expect_reset_view(page, fitted)
    expect(page.locator("#cine")).to_have_text("Stop")
    expect(page.locator(BOTTOM_LEFT)).not_to_contain_text(f"Im {after}/99")  # still advancing
    assert overlay_slice(page) > after
    page.screenshot(path=str(artifacts_dir / "viewer-reset-during-cine.png"))
    page.click("#cine")
    expect(page.locator("#cine")).to_have_text("Play")
