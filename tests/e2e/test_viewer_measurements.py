"""Measurements in Chromium: the drawing tools, the measurement layer over the image
(zoom, pan, rotation, flip), the panel with the server's values, editing, undo/redo,
delete, reload, and labels shown as text."""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.urls import Resolver404, resolve
from PIL import Image
from playwright.sync_api import Page, Route, expect

from tests.e2e.viewer_pages import ACTIVE, BOTTOM_LEFT, CANVAS, log_in_and_open
from viewer.models import Instance

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PANEL = "#measurements-panel"
ITEMS = f"{PANEL} .measurement-list li"


def api_present() -> bool:
    try:
        resolve("/api/measurements")
    except Resolver404:
        return False
    return True


needs_api = pytest.mark.skipif(not api_present(), reason="POST /api/measurements not served yet")


def image_to_screen(
    page: Page,
    instance: Instance,
    x: float,
    y: float,
    *,
    magnification: float = 1,
    rotation: int = 0,
    flipped: bool = False,
) -> tuple[float, float]:
    """Where image point (x, y) (column, row; (0, 0) the top-left pixel's corner) is on the
    page for a centred view: math/transform.js written again, independently."""
    box = page.locator(ACTIVE).bounding_box()
    assert box is not None
    columns, rows = instance.columns, instance.rows
    assert columns is not None and rows is not None
    aspect = (instance.pixel_spacing_row_mm or 1) / (instance.pixel_spacing_column_mm or 1)
    width, height = (rows * aspect, columns) if rotation % 2 else (columns, rows * aspect)
    scale = min(box["width"] / width, box["height"] / height) * magnification
    dx, dy = (x - columns / 2) * scale, (y - rows / 2) * scale * aspect
    if flipped:
        dx = -dx
    for _ in range(rotation % 4):
        dx, dy = -dy, dx
    return box["x"] + box["width"] / 2 + dx, box["y"] + box["height"] / 2 + dy


def drag(page: Page, start: tuple[float, float], end: tuple[float, float]) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move((start[0] + end[0]) / 2, (start[1] + end[1]) / 2, steps=4)
    page.mouse.move(*end, steps=4)
    page.mouse.up()


def click(page: Page, point: tuple[float, float]) -> None:
    page.mouse.click(*point)


def open_ct(page: Page, live_server: Any) -> None:
    page.set_viewport_size({"width": 1400, "height": 900})
    log_in_and_open(page, live_server)
    expect(page.locator(BOTTOM_LEFT)).to_contain_text("Im 1/99")
    expect(page.locator(CANVAS)).to_have_attribute("data-url", re.compile("rendered"))


