"""The viewer in Chromium on the 99-slice CT: open, scroll, window/level, presets, errors."""

from __future__ import annotations

import io
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
    MESSAGE,
    PASSWORD,
    canvas_pixels,
    log_in,
    log_in_and_open,
    open_radiograph,
    radiograph_tiles_in_view,
)
from tests.undecodable import rle_ct
from viewer.models import Instance
from viewer.services import ingest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def open_viewer(page: Page, live_server: Any) -> None:
    log_in_and_open(page, live_server)
    expect(page.locator(BOTTOM_LEFT)).to_contain_text("Im 1/99")


def test_scroll_window_level_and_presets(
    page: Page, live_server: Any, ct_study: list[Instance], artifacts_dir: Path
) -> None:
    page.set_viewport_size({"width": 1280, "height": 800})
    open_viewer(page, live_server)
    expect(page.locator(BOTTOM_RIGHT)).to_contain_text("W 1500 L -500")  # header preset 1
    # Axial, head first supine: patient's left on the image's right, anterior at the top.
    for edge, letter in {"right": "L", "left": "R", "top": "A", "bottom": "P"}.items():
        expect(page.locator(f"{ACTIVE} .orientation.{edge}")).to_have_text(letter)
    label = page.locator(f"{ACTIVE} .scale-bar .label")
    expect(label).to_have_text(re.compile(r"^\d+ mm \(PixelSpacing\)$"))
    millimetres = int(label.inner_text().split()[0])
    bar = page.locator(f"{ACTIVE} .scale-bar .bar").bounding_box()
    zoom = float(re.search(r"Zoom ([\d.]+)", page.locator(BOTTOM_RIGHT).inner_text()).group(1))  # type: ignore[union-attr]
    spacing = ct_study[0].pixel_spacing_column_mm
    assert spacing and bar
    assert abs(bar["width"] - millimetres / spacing * zoom) < 0.02 * bar["width"] + 2
    page.screenshot(path=str(artifacts_dir / "viewer-ct-first-slice.png"))

    page.locator(ACTIVE).hover()
    for _ in range(49):
        page.keyboard.press("ArrowDown")
    fiftieth = ct_study[49]
    z = fiftieth.image_position_patient[2]  # type: ignore[index]
    expect(page.locator(BOTTOM_LEFT)).to_contain_text("Im 50/99")
    expect(page.locator(BOTTOM_LEFT)).to_contain_text(f"Pos {z:.1f} mm")
    expect(page.locator(CANVAS)).to_have_attribute(
        "data-url", re.compile(fiftieth.sop_instance_uid)
    )
    before = canvas_pixels(page)
    page.screenshot(path=str(artifacts_dir / "viewer-ct-slice-50.png"))

    box = page.locator(ACTIVE).bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - 150, y + 60, steps=8)
    page.mouse.up()
    expect(page.locator(BOTTOM_RIGHT)).not_to_contain_text("W 1500 L -500")
    expect(page.locator(CANVAS)).to_have_attribute("data-url", re.compile("accept=image%2Fpng"))
    after = canvas_pixels(page)
    assert np.abs(after.astype(int) - before.astype(int)).mean() > 1.0  # the image changed
    page.screenshot(path=str(artifacts_dir / "viewer-ct-window-dragged.png"))

    lung = page.locator("#preset option", has_text="Lung").first.get_attribute("value")
    page.select_option("#preset", value=lung)
    expect(page.locator(BOTTOM_RIGHT)).to_contain_text("W 1500 L -600")
    page.screenshot(path=str(artifacts_dir / "viewer-ct-lung-preset.png"))


def test_the_overlay_shows_the_patient_name_as_the_worklist_does(
    page: Page, live_server: Any, ct_study: list[Instance], artifacts_dir: Path
) -> None:
    patient = ct_study[0].series.study.patient
    patient.patient_name = " Yamada ^ Tarou =山田^太郎=やまだ^たろう"  # padded, three groups
    patient.save()
    shown = "Yamada, Tarou = 山田, 太郎 = やまだ, たろう"
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, live_server)
    expect(page.locator("a.open").first).to_have_text(shown)
    page.locator("a.open").first.click()
    expect(page.locator(BOTTOM_LEFT)).to_contain_text("Im 1/99")
    name = page.locator(f"{ACTIVE} .overlay.top-left").inner_text().splitlines()[0]
    assert name == shown
    page.screenshot(path=str(artifacts_dir / "viewer-patient-name-groups.png"))


def test_a_broken_frame_shows_its_message_in_the_viewport(
    page: Page,
    live_server: Any,
    shared_dicom: Path,
    django_user_model: Any,
    artifacts_dir: Path,
    settings: Any,
) -> None:
    settings.LOUPE_INGEST_DECODE_CHECK = "off"  # stored unchecked: the renderer finds it
    django_user_model.objects.create_user("radiologist", password=PASSWORD)
    assert (
        ingest.ingest_file(shared_dicom / "malformed" / "NM_WG04_JPLY_bad_SOS.dcm").status
        == "stored"
    )
    log_in_and_open(page, live_server)
    expect(page.locator(MESSAGE)).to_be_visible()
    expect(page.locator(MESSAGE)).to_contain_text("cannot be decoded")
    expect(page.locator(BOTTOM_LEFT)).to_contain_text("Im 1/1")  # the rest keeps working
    page.screenshot(path=str(artifacts_dir / "viewer-broken-frame.png"))


