"""The viewer in Chromium on the demo CT phantom, whose every voxel is known
(viewer/demo/phantom.py): open from the worklist, slice 50 and its position, the lung
preset read back from the pixels, and the prior study side by side, lesion sizes and all."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Locator, Page, expect

from tests.e2e.viewer_pages import (
    ACTIVE,
    BOTTOM_LEFT,
    BOTTOM_RIGHT,
    CANVAS,
    PASSWORD,
    log_in,
    settled_window,
)
from viewer.demo.phantom import DEFAULT_SPEC, ground_truth, write_phantom
from viewer.services import ingest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SPEC = DEFAULT_SPEC
TRUTH = ground_truth(SPEC)
CURRENT, PRIOR = TRUTH["studies"]


@pytest.fixture(scope="session")
def phantom_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Both phantom studies written once per session (128 CT slices)."""
    return write_phantom(tmp_path_factory.mktemp("phantom"), SPEC)


@pytest.fixture
def phantom(phantom_files: list[Path], django_user_model: Any) -> None:
    django_user_model.objects.create_user("radiologist", password=PASSWORD)
    for path in phantom_files:
        assert ingest.ingest_file(path).status == "stored"


def grey_at(page: Page, viewport: Locator, x_mm: float, y_mm: float) -> float:
    """The mean grey level the screen shows around patient point (x, y) of the slice, for a
    viewport at fit, upright: the square image fills the canvas's shorter side, centred."""
    box = viewport.locator("canvas").bounding_box()
    assert box is not None
    scale = min(box["width"], box["height"]) / SPEC.columns  # CSS px per image pixel
    column = (x_mm - SPEC.x0_mm) / SPEC.column_spacing_mm + 0.5  # corner-based, PS3.3 C.7.6.2.1.1
    row = (y_mm - SPEC.y0_mm) / SPEC.row_spacing_mm + 0.5
    x = box["width"] / 2 + (column - SPEC.columns / 2) * scale
    y = box["height"] / 2 + (row - SPEC.rows / 2) * scale
    shot = still_canvas(viewport)
    return float(shot[int(y) - 1 : int(y) + 2, int(x) - 1 : int(x) + 2].mean())


def still_canvas(viewport: Locator) -> np.ndarray:
    """The viewport's canvas once two screenshots in a row agree (under load the final
    render can land after the one the test waited for, e.g. over an interactive one)."""

    def shot() -> np.ndarray:
        png = viewport.locator("canvas").screenshot()
        return np.asarray(Image.open(io.BytesIO(png)).convert("L"))

    previous = shot()
    for _ in range(50):
        viewport.page.wait_for_timeout(100)
        current = shot()
        if np.array_equal(current, previous):
            return current
        previous = current
    raise AssertionError("the canvas kept changing")


def window_grey(hu: float, center: float, width: float) -> float:
    """PS3.3 C.11.2.1.2.1 linear VOI LUT to 0..255."""
    value = ((hu - (center - 0.5)) / (width - 1) + 0.5) * 255
    return float(min(max(value, 0), 255))


def go_to_slice(page: Page, viewport: Locator, number: int, count: int) -> None:
    viewport.hover()
    page.keyboard.press("Home")
    for _ in range(number - 1):
        page.keyboard.press("ArrowDown")
    expect(viewport.locator(".overlay.bottom-left")).to_contain_text(f"Im {number}/{count}")


