"""Rotate and flip in Chromium: the drawn image, the orientation letters, the tiles fetched."""

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
    open_radiograph,
    radiograph_tiles_in_view,
    still_pixels,
)
from viewer.models import Instance

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def image_square(page: Page) -> np.ndarray:
    """The canvas's central square (where a square image is drawn), without overlays."""
    pixels = still_pixels(page)
    height, width = pixels.shape
    side = min(height, width) - 16
    top, left = (height - side) // 2, (width - side) // 2
    return pixels[top : top + side, left : left + side]


def mismatch(a: np.ndarray, b: np.ndarray) -> float:
    """Mean grey-level difference, allowing the one-pixel shift of a half-pixel centre."""
    best = float("inf")
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            shifted = np.roll(b, (dy, dx), axis=(0, 1))[2:-2, 2:-2]
            best = min(best, float(np.abs(a[2:-2, 2:-2] - shifted).mean()))
    return best


def drawn(page: Page, rotation: int, flipped: bool) -> None:
    expect(page.locator(CANVAS)).to_have_attribute("data-rotation", str(rotation))
    expect(page.locator(CANVAS)).to_have_attribute("data-flipped", str(flipped).lower())


def test_rotate_and_flip_turn_the_image_and_its_letters(
    page: Page, live_server: Any, ct_study: list[Instance], artifacts_dir: Path
) -> None:
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in_and_open(page, live_server)
    expect(page.locator(BOTTOM_LEFT)).to_contain_text("Im 1/99")
    page.locator(ACTIVE).hover()
    for _ in range(39):
        page.keyboard.press("ArrowDown")
    expect(page.locator(BOTTOM_LEFT)).to_contain_text("Im 40/99")
    # Axial, head first supine (PS3.3 C.7.6.2.1.1): patient's left on the right, anterior up.
    expect_letters(page, {"left": "R", "right": "L", "top": "A", "bottom": "P"})
    page.keyboard.press("o")  # overlays off for the pixel comparisons
    drawn(page, 0, False)
    upright = image_square(page)

    page.click("[data-action=rotate-right]")  # the toolbar button
    drawn(page, 90, False)
    turned = image_square(page)
    assert mismatch(turned, np.rot90(upright, k=-1)) < 0.3 * mismatch(turned, upright)
    page.keyboard.press("o")
    # The anterior edge went to the right, the patient's left to the bottom.
    expect_letters(page, {"left": "P", "right": "A", "top": "R", "bottom": "L"})
    page.screenshot(path=str(artifacts_dir / "viewer-rotated-right.png"))

    page.keyboard.press("h")  # flip horizontally: what is on screen swaps left and right
    drawn(page, 270, True)
    expect_letters(page, {"left": "A", "right": "P", "top": "R", "bottom": "L"})
    page.keyboard.press("o")
    mirrored = image_square(page)
    assert mismatch(mirrored, np.fliplr(turned)) < 0.3 * mismatch(mirrored, turned)
    page.keyboard.press("o")
    page.screenshot(path=str(artifacts_dir / "viewer-rotated-and-flipped.png"))

    page.keyboard.press("v")  # flip vertically: top and bottom swap
    expect_letters(page, {"left": "A", "right": "P", "top": "L", "bottom": "R"})
    page.keyboard.press("l")  # rotate left: the letters turn with the image
    expect_letters(page, {"left": "L", "right": "R", "top": "P", "bottom": "A"})
    drawn(page, 180, False)
    # The scale bar stays true: its label in mm, its length from the zoom in the overlay.
    label = page.locator(f"{ACTIVE} .scale-bar .label")
    expect(label).to_have_text(re.compile(r"^\d+ mm \(PixelSpacing\)$"))
    millimetres = int(label.inner_text().split()[0])
    bar = page.locator(f"{ACTIVE} .scale-bar .bar").bounding_box()
    zoom_text = page.locator(BOTTOM_RIGHT).inner_text()
    zoom = float(re.search(r"Zoom ([\d.]+)", zoom_text).group(1))  # type: ignore[union-attr]
    spacing = ct_study[0].pixel_spacing_column_mm
    assert bar and spacing
    assert abs(bar["width"] - millimetres / spacing * zoom) < 0.02 * bar["width"] + 2

    page.keyboard.press("Space")  # reset
    drawn(page, 0, False)
    expect_letters(page, {"left": "R", "right": "L", "top": "A", "bottom": "P"})


def test_rotated_zoom_fetches_only_the_tiles_in_view(
    page: Page, live_server: Any, shared_dicom: Path, django_user_model: Any, artifacts_dir: Path
) -> None:
    """The 2010×2446 radiograph turned a quarter: the view covers other tiles than upright."""
    tiles = open_radiograph(page, live_server, shared_dicom, django_user_model)
    page.locator(ACTIVE).hover()
    page.keyboard.press("r")
    expect(page.locator(CANVAS)).to_have_attribute("data-rotation", "90")
    assert tiles.since_last() == set()  # turned at fit: still one whole-image render
    box = page.locator(CANVAS).bounding_box()
    assert box is not None

    page.keyboard.press("+")
    at_two = tiles.since_last()
    page.keyboard.press("+")
    at_four = tiles.since_last()
    page.screenshot(path=str(artifacts_dir / "viewer-radiograph-rotated-zoom-4x.png"))
    assert radiograph_tiles_in_view(box, 4, turned=True) != radiograph_tiles_in_view(box, 4)
    assert at_two and at_two <= radiograph_tiles_in_view(box, 2, turned=True)
    assert at_four <= radiograph_tiles_in_view(box, 4, turned=True)
    assert radiograph_tiles_in_view(box, 4, turned=True) <= at_two | at_four
