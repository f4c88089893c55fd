"""static/viewer/js/math/ (pure geometry, no DOM) run in Chromium, the engine that runs it.

No server data: each test imports the module into a blank page of the live server and
checks laws and worked examples of the display transform and the orientation letters.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def math_page(browser: Any, live_server: Any) -> Iterator[Page]:
    # bypass_csp: page.evaluate is string evaluation, which the viewer's CSP refuses.
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    page.goto(f"{live_server.url}/static/viewer/js/math/transform.js")
    yield page
    context.close()


def run(page: Page, body: str) -> Any:
    """Evaluate ``body`` (statements ending in a return) with T = transform.js and
    O = orientation.js imported."""
    return page.evaluate(
        "async (body) => {"
        " const T = await import('/static/viewer/js/math/transform.js');"
        " const O = await import('/static/viewer/js/math/orientation.js');"
        " return new Function('T', 'O', body)(T, O); }",
        body,
    )


def test_turns_compose_like_the_symmetries_of_a_square(math_page: Page) -> None:
    result = run(
        math_page,
        """
        const id = T.IDENTITY_TURN;
        const same = (a, b) => a.rotation === b.rotation && a.flipped === b.flipped;
        let four = id; for (let i = 0; i < 4; i++) four = T.rotated(four, 1);
        return {
          fourQuarters: same(four, id),
          leftUndoesRight: same(T.rotated(T.rotated(id, 1), -1), id),
          flipTwice: same(T.flippedHorizontally(T.flippedHorizontally(id)), id),
          flipVTwice: same(T.flippedVertically(T.flippedVertically(T.rotated(id, 1))), T.rotated(id, 1)),
          bothFlipsAreHalfTurn: same(T.flippedVertically(T.flippedHorizontally(id)), T.rotated(id, 2)),
        };
        """,
    )
    assert result == {
        "fourQuarters": True,
        "leftUndoesRight": True,
        "flipTwice": True,
        "flipVTwice": True,
        "bothFlipsAreHalfTurn": True,
    }


def test_display_transform_worked_example(math_page: Page) -> None:
    """A 200×100 image (2:1) on a 400×400 canvas, upright it fits the width (2 px per
    pixel); turned a quarter clockwise it fits the height, its top-left corner at the
    top-right."""
    corners = run(
        math_page,
        """
        const view = { columns: 200, rows: 100, aspect: 1, magnification: 1, center: null, rotation: 0, flipped: false };
        const canvas = { width: 400, height: 400 };
        const at = (v, p) => T.apply(T.displayTransform(v, canvas), p);
        const turned = { ...view, rotation: 1 };
        const mirrored = { ...view, flipped: true };
        return {
          upright: [at(view, { x: 0, y: 0 }), at(view, { x: 200, y: 100 })],
          uprightScale: T.displayTransform(view, canvas).scale,
          turned: [at(turned, { x: 0, y: 0 }), at(turned, { x: 200, y: 100 })],
          turnedScale: T.displayTransform(turned, canvas).scale,
          mirrored: at(mirrored, { x: 0, y: 0 }),
        };
        """,
    )
    assert corners["upright"] == [{"x": 0, "y": 100}, {"x": 400, "y": 300}]
    assert corners["uprightScale"] == 2
    assert corners["turned"] == [{"x": 300, "y": 0}, {"x": 100, "y": 400}]
    assert corners["turnedScale"] == 2
    assert corners["mirrored"] == {"x": 400, "y": 100}


def test_zoom_about_a_point_keeps_that_point_and_tiles_follow_the_turn(math_page: Page) -> None:
    result = run(
        math_page,
        """
        const view = { columns: 2048, rows: 1024, aspect: 1, magnification: 1, center: null, rotation: 1, flipped: true };
        const canvas = { width: 800, height: 600 };
        const anchor = { x: 123, y: 456 };
        const next = { ...view, magnification: 4 };
        next.center = T.centerKeeping(view, next, canvas, anchor);
        const before = T.apply(T.invert(T.displayTransform(view, canvas)), anchor);
        const after = T.apply(T.invert(T.displayTransform(next, canvas)), anchor);
        const level = { level: 0, columns: 8, rows: 4 };
        const centred = { ...view, magnification: 4 };
        return {
          drift: Math.hypot(before.x - after.x, before.y - after.y),
          tiles: T.tilesInView(centred, canvas, level, 256),
          rect: T.visibleImageRect(centred, canvas),
        };
        """,
    )
    assert result["drift"] < 1e-9
    # Turned, the 2048 columns run down the 600 px height: fit 600/2048 per pixel, at 4×
    # the view spans 600/(4·0.293) = 512 columns and 800/(4·0.293) ≈ 683 rows.
    rect = result["rect"]
    assert rect["right"] - rect["left"] == pytest.approx(512)
    assert rect["bottom"] - rect["top"] == pytest.approx(800 / 600 * 512)
    assert {(t["column"], t["row"]) for t in result["tiles"]} == {
        (c, r) for c in range(3, 5) for r in range(0, 4)
    }


def test_orientation_letters_follow_the_display(math_page: Page) -> None:
    letters = run(
        math_page,
        """
        const view = { columns: 512, rows: 512, aspect: 1, magnification: 1, center: null, rotation: 0, flipped: false };
        const canvas = { width: 512, height: 512 };
        const axial = [1, 0, 0, 0, 1, 0];
        const coronal = [1, 0, 0, 0, 0, -1];
        const m = (v) => T.displayTransform(v, canvas);
        return {
          axial: O.edgeLetters(axial, m(view)),
          axialLeft: O.edgeLetters(axial, m({ ...view, rotation: 3 })),
          coronalFlipped: O.edgeLetters(coronal, m({ ...view, flipped: true })),
          oblique: O.directionLetters([0.8, 0.5, 0.1]),
          none: O.edgeLetters(null, m(view)),
        };
        """,
    )
    assert letters["axial"] == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    assert letters["axialLeft"] == {"left": "A", "right": "P", "top": "L", "bottom": "R"}
    assert letters["coronalFlipped"] == {"left": "L", "right": "R", "top": "H", "bottom": "F"}
    assert letters["oblique"] == "LP"
    assert letters["none"] == {"left": "", "right": "", "top": "", "bottom": ""}
