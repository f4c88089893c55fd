"""What the viewer's browser tests share: the user's password, selectors, logging in."""

from __future__ import annotations

import io
import math
import re
from typing import Any

import numpy as np
from PIL import Image
from playwright.sync_api import Page, expect

PASSWORD = "a-long-e2e-password-42"
ACTIVE = ".viewport.active"
CANVAS = f"{ACTIVE} canvas"
MESSAGE = f"{ACTIVE} .viewport-message"
TOP_RIGHT = f"{ACTIVE} .overlay.top-right"
BOTTOM_LEFT = f"{ACTIVE} .overlay.bottom-left"
BOTTOM_RIGHT = f"{ACTIVE} .overlay.bottom-right"


def log_in(page: Page, live_server: Any) -> None:
    page.goto(f"{live_server.url}/")
    page.fill("input[name=username]", "radiologist")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def log_in_and_open(page: Page, live_server: Any) -> None:
    """Log in and open the first study of the worklist in the viewer."""
    log_in(page, live_server)
    page.locator("a.open").first.click()


def canvas_pixels(page: Page, selector: str = CANVAS) -> np.ndarray:
    """The canvas as the screen shows it (overlays included), grey levels."""
    return np.asarray(Image.open(io.BytesIO(page.locator(selector).screenshot())).convert("L"))


def expect_letters(page: Page, letters: dict[str, str], viewport: str = ACTIVE) -> None:
    """The orientation letters, waited for (a key press is handled after it returns)."""
    for edge, letter in letters.items():
        expect(page.locator(f"{viewport} .orientation.{edge}")).to_have_text(letter)


def js_round(text: str) -> int:
    """JavaScript's Math.round: halves go up."""
    return math.floor(float(text) + 0.5)


def settled_window(page: Page) -> str:
    """The overlay's "W … L …" once the exact render for it is on the canvas (pointer
    moves arrive once per animation frame, so a drag ends a little after its last event)."""
    for _ in range(100):
        shown = page.locator(BOTTOM_RIGHT).inner_text().splitlines()[0]
        url = page.locator(CANVAS).get_attribute("data-url") or ""
        found = re.search(r"window=(-?[\d.]+)%2C([\d.]+)", url)
        if found and shown == f"W {js_round(found[2])} L {js_round(found[1])}":
            return shown
        page.wait_for_timeout(50)
    raise AssertionError(f"the window in the overlay ({shown}) was never rendered ({url})")


def still_pixels(page: Page) -> np.ndarray:
    """The canvas once it has stopped changing: the network is idle (tiles in) and two
    screenshots in a row agree (the last coalesced pointer move has been drawn)."""
    page.wait_for_load_state("networkidle")
    previous = canvas_pixels(page).astype(int)
    for _ in range(40):
        page.wait_for_timeout(100)
        current = canvas_pixels(page).astype(int)
        if np.array_equal(current, previous):
            return current
        previous = current
    raise AssertionError("the canvas kept changing")
