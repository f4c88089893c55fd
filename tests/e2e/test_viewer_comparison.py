"""Comparison in the viewer, in Chromium: the current CT opens with its prior hung beside it
by the hanging protocol (named in the toolbar), linked scrolling by position in the same
frame of reference (the prior's slice checked against numpy on the DICOM headers), by a
locked offset across frames of reference (the demo phantom pair), linked window/level and
zoom, each switched off and on, and another protocol chosen from the toolbar.

The viewports are read through their automation hooks (data-study-instance-uid,
data-series-instance-uid, data-sop-instance-uid, data-frame, data-position-mm,
data-window, data-linked), as integrations and load tests read them.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from django.core.management import call_command
from playwright.sync_api import Locator, Page, expect

from tests.e2e.viewer_pages import (
    HOOKS,
    PASSWORD,
    log_in,
    viewport_hooks,
    wait_for_hooks,
)
from viewer.demo.phantom import DEFAULT_SPEC, ground_truth, write_phantom
from viewer.services import ingest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PAIR = "ct-prior-pair"
CURRENT_DIR, PRIOR_DIR = "study2-current-0934", "study1-prior-0928"
AXIAL = "S201_stereotaxis_tilt", "S201_std_brain_5mm"
VIEWPORTS = ".grid .viewport"


def load_shipped_protocols() -> None:
    """The shipped hanging protocols (migration 0008 loads them, but a transactional test
    starts from a flushed database)."""
    call_command("load_hanging_protocols", stdout=io.StringIO())


class Slice:
    """One axial slice of the pair, from its header (PS3.3 C.7.6.2.1.1)."""

    def __init__(self, dataset: pydicom.Dataset) -> None:
        orientation = np.array(dataset.ImageOrientationPatient, float)
        self.row, self.column = orientation[:3], orientation[3:]
        normal = np.cross(self.row, self.column)
        self.normal = normal / np.linalg.norm(normal)  # the cosines are rounded in the header
        self.position = np.array(dataset.ImagePositionPatient, float)
        row_mm, column_mm = (float(v) for v in dataset.PixelSpacing)
        self.centre = (
            self.position
            + dataset.Columns / 2 * column_mm * self.row
            + dataset.Rows / 2 * row_mm * self.column
        )
        self.sop_instance_uid = str(dataset.SOPInstanceUID)
        self.along_normal = float(self.position @ self.normal)


def read_series(folder: Path) -> dict[str, Slice]:
    slices = [Slice(pydicom.dcmread(p, stop_before_pixels=True)) for p in folder.iterdir()]
    return {s.sop_instance_uid: s for s in slices}


def nearest_prior(current: Slice, prior: dict[str, Slice]) -> Slice:
    """The prior slice nearest the current slice's centre along the prior's normal."""
    normal = next(iter(prior.values())).normal
    target = float(current.centre @ normal)
    return min(prior.values(), key=lambda s: abs(float(s.position @ normal) - target))


@pytest.fixture
def pair(shared_dicom: Path, django_user_model: Any) -> dict[str, Any]:
    """Both CT studies of the pair (localizers included), stored; their axial headers."""
    root = shared_dicom / PAIR
    if not root.is_dir():
        pytest.skip(f"the CT prior pair is not in the corpus ({root})")
    django_user_model.objects.create_user("radiologist", password=PASSWORD)
    load_shipped_protocols()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        assert ingest.ingest_file(path).status == "stored", path
    current = read_series(root / CURRENT_DIR / AXIAL[0])
    prior = read_series(root / PRIOR_DIR / AXIAL[1])
    first = pydicom.dcmread(
        next((root / CURRENT_DIR / AXIAL[0]).iterdir()), stop_before_pixels=True
    )
    old = pydicom.dcmread(next((root / PRIOR_DIR / AXIAL[1]).iterdir()), stop_before_pixels=True)
    return {
        "current_uid": str(first.StudyInstanceUID),
        "prior_uid": str(old.StudyInstanceUID),
        "current_series": str(first.SeriesInstanceUID),
        "prior_series": str(old.SeriesInstanceUID),
        "current": current,
        "prior": prior,
    }


@pytest.fixture
def wide_page(browser: Any) -> Iterator[Page]:
    """1400×860: the toolbar in one row, every tool in it; bypass_csp for page.evaluate."""
    context = browser.new_context(viewport={"width": 1400, "height": 860}, bypass_csp=True)
    page = context.new_page()
    yield page
    context.close()


def wheel(page: Page, viewport: Locator, steps: int) -> None:
    box = viewport.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5)
    for _ in range(abs(steps)):
        page.mouse.wheel(0, 100 if steps > 0 else -100)
        page.wait_for_timeout(30)


def toggle(page: Page, button: str, pressed: bool) -> None:
    page.click(button)
    expect(page.locator(button)).to_have_attribute("aria-pressed", str(pressed).lower())


def check_every_hook(page: Page, expected_studies: list[str]) -> list[dict[str, str]]:
    """Every viewport carries the seven hooks, consistent with what it shows."""
    hooks = [viewport_hooks(v) for v in page.locator(VIEWPORTS).all()]
    assert [h["study-instance-uid"] for h in hooks] == expected_studies
    for h in hooks:
        assert set(HOOKS) <= set(h), h
        assert h["frame"] == "1"  # single-frame CT: the first (1-based) frame
        assert re.fullmatch(r"-?\d+\.\d{2}", h["position-mm"]), h
        assert re.fullmatch(r"-?[\d.]+,[\d.]+", h["window"]), h
        assert h["linked"] in {"true", "false"}
    return hooks


def test_the_current_ct_opens_with_its_prior_hung_and_scrolls_linked_by_position(
    wide_page: Page, live_server: Any, pair: dict[str, Any], artifacts_dir: Path
) -> None:
    page = wide_page
    log_in(page, live_server)
    page.goto(f"{live_server.url}/viewer/{pair['current_uid']}/")
    viewports = page.locator(VIEWPORTS)
    expect(viewports).to_have_count(2, timeout=20_000)
    left, right = viewports.nth(0), viewports.nth(1)
    # The protocol the server chose hangs the prior beside the current, named in the toolbar.
    expect(page.locator("body")).to_have_attribute("data-hanging-protocol", re.compile(r"\S"))
    name = page.locator("body").get_attribute("data-hanging-protocol")
    expect(page.locator("#hanging-protocol")).to_have_value(name or "")
    chosen = page.locator("#hanging-protocol option:checked")
    expect(chosen).to_have_text(name or "")
    wait_for_hooks(left, {"series-instance-uid": pair["current_series"]})
    wait_for_hooks(right, {"series-instance-uid": pair["prior_series"]})
    expect(left.locator(".overlay.top-right")).to_contain_text("Current")
    expect(right.locator(".overlay.top-right")).to_contain_text("Prior")
    expect(page.locator("#sync-scroll")).to_have_attribute("aria-pressed", "true")
    # Same frame of reference, normals 18.5° apart: linked by position.
    expect(left).to_have_attribute("data-linked", "true")
    expect(right).to_have_attribute("data-linked", "true")
    # The study browser: the prior's group, marked as the relevant one.
    expect(
        page.locator(f"#series-panel .study-group[data-study='{pair['prior_uid']}']")
    ).to_be_visible()
    hooks = check_every_hook(page, [pair["current_uid"], pair["prior_uid"]])
    # At 1400 px the toolbar keeps to two rows (as before comparison), every control in it.
    toolbar = page.locator("#toolbar").bounding_box()
    assert toolbar is not None and toolbar["height"] < 85
    for control in page.locator("#toolbar button, #toolbar select").all():
        if control.get_attribute("id") == "more":
            continue
        expect(control).to_be_visible()
        box = control.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 1400
    page.screenshot(path=str(artifacts_dir / "viewer-compare-hung-by-protocol.png"))

    # Wheel on the current: the prior follows to the slice nearest in mm.
    current, prior = pair["current"], pair["prior"]
    wheel(page, left, 20)
    page.wait_for_timeout(300)
    hooks = [viewport_hooks(v) for v in (left, right)]
    shown = current[hooks[0]["sop-instance-uid"]]
    assert hooks[0]["position-mm"] == f"{shown.along_normal:.2f}"
    expected = nearest_prior(shown, prior)
    assert hooks[1]["sop-instance-uid"] == expected.sop_instance_uid
    assert hooks[1]["position-mm"] == f"{expected.along_normal:.2f}"
    # Within half the prior's 5 mm spacing of the current slice's centre.
    assert abs(float(hooks[1]["position-mm"]) - float(shown.centre @ expected.normal)) <= 2.5 + 1e-6
    page.screenshot(path=str(artifacts_dir / "viewer-compare-scrolled-linked.png"))
    # Every slice on the way maps the same way (a few more steps, both directions).
    for steps in (7, -12, 3):
        wheel(page, left, steps)
        page.wait_for_timeout(200)
        a, b = viewport_hooks(left), viewport_hooks(right)
        assert (
            b["sop-instance-uid"]
            == nearest_prior(current[a["sop-instance-uid"]], prior).sop_instance_uid
        )

    # Scroll sync off: only the left moves.
    toggle(page, "#sync-scroll", False)
    expect(left).to_have_attribute("data-linked", "false")
    before = viewport_hooks(right)
    moved_from = viewport_hooks(left)["sop-instance-uid"]
    wheel(page, left, 6)
    page.wait_for_timeout(300)
    assert viewport_hooks(left)["sop-instance-uid"] != moved_from
    assert viewport_hooks(right)["sop-instance-uid"] == before["sop-instance-uid"]
    page.screenshot(path=str(artifacts_dir / "viewer-compare-scroll-sync-off.png"))
    # On again: the prior comes back to the slice matching the current one.
    toggle(page, "#sync-scroll", True)
    expect(left).to_have_attribute("data-linked", "true")
    a = viewport_hooks(left)
    expected = nearest_prior(current[a["sop-instance-uid"]], prior)
    expect(right).to_have_attribute("data-sop-instance-uid", expected.sop_instance_uid)


def test_linked_window_level_and_zoom_follow_and_another_protocol_rehangs(
    wide_page: Page, live_server: Any, pair: dict[str, Any], artifacts_dir: Path
) -> None:
    page = wide_page
    log_in(page, live_server)
    page.goto(f"{live_server.url}/viewer/{pair['current_uid']}/")
    viewports = page.locator(VIEWPORTS)
    expect(viewports).to_have_count(2, timeout=20_000)
    left, right = viewports.nth(0), viewports.nth(1)
    wait_for_hooks(right, {"series-instance-uid": pair["prior_series"]})
    if page.locator("#sync-window").get_attribute("aria-pressed") != "true":
        toggle(page, "#sync-window", True)

    # A preset on the left: the right takes the same center,width (both CT).
    left.click(position={"x": 40, "y": 200})
    lung = page.locator("#preset option", has_text="Lung").last.get_attribute("value")
    page.select_option("#preset", value=lung)
    expect(left).to_have_attribute("data-window", "-600,1500")
    expect(right).to_have_attribute("data-window", "-600,1500")
    expect(right.locator(".overlay.bottom-right")).to_contain_text("W 1500 L -600")
    # A window/level drag on the left: the right follows to the same values.
    box = left.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 - 90, box["y"] + box["height"] / 2 + 40, steps=6)
    page.mouse.up()
    page.wait_for_timeout(300)
    dragged = viewport_hooks(left)["window"]
    assert dragged != "-600,1500"
    expect(right).to_have_attribute("data-window", dragged)
    expect(right.locator("canvas")).to_have_attribute(
        "data-url",
        re.compile("window=" + re.escape(dragged.replace(",", "%2C")) + "&accept=image%2Fpng"),
    )
    page.screenshot(path=str(artifacts_dir / "viewer-compare-window-linked.png"))
    # Window sync off: the right keeps its window.
    toggle(page, "#sync-window", False)
    bone = page.locator("#preset option", has_text="Bone").last.get_attribute("value")
    left.click(position={"x": 40, "y": 200})
    page.select_option("#preset", value=bone)
    expect(left).to_have_attribute("data-window", "400,1800")
    page.wait_for_timeout(300)
    expect(right).to_have_attribute("data-window", dragged)
    page.screenshot(path=str(artifacts_dir / "viewer-compare-window-unlinked.png"))

    # Linked zoom: zoom in on the right, the left takes the same magnification and pan.
    if page.locator("#sync-zoom").get_attribute("aria-pressed") != "true":
        toggle(page, "#sync-zoom", True)
    right.click(position={"x": 40, "y": 200})
    page.click("#zoom-in")
    page.click("#zoom-in")
    expect(right).to_have_attribute("data-magnification", "4.000")
    expect(left).to_have_attribute("data-magnification", "4.000")
    page.keyboard.press("p")  # drag tool: pan
    box = right.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 80, box["y"] + box["height"] / 2 + 30, steps=4)
    page.mouse.up()
    pan = right.get_attribute("data-pan")
    assert pan
    expect(left).to_have_attribute("data-pan", pan)
    page.screenshot(path=str(artifacts_dir / "viewer-compare-zoom-linked.png"))
    toggle(page, "#sync-zoom", False)
    page.click("#zoom-fit")
    expect(right).to_have_attribute("data-magnification", "1.000")
    expect(left).to_have_attribute("data-magnification", "4.000")

    # Another protocol from the toolbar re-hangs: a 1×1 one leaves the current alone.
    options = page.locator("#hanging-protocol option")
    single = None
    for option in options.all():
        value = option.get_attribute("value") or ""
        if value and re.search(r"1\s*[x×]\s*1|default", value, re.I):
            single = value
            break
    assert single, [o.get_attribute("value") for o in options.all()]
    page.select_option("#hanging-protocol", value=single)
    expect(page.locator("body")).to_have_attribute("data-hanging-protocol", single)
    expect(viewports).to_have_count(1)
    expect(viewports.first).to_have_attribute("data-study-instance-uid", pair["current_uid"])
    page.screenshot(path=str(artifacts_dir / "viewer-compare-protocol-switched.png"))


SPEC = DEFAULT_SPEC
CURRENT, PRIOR = ground_truth(SPEC)["studies"]


@pytest.fixture(scope="session")
def phantom_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_phantom(tmp_path_factory.mktemp("phantom-compare"), SPEC)


@pytest.fixture
def phantom(phantom_files: list[Path], django_user_model: Any) -> None:
    django_user_model.objects.create_user("radiologist", password=PASSWORD)
    load_shipped_protocols()
    for path in phantom_files:
        assert ingest.ingest_file(path).status == "stored"


def test_the_phantom_pair_opens_hung_and_linked_by_offset_across_frames_of_reference(
    wide_page: Page, live_server: Any, phantom: None, artifacts_dir: Path
) -> None:
    page = wide_page
    log_in(page, live_server)
    page.goto(f"{live_server.url}/viewer/{CURRENT['study_instance_uid']}/")
    viewports = page.locator(VIEWPORTS)
    expect(viewports).to_have_count(2, timeout=20_000)
    left, right = viewports.nth(0), viewports.nth(1)
    wait_for_hooks(right, {"study-instance-uid": PRIOR["study_instance_uid"]})
    # Each study has its own frame of reference: not linkable by position, so the protocol
    # locked them at the offset they opened with.
    expect(left).to_have_attribute("data-linked", "true")
    expect(right).to_have_attribute("data-linked", "true")
    expect(page.locator("#link-lock")).to_have_attribute("aria-pressed", "true")
    check_every_hook(page, [CURRENT["study_instance_uid"], PRIOR["study_instance_uid"]])
    offset = float(viewport_hooks(right)["position-mm"]) - float(
        viewport_hooks(left)["position-mm"]
    )
    page.screenshot(path=str(artifacts_dir / "viewer-compare-phantom-hung-linked.png"))
    for steps in (30, 9, -14):
        before = viewport_hooks(left)["sop-instance-uid"]
        wheel(page, left, steps)
        page.wait_for_timeout(300)
        a, b = viewport_hooks(left), viewport_hooks(right)
        assert a["sop-instance-uid"] != before
        assert float(b["position-mm"]) - float(a["position-mm"]) == pytest.approx(offset, abs=0.01)
    expect(left.locator(".overlay.bottom-left")).to_contain_text("Linked")
    page.screenshot(path=str(artifacts_dir / "viewer-compare-phantom-scrolled.png"))

    # Unlock, move the prior alone by 5 slices, lock again: the new offset is kept.
    page.click("#link-lock")
    expect(page.locator("#link-lock")).to_have_attribute("aria-pressed", "false")
    expect(left).to_have_attribute("data-linked", "false")
    wheel(page, right, 5)
    page.wait_for_timeout(300)
    page.click("#link-lock")
    expect(left).to_have_attribute("data-linked", "true")
    new_offset = float(viewport_hooks(right)["position-mm"]) - float(
        viewport_hooks(left)["position-mm"]
    )
    assert new_offset == pytest.approx(offset + 5 * SPEC.slice_spacing_mm, abs=0.01)
    wheel(page, left, -8)
    page.wait_for_timeout(300)
    a, b = viewport_hooks(left), viewport_hooks(right)
    assert float(b["position-mm"]) - float(a["position-mm"]) == pytest.approx(new_offset, abs=0.01)
    page.screenshot(path=str(artifacts_dir / "viewer-compare-phantom-relocked.png"))


def test_slice_geometry_in_the_browser_matches_numpy(
    wide_page: Page, live_server: Any, shared_dicom: Path
) -> None:
    """math/slicePosition.js on the pair's real headers: the tilted normal, positions,
    centres, the 30° tolerance and the nearest prior slice, against numpy."""
    root = shared_dicom / PAIR
    if not root.is_dir():
        pytest.skip(f"the CT prior pair is not in the corpus ({root})")
    page = wide_page
    page.goto(f"{live_server.url}/static/viewer/js/math/slicePosition.js")

    def instance(path: Path) -> dict[str, Any]:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        return {
            "sop_instance_uid": str(ds.SOPInstanceUID),
            "image_position_patient": [float(v) for v in ds.ImagePositionPatient],
            "image_orientation_patient": [float(v) for v in ds.ImageOrientationPatient],
            "pixel_spacing": {
                "row_mm": float(ds.PixelSpacing[0]),
                "column_mm": float(ds.PixelSpacing[1]),
            },
            "rows": int(ds.Rows),
            "columns": int(ds.Columns),
            "number_of_frames": 1,
        }

    current = [instance(p) for p in sorted((root / CURRENT_DIR / AXIAL[0]).iterdir())]
    prior = [instance(p) for p in sorted((root / PRIOR_DIR / AXIAL[1]).iterdir())]
    localizer = instance(next((root / PRIOR_DIR / "S100_localizer").iterdir()))
    result = page.evaluate(
        """async ([current, prior, localizer]) => {
          const S = await import('/static/viewer/js/math/slicePosition.js');
          const stack = (instances) => instances.map((instance) => ({ instance, frame: 1 }));
          const a = S.stackGeometry(stack(current), 'same');
          const b = S.stackGeometry(stack(prior), 'same');
          const scout = S.stackGeometry(stack([localizer, localizer]), 'same');
          return {
            normal: S.sliceNormal(current[0].image_orientation_patient),
            angle: S.angleBetween(a.normal, b.normal),
            positions: current.map((i) => S.positionAlongNormal(i)),
            centres: current.map((i) => S.sliceCentre(i)),
            nearest: current.map((i) => prior[S.nearestByPosition(i, b)].sop_instance_uid),
            linked: S.linkableByPosition(a, b),
            otherFrame: S.linkableByPosition(a, { ...b, frameOfReferenceUid: 'other' }),
            scout: S.linkableByPosition(a, scout),
            tight: S.linkableByPosition(a, b, 10),
            missing: S.positionAlongNormal({ image_orientation_patient: null, image_position_patient: [1, 2, 3] }),
            offset: S.nearestByOffset(700, 10, b),
          };
        }""",
        [current, prior, localizer],
    )
    slices = {
        s.sop_instance_uid: s
        for s in (
            Slice(pydicom.dcmread(p, stop_before_pixels=True))
            for p in sorted((root / CURRENT_DIR / AXIAL[0]).iterdir())
        )
    }
    prior_slices = read_series(root / PRIOR_DIR / AXIAL[1])
    first = slices[current[0]["sop_instance_uid"]]
    assert result["normal"] == pytest.approx(list(first.normal), abs=1e-9)
    assert result["angle"] == pytest.approx(18.5, abs=0.05)
    for item, position, centre, nearest in zip(
        current, result["positions"], result["centres"], result["nearest"], strict=True
    ):
        s = slices[item["sop_instance_uid"]]
        assert position == pytest.approx(s.along_normal, abs=1e-6)
        assert centre == pytest.approx(list(s.centre), abs=1e-6)
        assert nearest == nearest_prior(s, prior_slices).sop_instance_uid
    assert result["linked"] is True  # 18.5° is within the 30° tolerance
    assert result["otherFrame"] is False
    assert result["scout"] is False  # the localizer is at 90°
    assert result["tight"] is False
    assert result["missing"] is None
    # By offset: 700 + 10 mm → the prior slice nearest 710 mm along its normal.
    along = [s.along_normal for s in prior_slices.values()]
    by_uid = {s.along_normal: s.sop_instance_uid for s in prior_slices.values()}
    expected_offset = by_uid[min(along, key=lambda p: abs(p - 710))]
    assert prior[result["offset"]]["sop_instance_uid"] == expected_offset
    assert json.dumps(result)  # plain data came back