def test_phantom_from_the_worklist_slice_50_and_the_lung_preset(
    page: Page, live_server: Any, phantom: None, artifacts_dir: Path
) -> None:
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, live_server)
    rows = page.locator("table.worklist tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("2026-03-15")  # newest first: the current study
    rows.first.locator("a.open").click()
    viewport = page.locator(ACTIVE)
    expect(page.locator(BOTTOM_LEFT)).to_contain_text(f"Im 1/{SPEC.num_slices}")
    expect(viewport.locator(".overlay.top-left")).to_contain_text("PHANTOM, TORSO")
    expect(viewport.locator(".overlay.top-left")).to_contain_text(f"ID {SPEC.patient_id}")

    go_to_slice(page, viewport, 50, SPEC.num_slices)
    # Slices ascend along the normal (+z, head): slice 50 is k = 49 of the ground truth.
    z = SPEC.z_of_slice(49)
    expect(page.locator(BOTTOM_LEFT)).to_contain_text(f"Pos {z:.1f} mm")
    expect(page.locator(BOTTOM_LEFT)).to_contain_text(f"Thk {SPEC.slice_thickness_mm:g} mm")
    expect(page.locator(CANVAS)).to_have_attribute(
        "data-url",
        f"/dicom-web/studies/{CURRENT['study_instance_uid']}/series/"
        f"{CURRENT['series_instance_uid']}/instances/{CURRENT['sop_instance_uids'][49]}"
        "/frames/1/rendered?window=40%2C400&accept=image%2Fpng",
    )
    # The header's first window (soft tissue 40/400): lung black, soft tissue mid-grey.
    expect(page.locator(BOTTOM_RIGHT)).to_contain_text("W 400 L 40")
    lung = (-70.0, -40.0)  # inside the right lung, away from the lesion
    tissue = (0.0, -90.0)  # anterior midline, between the lungs
    assert grey_at(page, viewport, *lung) == pytest.approx(window_grey(-850, 40, 400), abs=6)
    assert grey_at(page, viewport, *tissue) == pytest.approx(window_grey(40, 40, 400), abs=6)
    page.screenshot(path=str(artifacts_dir / "viewer-phantom-slice-50.png"))

    # Drag window/level: the overlay follows the drag, and the pixels follow the overlay.
    box = viewport.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 60)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 120, box["y"] + 20, steps=6)
    page.mouse.up()
    shown = settled_window(page)
    assert shown != "W 400 L 40"
    width, center = (int(v) for v in re.findall(r"-?\d+", shown))
    assert grey_at(page, viewport, *tissue) == pytest.approx(window_grey(40, center, width), abs=6)
    assert grey_at(page, viewport, *lung) == pytest.approx(window_grey(-850, center, width), abs=6)
    page.screenshot(path=str(artifacts_dir / "viewer-phantom-window-dragged.png"))

    lung_preset = page.locator("#preset option", has_text="Lung (-600/1500)").last
    page.select_option("#preset", value=lung_preset.get_attribute("value"))
    expect(page.locator(BOTTOM_RIGHT)).to_contain_text("W 1500 L -600")
    expect(page.locator(CANVAS)).to_have_attribute(
        "data-url",
        f"/dicom-web/studies/{CURRENT['study_instance_uid']}/series/"
        f"{CURRENT['series_instance_uid']}/instances/{CURRENT['sop_instance_uids'][49]}"
        "/frames/1/rendered?window=-600%2C1500&accept=image%2Fpng",
    )
    assert grey_at(page, viewport, *lung) == pytest.approx(window_grey(-850, -600, 1500), abs=6)
    assert grey_at(page, viewport, *tissue) == pytest.approx(window_grey(40, -600, 1500), abs=6)
    page.screenshot(path=str(artifacts_dir / "viewer-phantom-lung-preset.png"))
    # Invert (MONOCHROME1-style display): every grey level v becomes 255 - v.
    page.click("#invert")
    expect(page.locator(CANVAS)).to_have_attribute("data-inverted", "true")
    assert grey_at(page, viewport, *lung) == pytest.approx(
        255 - window_grey(-850, -600, 1500), abs=6
    )
    assert grey_at(page, viewport, *tissue) == pytest.approx(
        255 - window_grey(40, -600, 1500), abs=6
    )


def test_phantom_compared_with_its_prior_side_by_side(
    page: Page, live_server: Any, phantom: None, artifacts_dir: Path
) -> None:
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, live_server)
    current_row = page.locator("table.worklist tbody tr").first
    expect(page.locator("table.worklist a.compare")).to_have_count(1)  # only the current study
    current_row.locator("a.compare").click()
    expect(page).to_have_url(
        f"{live_server.url}/viewer/{CURRENT['study_instance_uid']}/"
        f"?compare={PRIOR['study_instance_uid']}"
    )
    viewports = page.locator(".grid .viewport")
    expect(viewports).to_have_count(2, timeout=20_000)  # both studies' metadata first
    left, right = viewports.nth(0), viewports.nth(1)
    expect(left.locator(".overlay.top-right")).to_contain_text(
        "Current 2026-03-15 CT CHEST WITH CONTRAST"
    )
    expect(right.locator(".overlay.top-right")).to_contain_text("Prior 2025-03-15 CT CHEST")
    groups = page.locator("#series-panel .study-group")
    expect(groups).to_have_count(2)
    expect(groups.nth(0).locator("h2")).to_have_text("Current · 2026-03-15")
    expect(groups.nth(1).locator("h2")).to_have_text("Prior · 2025-03-15")

    # The lesion's slice (k = 40) in both, lung window: 8.5 mm from its centre the current
    # lesion (20 mm across) is solid, the prior one (14 mm) is not there yet.
    x, y, _ = SPEC.lesion_center_mm
    edge = (x + 8.5, y)
    for viewport in (left, right):
        viewport.click(position={"x": 30, "y": 200})
        go_to_slice(page, viewport, 41, SPEC.num_slices)
        lung = page.locator("#preset option", has_text="Lung (-600/1500)").last
        page.select_option("#preset", value=lung.get_attribute("value"))
        expect(viewport.locator(".overlay.bottom-right")).to_contain_text("W 1500 L -600")
        expect(viewport.locator("canvas")).to_have_attribute(
            "data-url", re.compile(r"/frames/1/rendered\?window=-600%2C1500&")
        )
    page.wait_for_load_state("networkidle")
    assert grey_at(page, left, *edge) == pytest.approx(window_grey(40, -600, 1500), abs=8)
    assert grey_at(page, right, *edge) == pytest.approx(window_grey(-850, -600, 1500), abs=8)
    page.screenshot(path=str(artifacts_dir / "viewer-phantom-compare-prior.png"))

    # The prior's series can go in any viewport: drag it onto the left one.
    groups.nth(1).locator("button[data-series]").drag_to(left)
    expect(left.locator(".overlay.top-right")).to_contain_text("Prior 2025-03-15")
    expect(left).to_have_class(re.compile("active"))