def test_points_drawn_at_zoom_rotation_and_flip_are_image_coordinates(
    page: Page, live_server: Any, ct_study: list[Instance], artifacts_dir: Path
) -> None:
    """What the browser sends is the image point under the pointer, whatever the view: the
    server is stubbed here (echoing what it is sent) so that only the drawing is tested."""
    sent: list[dict[str, Any]] = []

    def measurements(route: Route) -> None:
        if route.request.method == "GET":
            route.fulfill(status=200, content_type="application/json", body="[]")
            return
        body = json.loads(route.request.post_data or "{}")
        sent.append(body)
        saved = {
            **body,
            "id": len(sent),
            "author": "radiologist",
            "created_at": f"t{len(sent)}",
            "result": {"length": {"value": 1.0, "unit": "mm"}},
            "spacing_attribute": "x",
        }
        route.fulfill(status=201, content_type="application/json", body=json.dumps(saved))

    page.route(re.compile(r".*/api/(measurements|studies/[^/]+/measurements)$"), measurements)
    open_ct(page, live_server)
    instance = ct_study[0]
    page.keyboard.press("+")  # zoom 2
    page.keyboard.press("r")  # a quarter turn right
    page.keyboard.press("h")  # mirrored on the screen
    expect(page.locator(CANVAS)).to_have_attribute("data-rotation", "270")
    page.wait_for_load_state("networkidle")
    # The display is then R(270°)·F, which is what image_to_screen is told.
    view: dict[str, Any] = {"magnification": 2, "rotation": 3, "flipped": True}
    page.keyboard.press("d")
    expect(page.locator("[data-action=tool-length]")).to_have_attribute("aria-pressed", "true")
    start, end = (200.5, 240.5), (300.5, 260.5)
    drag(
        page,
        image_to_screen(page, instance, *start, **view),
        image_to_screen(page, instance, *end, **view),
    )
    expect(page.locator(ITEMS)).to_have_count(1)
    points = sent[0]["points"]
    assert sent[0]["kind"] == "length" and sent[0]["frame"] == 1
    assert sent[0]["sop_instance_uid"] == instance.sop_instance_uid
    # Within a screen pixel of the image point (1 CSS px ≈ 0.3 image px at this zoom).
    for got, want in zip(points, [start, end], strict=True):
        assert got == pytest.approx(list(want), abs=0.6)
    # A Cobb angle by two drags, an ellipse by one: four points, two corners.
    page.keyboard.press("b")
    for a, b in [((150, 150), (250, 170)), ((160, 300), (260, 330))]:
        drag(
            page,
            image_to_screen(page, instance, *a, **view),
            image_to_screen(page, instance, *b, **view),
        )
    expect(page.locator(ITEMS)).to_have_count(2)
    assert len(sent[1]["points"]) == 4 and sent[1]["kind"] == "angle"
    for got, want in zip(
        sent[1]["points"], [(150, 150), (250, 170), (160, 300), (260, 330)], strict=True
    ):
        assert got == pytest.approx(list(want), abs=0.6)
    page.keyboard.press("f")
    for vertex in [(320, 320), (380, 320), (380, 380)]:
        click(page, image_to_screen(page, instance, *vertex, **view))
    page.keyboard.press("Enter")
    expect(page.locator(ITEMS)).to_have_count(3)
    assert sent[2]["kind"] == "polygon"
    for got, want in zip(sent[2]["points"], [(320, 320), (380, 320), (380, 380)], strict=True):
        assert got == pytest.approx(list(want), abs=0.6)
    page.screenshot(path=str(artifacts_dir / "viewer-measurements-turned.png"))


def panel_item(page: Page, index: int = 0) -> Any:
    return page.locator(ITEMS).nth(index)


def wait_saved(page: Page, count: int) -> list[dict[str, Any]]:
    expect(page.locator(ITEMS)).to_have_count(count)
    return page.evaluate("window.loupeMeasurements.items")


@needs_api
def test_each_tool_measures_on_the_ct_and_the_panel_shows_the_server_values(
    page: Page, live_server: Any, ct_study: list[Instance], artifacts_dir: Path
) -> None:
    open_ct(page, live_server)
    instance = ct_study[0]
    spacing = instance.pixel_spacing_column_mm
    assert spacing is not None
    at = lambda x, y: image_to_screen(page, instance, x, y)  # noqa: E731
    page.keyboard.press("d")
    drag(page, at(156.5, 300.5), at(356.5, 300.5))  # 200 pixels along a row
    items = wait_saved(page, 1)
    length = items[0]["result"]["length"]
    assert length["unit"] == "mm"
    assert length["value"] == pytest.approx(200 * spacing, abs=spacing)
    expect(panel_item(page)).to_contain_text(f"{length['value']:.1f} mm")
    page.keyboard.press("a")
    drag(page, at(100, 100), at(150, 100))
    click(page, at(150, 50))
    items = wait_saved(page, 2)
    assert items[0]["result"]["angle"]["value"] == pytest.approx(90, abs=1.5)
    expect(panel_item(page)).to_contain_text("°")
    page.keyboard.press("q")
    drag(page, at(226, 226), at(286, 286))
    items = wait_saved(page, 3)
    ellipse = items[0]["result"]
    assert ellipse["mean"]["unit"] == "[hnsf'U]"
    assert ellipse["area"]["value"] == pytest.approx(math.pi * 30 * 30 * spacing**2, rel=0.05)
    expect(panel_item(page)).to_contain_text("HU")
    expect(panel_item(page)).to_contain_text("mm²")
    page.keyboard.press("x")
    drag(page, at(300, 330), at(340, 350))
    items = wait_saved(page, 4)
    assert items[0]["result"]["pixels"]["value"] == pytest.approx(800, abs=80)
    page.keyboard.press("f")
    for vertex in [(200, 380), (260, 380), (230, 420)]:
        click(page, at(*vertex))
    page.keyboard.press("Enter")
    items = wait_saved(page, 5)
    assert items[0]["kind"] == "polygon"
    page.keyboard.press("t")
    click(page, at(256.5, 256.5))
    items = wait_saved(page, 6)
    assert items[0]["result"]["value"]["unit"] == "[hnsf'U]"
    page.keyboard.press("g")
    page.once("dialog", lambda dialog: dialog.accept("<script>window.pwned=1</script>lesion"))
    drag(page, at(100, 450), at(200, 400))
    items = wait_saved(page, 7)
    expect(panel_item(page).locator(".label")).to_have_text("<script>window.pwned=1</script>lesion")
    assert page.evaluate("window.pwned") is None
    assert page.locator(f"{PANEL} script").count() == 0
    page.wait_for_timeout(300)
    page.screenshot(path=str(artifacts_dir / "viewer-measurements-tools.png"))


