"""viewer.dicom.hanging: the plane of an image, a viewport's series selector, and the
series of another study that best matches one already hung."""

from __future__ import annotations

import json

import pytest

from viewer.dicom.hanging import (
    SeriesFacts,
    best_comparable,
    comparison_score,
    description_similarity,
    plane_of,
    select_series,
    thickness_similarity,
)
from viewer.services.hanging import SHIPPED_DIR

# The corpus's orientations (ct-prior-pair, mr-series): untilted axial, the current's
# 18.5° gantry tilt, the localizer and the MR (both sagittal).
AXIAL = [1, 0, 0, 0, 1, 0]
TILTED = [1, 0, 0, 0, 0.948, -0.317]
SAGITTAL = [0, 1, 0, 0, 0, -1]
CORONAL = [1, 0, 0, 0, 0, -1]


@pytest.mark.parametrize(
    ("orientation", "plane"),
    [
        (AXIAL, "axial"),
        (TILTED, "axial"),
        (SAGITTAL, "sagittal"),
        (CORONAL, "coronal"),
        ([0.707, 0.707, 0, 0, 0, -1], "oblique"),  # 45° between sagittal and coronal
        (None, None),
        ([1, 0, 0], None),
        ([0, 0, 0, 0, 0, 0], None),
        (["a", 0, 0, 0, 1, 0], None),
        ([float("nan"), 0, 0, 0, 1, 0], None),
    ],
)
def test_plane_of_an_orientation(orientation: list[float] | None, plane: str | None) -> None:
    assert plane_of(orientation) == plane


def facts(uid: str, **values: object) -> SeriesFacts:
    return SeriesFacts(series_instance_uid=uid, **values)  # type: ignore[arg-type]


LOCALIZER = facts("loc", modality="CT", plane="sagittal", thickness_mm=0.625, instances=1)
BRAIN_5MM = facts(
    "5mm",
    modality="CT",
    description="STD BRAIN 5MM",
    body_part="BRAIN",
    plane="axial",
    thickness_mm=5.0,
    instances=28,
)
TILT_2_5 = facts(
    "tilt",
    modality="CT",
    description="STEREOTAXIS",
    body_part="BRAIN",
    plane="axial",
    thickness_mm=2.5,
    instances=54,
)


def test_selector_meeting_every_criterion_wins_over_the_localizer() -> None:
    chosen = select_series([LOCALIZER, TILT_2_5], {"modality": "CT", "orientation": "axial"})
    assert chosen is not None and chosen.series is TILT_2_5 and chosen.exact


def test_selector_prefer_thinnest_thickest_most_images() -> None:
    thin = facts("thin", modality="CT", plane="axial", thickness_mm=1.0, instances=300)
    thick = facts("thick", modality="CT", plane="axial", thickness_mm=5.0, instances=60)
    few = facts("few", modality="CT", plane="axial", thickness_mm=3.0, instances=10)
    pool = [thick, few, thin]
    pick = lambda prefer: select_series(pool, {"modality": "CT", "prefer": prefer})  # noqa: E731
    assert pick("thinnest").series is thin  # type: ignore[union-attr]
    assert pick("thickest").series is thick  # type: ignore[union-attr]
    assert pick("most_images").series is thin  # type: ignore[union-attr]


def test_selector_thickness_range_and_frames() -> None:
    thin = facts("thin", modality="CT", thickness_mm=1.0)
    thick = facts("thick", modality="CT", thickness_mm=8.0)
    chosen = select_series([thick, thin], {"thickness_mm": {"min": 0, "max": 5}})
    assert chosen is not None and chosen.series is thin and chosen.exact
    cine = facts("cine", modality="US", frames=87)
    still = facts("still", modality="US", frames=1, instances=3)
    chosen = select_series([still, cine], {"modality": "US", "min_frames": 2})
    assert chosen is not None and chosen.series is cine


def test_selector_falls_back_to_the_nearest_of_the_modality_never_one_already_hung() -> None:
    sagittal_t1 = facts("t1", modality="MR", description="t1_fl2d_sag", plane="sagittal")
    t1_axial = {"modality": "MR", "orientation": "axial", "description": r"(?<![a-z0-9])t1"}
    chosen = select_series([sagittal_t1], t1_axial)
    assert chosen is not None and chosen.series is sagittal_t1 and not chosen.exact
    assert select_series([sagittal_t1], t1_axial, hung={"t1"}) is None
    assert select_series([sagittal_t1], {**t1_axial, "fallback": False}) is None
    assert select_series([facts("ct", modality="CT")], t1_axial) is None  # modality is hard


