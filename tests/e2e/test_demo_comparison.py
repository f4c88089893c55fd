"""The demo, in Chromium: ``manage.py demo`` sets up Loupe (the CT torso phantom, current
and prior, the shipped hanging protocols, the demo EHR's registration), and the current
phantom study opens with its prior hung beside it by "CT chest with prior" and linked:
opened directly by the demo user, and launched from the demo EHR's chart by its physician
(a clinician whose scope, the chart's patient, holds the prior too).

The demo runs as ``scripts/demo.sh`` runs it (``manage.py demo``, here ``--no-serve`` with
the live server's port), and the chart is served from the config file the demo wrote, on
``http://localhost:<port>`` while Loupe is on ``http://127.0.0.1:<port>``, as in the demo.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from playwright.sync_api import Browser, Frame, Page, expect

from ehrlaunch.demo import ehr as demo_ehr
from tests.servers import free_port
from viewer.demo.phantom import DEFAULT_SPEC, ground_truth

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CURRENT, PRIOR = ground_truth(DEFAULT_SPEC)["studies"]
PROTOCOL = "CT chest with prior"
VIEWPORTS = ".grid .viewport"
POSITION = re.compile(r"^-?\d+\.\d{2}$")


@pytest.fixture(scope="session")
def demo_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data folder for the session: the demo writes the phantom there once."""
    return tmp_path_factory.mktemp("demo-data")


@pytest.fixture
def demo(settings: Any, demo_data_dir: Path, live_server: Any) -> dict[str, Any]:
    """``manage.py demo --no-serve`` for the live server's port: Loupe's URL and the demo
    user's password as it prints them, and the demo EHR's config."""
    settings.DATA_DIR = demo_data_dir
    port = urlsplit(live_server.url).port
    out = io.StringIO()
    call_command(
        "demo",
        "--no-serve",
        "--port",
        str(port),
        "--ehr-port",
        str(free_port()),
        stdout=out,
        stderr=io.StringIO(),
    )
    output = out.getvalue()
    url = re.search(r"open:\s+(\S+)", output)
    password = re.search(r"log in as:\s+demo / (\S+)", output)
    assert url and password, output
    config = json.loads((demo_data_dir / "demo" / "demo-ehr.json").read_text())
    return {"url": url.group(1).rstrip("/"), "password": password.group(1), "ehr": config}


@pytest.fixture
def wide_page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 860})
    page = context.new_page()
    yield page
    context.close()


def expect_hung_and_linked(view: Page | Frame) -> None:
    """Two viewports, the current phantom study and its prior, by the named protocol,
    linked (the two frames of reference: locked at their offset)."""
    viewports = view.locator(VIEWPORTS)
    expect(viewports).to_have_count(2, timeout=20_000)
    left, right = viewports.nth(0), viewports.nth(1)
    expect(left).to_have_attribute("data-study-instance-uid", CURRENT["study_instance_uid"])
    expect(right).to_have_attribute("data-study-instance-uid", PRIOR["study_instance_uid"])
    expect(left).to_have_attribute("data-series-instance-uid", CURRENT["series_instance_uid"])
    expect(right).to_have_attribute("data-series-instance-uid", PRIOR["series_instance_uid"])
    for viewport in (left, right):
        expect(viewport).to_have_attribute("data-linked", "true")
        expect(viewport).to_have_attribute("data-position-mm", POSITION)
    expect(view.locator("body")).to_have_attribute("data-hanging-protocol", PROTOCOL)
    expect(view.locator("#hanging-protocol")).to_have_value(PROTOCOL)
    expect(view.locator("#hanging-protocol option:checked")).to_have_text(PROTOCOL)
    expect(left.locator(".overlay.top-right")).to_contain_text(
        "Current 2026-03-15 CT CHEST WITH CONTRAST"
    )
    expect(right.locator(".overlay.top-right")).to_contain_text("Prior 2025-03-15 CT CHEST")
    expect(left.locator(".overlay.bottom-left")).to_contain_text(f"Im 1/{DEFAULT_SPEC.num_slices}")
    expect(right.locator(".overlay.bottom-left")).to_contain_text(f"Im 1/{DEFAULT_SPEC.num_slices}")


