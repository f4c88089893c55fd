"""The viewer's controls in Chromium: the help panel, touch, the preset table, small frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.viewer_pages import ACTIVE, BOTTOM_LEFT, log_in_and_open
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