def test_a_frame_flagged_undecodable_is_shown_so_without_asking_for_it(
    page: Page, live_server: Any, django_user_model: Any, artifacts_dir: Path, settings: Any
) -> None:
    settings.LOUPE_INGEST_UNDECODABLE = "keep"
    django_user_model.objects.create_user("radiologist", password=PASSWORD)
    result = ingest.ingest_bytes(rle_ct(3, frozenset({1})), source="rle")
    assert result.status == "stored" and result.undecodable == {}  # frame 1 decodes
    flagged = ingest.ingest_bytes(rle_ct(1, frozenset({0})), source="rle-bad")
    assert flagged.status == "stored" and list(flagged.undecodable) == ["1"]
    rendered: list[str] = []
    page.on("request", lambda r: rendered.append(r.url) if "/rendered" in r.url else None)
    log_in(page, live_server)
    expect(page.locator("table.worklist")).to_contain_text("1 cannot be shown")
    page.screenshot(path=str(artifacts_dir / "worklist-undecodable.png"))
    page.click("a.open")
    # The flagged object's series says so in the series panel; hanging it shows the
    # reason from the index, and no rendered image of it is asked for.
    warning = page.locator(".series-panel button[data-undecodable='1']")
    expect(warning).to_contain_text("1 cannot be shown")
    rendered.clear()
    warning.click()
    expect(page.locator(MESSAGE)).to_contain_text("cannot be decoded (RLE Lossless)")
    page.screenshot(path=str(artifacts_dir / "viewer-undecodable-flagged.png"))
    assert not [url for url in rendered if flagged.sop_instance_uid in url]


def test_zoom_fetches_only_the_tiles_in_view(
    page: Page, live_server: Any, shared_dicom: Path, django_user_model: Any, artifacts_dir: Path
) -> None:
    """A 2010×2446 radiograph at 4×: full-resolution tiles, only those around the centre."""
    tiles = open_radiograph(page, live_server, shared_dicom, django_user_model)
    assert tiles.since_last() == set()  # at fit, one whole-image render at the canvas's size
    page.locator(ACTIVE).hover()
    box = page.locator(CANVAS).bounding_box()
    assert box is not None

    page.keyboard.press("+")
    at_two = tiles.since_last()
    page.keyboard.press("+")
    at_four = tiles.since_last()
    page.screenshot(path=str(artifacts_dir / "viewer-radiograph-zoom-4x.png"))
    # At 2× and 4× the view needs full resolution (2446 rows on ~720 px); each zoom fetched
    # only tiles in its view, and together every tile of the 4× view.
    assert at_two and at_two <= radiograph_tiles_in_view(box, 2)
    assert at_four <= radiograph_tiles_in_view(box, 4)
    assert radiograph_tiles_in_view(box, 4) <= at_two | at_four
    assert len(radiograph_tiles_in_view(box, 4)) < 80 / 4


def test_cine_plays_a_multiframe_angiogram(
    page: Page, live_server: Any, shared_dicom: Path, django_user_model: Any, artifacts_dir: Path
) -> None:
    django_user_model.objects.create_user("radiologist", password=PASSWORD)
    path = shared_dicom / "us-rgb-multiframe" / "XA_96frames_jpeg_HasFragmentSequence.dcm"
    assert ingest.ingest_file(path).status == "stored"
    log_in_and_open(page, live_server)
    expect(page.locator(BOTTOM_LEFT)).to_contain_text("Im 1/96 (frame 1)")
    page.fill("#fps", "20")
    page.click("#cine")
    expect(page.locator("#cine")).to_have_text("Stop")
    expect(page.locator(BOTTOM_LEFT)).not_to_contain_text("Im 1/96", timeout=5000)
    expect(page.locator(BOTTOM_LEFT)).to_contain_text(re.compile(r"Im ([2-9]|[1-9]\d)/96"))
    page.screenshot(path=str(artifacts_dir / "viewer-cine.png"))
    page.click("#cine")
    expect(page.locator("#cine")).to_have_text("Play")
    stopped = page.locator(BOTTOM_LEFT).inner_text()
    page.wait_for_timeout(400)
    assert page.locator(BOTTOM_LEFT).inner_text() == stopped


def test_two_by_two_layout_hangs_four_series(
    page: Page, live_server: Any, shared_dicom: Path, django_user_model: Any, artifacts_dir: Path
) -> None:
    import pydicom

    django_user_model.objects.create_user("radiologist", password=PASSWORD)
    files = sorted((shared_dicom / "ct-series").glob("*.dcm"))[30:42]
    for index, path in enumerate(files):
        dataset = pydicom.dcmread(path)
        number = index % 4 + 1
        dataset.SeriesInstanceUID = f"1.2.826.0.1.3680043.10.99.{number}"
        dataset.SeriesNumber = number
        dataset.SeriesDescription = f"PART {number}"
        buffer = io.BytesIO()
        dataset.save_as(buffer, enforce_file_format=True)
        assert ingest.ingest_bytes(buffer.getvalue(), source=path.name).status == "stored"
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in_and_open(page, live_server)
    expect(page.locator(BOTTOM_LEFT)).to_contain_text("Im 1/3")
    page.select_option("#layout", "2x2")
    viewports = page.locator(".grid .viewport")
    expect(viewports).to_have_count(4)
    for number in range(1, 5):
        expect(viewports.nth(number - 1).locator(".overlay.top-right")).to_contain_text(
            f"PART {number}"
        )
        expect(viewports.nth(number - 1).locator(".overlay.bottom-left")).to_contain_text("Im 1/3")
    # Clicking a viewport makes it the active one; a series button hangs there.
    viewports.nth(3).click(position={"x": 20, "y": 200})
    expect(viewports.nth(3)).to_have_class(re.compile("active"))
    page.locator("#series-panel button").first.click()
    expect(viewports.nth(3).locator(".overlay.top-right")).to_contain_text("PART 1")
    page.screenshot(path=str(artifacts_dir / "viewer-layout-2x2.png"))