@needs_api
def test_edit_a_handle_undo_redo_delete_and_reload(
    page: Page, live_server: Any, ct_study: list[Instance], artifacts_dir: Path
) -> None:
    open_ct(page, live_server)
    instance = ct_study[0]
    spacing = instance.pixel_spacing_column_mm
    assert spacing is not None
    at = lambda x, y: image_to_screen(page, instance, x, y)  # noqa: E731
    page.keyboard.press("d")
    drag(page, at(156.5, 300.5), at(256.5, 300.5))
    first = wait_saved(page, 1)[0]["result"]["length"]["value"]
    assert first == pytest.approx(100 * spacing, abs=spacing)
    # Back to window/level: a drag on the line's end handle still edits it.
    page.keyboard.press("w")
    drag(page, at(256.5, 300.5), at(356.5, 300.5))
    expect(panel_item(page)).to_contain_text(f"{200 * spacing:.0f}"[:2])
    edited = page.evaluate("window.loupeMeasurements.items[0]")
    assert edited["result"]["length"]["value"] == pytest.approx(200 * spacing, abs=spacing)
    page.screenshot(path=str(artifacts_dir / "viewer-measurements-edited.png"))
    page.keyboard.press("Control+z")
    expect(panel_item(page)).to_contain_text(f"{first:.1f} mm")
    page.keyboard.press("Control+y")
    expect(panel_item(page)).to_contain_text(f"{edited['result']['length']['value']:.1f} mm")
    # Delete the selected one; undo brings it back (made again on the server).
    page.keyboard.press("Delete")
    expect(page.locator(ITEMS)).to_have_count(0)
    page.keyboard.press("Control+z")
    expect(page.locator(ITEMS)).to_have_count(1)
    page.reload()
    expect(page.locator(ITEMS)).to_have_count(1)
    expect(panel_item(page)).to_contain_text(f"{edited['result']['length']['value']:.1f} mm")
    # In another viewport showing the same image: drawn there too; clicking the panel
    # item brings its slice to the active viewport.
    page.keyboard.press("End")
    expect(page.locator(BOTTOM_LEFT)).to_contain_text("Im 99/99")
    panel_item(page).locator("button.measurement").click()
    expect(page.locator(BOTTOM_LEFT)).to_contain_text("Im 1/99")
    # Two viewports of the same series: the line is drawn in both.
    page.select_option("#layout", "1x2")
    expect(page.locator(".viewport")).to_have_count(2)
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(300)
    for index in range(2):
        shot = page.locator(".viewport canvas").nth(index).screenshot()
        rgb = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB")).astype(int)
        # Yellow (#ffd23f), or cyan (#4fd1ff) where selected.
        yellow = (rgb[..., 0] > 200) & (rgb[..., 1] > 160) & (rgb[..., 2] < 110)
        cyan = (rgb[..., 0] < 130) & (rgb[..., 1] > 170) & (rgb[..., 2] > 200)
        assert (yellow | cyan).sum() > 50, f"viewport {index} does not draw the measurement"
    page.screenshot(path=str(artifacts_dir / "viewer-measurements-reloaded.png"))
