"""What the viewer's browser tests share: the user's password, selectors, logging in."""

from __future__ import annotations

import io
import math
import re
from typing import Any

import numpy as np
from PIL import Image
from playwright.sync_api import FloatRect, Locator, Page, expect

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


RADIOGRAPH = ("cr-monochrome1", "Monochrome1-Jpeg.dcm")  # 2010 columns × 2446 rows
RADIOGRAPH_COLUMNS, RADIOGRAPH_ROWS, TILE = 2010, 2446, 256


class TileRequests:
    """The level-0 tiles of the radiograph the viewer asks for, as (level, column, row)."""

    def __init__(self, page: Page) -> None:
        self._page = page
        self._urls: list[str] = []
        page.on("request", lambda r: self._urls.append(r.url) if "/tiles/" in r.url else None)

    def since_last(self) -> set[tuple[int, ...]]:
        """The tiles requested since the last call, once the page is idle."""
        self._page.wait_for_load_state("networkidle")
        self._page.wait_for_timeout(300)
        found = {
            tuple(int(v) for v in u.split("/tiles/")[1].split("?")[0].split("/"))
            for u in self._urls
        }
        self._urls.clear()
        return found


def open_radiograph(page: Page, live_server: Any, shared_dicom: Any, users: Any) -> TileRequests:
    """Store the 2010×2446 radiograph, open it at 1280×800 and record its tile requests
    from the start (at fit there must be none: one whole-image render)."""
    from viewer.services import ingest

    users.objects.create_user("radiologist", password=PASSWORD)
    assert ingest.ingest_file(shared_dicom.joinpath(*RADIOGRAPH)).status == "stored"
    page.set_viewport_size({"width": 1280, "height": 800})
    tiles = TileRequests(page)
    log_in_and_open(page, live_server)
    expect(page.locator(BOTTOM_LEFT)).to_contain_text("Im 1/1")
    return tiles


def radiograph_tiles_in_view(
    box: FloatRect, magnification: int, *, turned: bool = False
) -> set[tuple[int, ...]]:
    """Level-0 tiles (256 px; 8 columns × 10 rows) that a centred view at this zoom
    covers; turned a quarter, the image's rows run across the screen and its columns down."""
    across, down = (
        (RADIOGRAPH_ROWS, RADIOGRAPH_COLUMNS) if turned else (RADIOGRAPH_COLUMNS, RADIOGRAPH_ROWS)
    )
    scale = magnification * min(box["width"] / across, box["height"] / down)
    half_across, half_down = box["width"] / 2 / scale, box["height"] / 2 / scale
    half_x, half_y = (half_down, half_across) if turned else (half_across, half_down)
    centre_x, centre_y = RADIOGRAPH_COLUMNS / 2, RADIOGRAPH_ROWS / 2
    columns = range(int((centre_x - half_x) // TILE), int((centre_x + half_x) // TILE) + 1)
    rows = range(int((centre_y - half_y) // TILE), int((centre_y + half_y) // TILE) + 1)
    last_column, last_row = -(-RADIOGRAPH_COLUMNS // TILE), -(-RADIOGRAPH_ROWS // TILE)
    return {(0, c, r) for c in columns for r in rows if 0 <= c < last_column and 0 <= r < last_row}


# The automation hooks every viewport element carries (static/viewer/js/viewport.js),
# without their "data-" prefix.
HOOKS = (
    "study-instance-uid",
    "series-instance-uid",
    "sop-instance-uid",
    "frame",
    "position-mm",
    "window",
    "linked",
)


def viewport_hooks(
    viewport: Locator, extra: tuple[str, ...] = ("magnification", "pan")
) -> dict[str, str]:
    """A viewport's hooks (and ``extra`` data-* attributes) by name without "data-"; a
    missing one is left out. Read attribute by attribute: no page.evaluate, so it works
    under the viewer's CSP."""
    found = {}
    for name in (*HOOKS, *extra):
        value = viewport.get_attribute(f"data-{name}")
        if value is not None:
            found[name] = value
    return found


def wait_for_hooks(viewport: Locator, expected: dict[str, str]) -> None:
    """Wait until the viewport's hooks (names without "data-") have these values."""
    for name, value in expected.items():
        expect(viewport).to_have_attribute(f"data-{name}", value, timeout=20_000)