def scroll_keeps_them_linked(page: Page, view: Page | Frame) -> None:
    """Wheel on the current: the prior follows at the same offset."""
    left, right = view.locator(VIEWPORTS).nth(0), view.locator(VIEWPORTS).nth(1)
    offset = float(right.get_attribute("data-position-mm") or "nan") - float(
        left.get_attribute("data-position-mm") or "nan"
    )
    box = left.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5)
    for _ in range(12):
        page.mouse.wheel(0, 100)
        page.wait_for_timeout(30)
    expect(left.locator(".overlay.bottom-left")).not_to_contain_text(
        f"Im 1/{DEFAULT_SPEC.num_slices}"
    )
    page.wait_for_timeout(300)
    moved = float(left.get_attribute("data-position-mm") or "nan")
    assert float(right.get_attribute("data-position-mm") or "nan") - moved == pytest.approx(
        offset, abs=0.01
    )


def test_the_demo_opens_the_current_phantom_with_its_prior_hung_and_linked(
    wide_page: Page, demo: dict[str, Any], artifacts_dir: Path
) -> None:
    page = wide_page
    page.goto(f"{demo['url']}/")
    page.fill("input[name=username]", "demo")
    page.fill("input[name=password]", demo["password"])
    page.click("button[type=submit]")
    expect(page.locator("table.worklist")).to_contain_text("CT CHEST WITH CONTRAST")
    page.goto(f"{demo['url']}/viewer/{CURRENT['study_instance_uid']}/")  # no ?compare
    expect_hung_and_linked(page)
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(artifacts_dir / "demo-phantom-hung-with-prior.png"))
    scroll_keeps_them_linked(page, page)
    page.screenshot(path=str(artifacts_dir / "demo-phantom-scrolled-linked.png"))
    # The lesion's slice (k = 40): the prior follows, both nodules in view (20 mm, 14 mm).
    left = page.locator(VIEWPORTS).nth(0)
    left.hover()
    page.keyboard.press("Home")
    for _ in range(40):
        page.keyboard.press("ArrowDown")
    for viewport in page.locator(VIEWPORTS).all():
        expect(viewport.locator(".overlay.bottom-left")).to_contain_text(
            f"Im 41/{DEFAULT_SPEC.num_slices}"
        )
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(artifacts_dir / "demo-phantom-lesion-slice-linked.png"))


@pytest.fixture
def demo_chart(demo: dict[str, Any]) -> Iterator[str]:
    """The demo EHR's chart, served from the config the demo wrote, on its own origin."""
    config = demo["ehr"]
    server = demo_ehr.serve(config)  # localhost, as ``python -m ehrlaunch.demo.ehr`` runs it
    yield f"http://localhost:{config['port']}"
    server.shutdown()
    server.server_close()


def test_the_demo_ehr_chart_launches_the_current_phantom_with_its_prior_hung_and_linked(
    wide_page: Page, demo: dict[str, Any], demo_chart: str, artifacts_dir: Path
) -> None:
    page = wide_page
    page.goto(f"{demo_chart}/")
    # The chart's imaging list: both studies of the patient, the current one launched.
    studies = page.locator("#imaging-studies li")
    expect(studies).to_have_count(2)
    expect(studies.nth(0)).to_contain_text("CT CHEST WITH CONTRAST")
    expect(studies.nth(0)).to_contain_text("2026-03-15")
    expect(studies.nth(0)).to_contain_text("current")
    expect(studies.nth(1)).to_contain_text("CT CHEST")
    expect(studies.nth(1)).to_contain_text("2025-03-15")
    expect(studies.nth(1)).to_contain_text("prior")
    expect(studies.nth(0).locator("a")).to_have_attribute("aria-current", "page")
    frame = page.frame_locator("#loupe")
    expect(frame.locator(VIEWPORTS)).to_have_count(2, timeout=20_000)
    loupe = next(f for f in page.frames if f.url.startswith(demo["url"]))
    assert loupe.url == f"{demo['url']}/viewer/{CURRENT['study_instance_uid']}/"
    expect(loupe.locator("input[name=password]")).to_have_count(0)  # no log-in: the launch
    expect_hung_and_linked(loupe)
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(artifacts_dir / "demo-ehr-chart-phantom-with-prior.png"))
    scroll_keeps_them_linked(page, loupe)
    page.screenshot(path=str(artifacts_dir / "demo-ehr-chart-phantom-scrolled.png"))

    # The prior from the chart's list: it opens alone (it has no prior of its own).
    studies.nth(1).locator("a").click()
    expect(page.locator("#imaging-studies li").nth(1).locator("a")).to_have_attribute(
        "aria-current", "page"
    )
    prior = page.frame_locator("#loupe").locator(VIEWPORTS)
    expect(prior).to_have_count(1, timeout=20_000)
    expect(prior.first).to_have_attribute("data-study-instance-uid", PRIOR["study_instance_uid"])
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(artifacts_dir / "demo-ehr-chart-prior-alone.png"))