def test_selector_exact_match_may_be_hung_again_but_an_unhung_one_first() -> None:
    a = facts("a", modality="CT", plane="axial", instances=50, series_number=2)
    b = facts("b", modality="CT", plane="axial", instances=40, series_number=3)
    chosen = select_series([a, b], {"modality": "CT"}, hung={"a"})
    assert chosen is not None and chosen.series is b
    chosen = select_series([a], {"modality": "CT"}, hung={"a"})
    assert chosen is not None and chosen.series is a and chosen.exact


def test_any_of_view_position_or_description() -> None:
    pa = facts("pa", modality="DX", description="pa")
    lateral = facts("lat", modality="CR", view_position="LL")
    frontal = {
        "modality": ["CR", "DX"],
        "any_of": [
            {"view_position": ["PA", "AP"]},
            {"description": "(?<![a-z])(pa|ap|frontal)(?![a-z])"},
        ],
    }
    side = {
        "modality": ["CR", "DX"],
        "any_of": [{"view_position": ["LL", "RL"]}, {"description": "lat"}],
        "fallback": False,
    }
    assert select_series([lateral, pa], frontal).series is pa  # type: ignore[union-attr]
    assert select_series([lateral, pa], side).series is lateral  # type: ignore[union-attr]
    assert select_series([pa], side) is None


def test_shipped_mr_sequence_patterns() -> None:
    mr = json.loads((SHIPPED_DIR / "mr-brain.json").read_text())
    t1, t2, flair = (vp["series"]["description"] for vp in mr["viewports"])
    import re

    def matches(regex: str, text: str) -> bool:
        return re.search(regex, text, re.IGNORECASE) is not None

    assert matches(t1, "t1_fl2d_sag") and matches(t1, "AX T1 SE") and matches(t1, "MPRAGE")
    assert not matches(t1, "t2_tse_tra") and not matches(t1, "T10 map")
    assert matches(t2, "t2_tse_tra") and matches(t2, "AX T2") and not matches(t2, "t2_flair_tra")
    assert matches(flair, "t2_flair_tra") and matches(flair, "AX FLAIR")
    assert not matches(flair, "t1_fl2d_sag")


def test_similarities() -> None:
    assert thickness_similarity(5.0, 5.2) == 1.0
    assert 0 < thickness_similarity(2.5, 5.0) < 1
    assert thickness_similarity(0.625, 5.0) == 0.0
    assert thickness_similarity(None, 5.0) == 0.0
    assert description_similarity("AXIAL 2.5MM", "axial  2.5mm") == 1.0
    assert 0 < description_similarity("STD BRAIN 5MM", "BRAIN 2.5MM") < 1
    assert description_similarity("", "BRAIN") == 0.0


def test_comparison_prefers_same_plane_then_thickness_then_description() -> None:
    reference = TILT_2_5
    # the corpus's prior: its axial brain series, not its localizer
    assert best_comparable([LOCALIZER, BRAIN_5MM], reference) is BRAIN_5MM
    # same plane, closer thickness wins
    axial_5 = facts("a5", modality="CT", plane="axial", thickness_mm=5.0, instances=30)
    axial_2 = facts("a2", modality="CT", plane="axial", thickness_mm=2.0, instances=30)
    assert best_comparable([axial_5, axial_2], reference) is axial_2
    # same plane and thickness: the description decides
    lung = facts("lung", modality="CT", description="LUNG 2.5", plane="axial", thickness_mm=2.5)
    soft = facts("soft", modality="CT", description="STEREOTAXIS", plane="axial", thickness_mm=2.5)
    assert best_comparable([lung, soft], reference) is soft
    # another modality is never a match
    assert comparison_score(reference, facts("mr", modality="MR", plane="axial")) is None
    assert best_comparable([facts("mr", modality="MR")], reference) is None
    # the plane outweighs thickness and description together
    coronal_same = facts(
        "cor", modality="CT", description="STEREOTAXIS", plane="coronal", thickness_mm=2.5
    )
    axial_other = facts("ax", modality="CT", description="BONE", plane="axial", thickness_mm=1.0)
    assert (comparison_score(reference, axial_other) or 0) > (
        comparison_score(reference, coronal_same) or 0
    )
    assert best_comparable([coronal_same, axial_other], reference) is axial_other
