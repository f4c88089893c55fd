"""The bindings table (static/viewer/js/toolbox.js) in Chromium: the mouse inputs it lists are
the ones the layout routes, to the tools it names, and the ones the help panel shows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.viewer_pages import (
    ACTIVE,
    BOTTOM_LEFT,
    BOTTOM_RIGHT,
    log_in_and_open,
    still_pixels,
)
from viewer.models import Instance

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def viewer_page(browser: Any, live_server: Any, ct_study: list[Instance]) -> Iterator[Page]:
    """The viewer on the CT, 1280×800; bypass_csp: page.evaluate is string evaluation."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    page = context.new_page()
    log_in_and_open(page, live_server)
    expect(page.locator(BOTTOM_LEFT)).to_contain_text("Im 1/99")
    yield page
    context.close()


def run(page: Page, body: str) -> Any:
    """Evaluate ``body`` (statements ending in a return) with B = toolbox.js imported and
    ``cell`` a viewport cell made by layout.js's own Layout (``layout``)."""
    return page.evaluate(
        "async (body) => {"
        " const B = await import('/static/viewer/js/toolbox.js');"
        " const { Layout } = await import('/static/viewer/js/layout.js');"
        " const template = document.getElementById('viewport-template');"
        " const layout = new Layout(document.createElement('div'), template, []);"
        " const cell = layout.makeCell();"
        " const toolName = (tool) => ['windowLevel', 'pan', 'zoom', 'scroll'].find((n) => cell[n] === tool) ?? null;"
        " return new Function('B', 'layout', 'cell', 'toolName', body)(B, layout, cell, toolName); }",
        body,
    )


def test_every_mouse_input_of_the_table_routes_to_the_tool_its_row_names(
    viewer_page: Page,
) -> None:
    rows = run(
        viewer_page,
        """
        const methods = { drag: ["pointerDown", "pointerMove", "pointerUp"], wheel: ["wheel"] };
        return B.BINDINGS.filter((b) => b.mouse).flatMap((binding) =>
          binding.mouse.map((mouse) => {
            const event = { button: mouse.button ?? 0, shiftKey: Boolean(mouse.shift), ctrlKey: Boolean(mouse.ctrl) };
            const tool = layout.toolFor(cell, mouse.input, event);
            return {
              name: B.mouseName(mouse),
              row: binding.label,
              found: B.gestureFor(mouse.input, event)?.label ?? null,
              named: binding.tool === "active" ? layout.tool : binding.tool,
              routed: toolName(tool),
              handles: methods[mouse.input].every((m) => typeof tool?.[m] === "function"),
            };
          }),
        );
        """,
    )
    # Today's mouse gestures, each found as its own row and handled by the tool it names.
    assert {r["name"] for r in rows} == {
        "Wheel",
        "Drag",
        "Shift-drag",
        "Middle-drag",
        "Right-drag",
        "Ctrl + wheel",
    }
    for row in rows:
        assert row["found"] == row["row"], row
        assert row["routed"] == row["named"], row
        assert row["handles"], row


def test_the_routing_is_todays_and_follows_the_table(viewer_page: Page) -> None:
    routed = run(
        viewer_page,
        """
        const cases = [
          ["drag", 0, false, false], ["drag", 1, false, false], ["drag", 2, false, false],
          ["drag", 3, false, false], ["drag", 0, true, false], ["drag", 1, true, false],
          ["drag", 2, true, false], ["drag", 0, false, true], ["drag", 2, false, true],
          ["wheel", 0, false, false], ["wheel", 0, true, false], ["wheel", 0, false, true],
          ["wheel", 0, true, true],
        ];
        const route = () => cases.map(([input, button, shiftKey, ctrlKey]) =>
          toolName(layout.toolFor(cell, input, { button, shiftKey, ctrlKey })));
        const today = route();
        layout.tool = "zoom";  // the drag tool chosen with Z
        const zoomTool = route();
        layout.tool = "windowLevel";
        const right = B.BINDINGS.find((b) => b.mouse?.some((m) => m.button === 2));
        right.tool = "pan";  // the table changed, nothing else
        const changed = route();
        right.tool = "zoom";
        return { today, zoomTool, changed };
        """,
    )
    today = [
        *("windowLevel", "pan", "zoom", "windowLevel"),  # primary, middle, right, back button
        *("pan", "pan", "pan"),  # Shift with any button
        *("windowLevel", "zoom"),  # Ctrl does not change a drag
        *("scroll", "scroll", "zoom", "zoom"),  # the wheel: Ctrl zooms, Shift does not
    ]
    assert routed["today"] == today
    assert routed["zoomTool"] == [
        "zoom" if tool == "windowLevel" else tool for tool in today
    ]  # a plain drag is the chosen tool's
    assert routed["changed"] == ["pan" if i in (2, 8) else t for i, t in enumerate(today)]


def test_the_help_panel_names_the_mouse_inputs_the_layout_routes(
    viewer_page: Page, artifacts_dir: Path
) -> None:
    page = viewer_page
    names = run(
        page,
        "return B.BINDINGS.filter((b) => b.kind === 'gesture').map((b) => B.gestureNames(b));",
    )
    page.locator(ACTIVE).hover()
    page.keyboard.press("?")
    rows = page.locator("#help-panel tbody tr.gesture")
    expect(rows).to_have_count(len(names))
    for index, shown in enumerate(names):
        expect(rows.nth(index).locator("td").first.locator("span")).to_have_text(shown)
    wheel = page.locator("#help-panel tr.gesture", has_text="Scroll slices")
    expect(wheel.locator("span")).to_have_text(["Wheel"])
    pan = page.locator("#help-panel tr.gesture", has_text="Pan").first
    expect(pan.locator("span")).to_have_text(["Shift-drag", "Middle-drag"])
    page.screenshot(path=str(artifacts_dir / "viewer-help-mouse-gestures.png"))
    page.keyboard.press("Escape")

    # And with a real mouse: Shift-drag and middle-drag pan (no window change), the wheel
    # scrolls, a plain drag windows.
    box = page.locator(ACTIVE).bounding_box()
    assert box is not None
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.keyboard.press("+")
    page.keyboard.press("o")
    for hold, button in (("Shift", "left"), (None, "middle")):
        before = still_pixels(page)
        page.mouse.move(cx, cy)
        if hold:
            page.keyboard.down(hold)
        page.mouse.down(button=button)  # type: ignore[arg-type]
        page.mouse.move(cx + 80, cy, steps=8)
        page.mouse.up(button=button)  # type: ignore[arg-type]
        if hold:
            page.keyboard.up(hold)
        after = still_pixels(page)
        moved = float(np.abs(after[:, 120:-120] - before[:, 40:-200]).mean())
        still = float(np.abs(after[:, 120:-120] - before[:, 120:-120]).mean())
        assert moved < 0.3 * still, (hold, button)
    page.keyboard.press("o")
    expect(page.locator(BOTTOM_RIGHT)).to_contain_text("W 1500 L -500")
    page.mouse.wheel(0, 100)
    expect(page.locator(BOTTOM_LEFT)).to_contain_text("Im 2/99")
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx - 100, cy + 40, steps=5)
    page.mouse.up()
    expect(page.locator(BOTTOM_RIGHT)).not_to_contain_text("W 1500 L -500")
