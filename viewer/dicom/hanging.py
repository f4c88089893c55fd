"""Which series goes in a viewport: the pure part of hanging protocols.

A series is described by :class:`SeriesFacts`, what the index knows of it: (0008,0060)
*Modality*, (0008,103E) *Series Description*, (0018,0015) *Body Part Examined*, (0018,5101)
*View Position* where indexed, and from a representative image (the first by (0020,0013)
*Instance Number*) the plane of (0020,0037) *Image Orientation (Patient)*, (0018,0050)
*Slice Thickness* and (0028,0008) *Number of Frames* (PS3.3 C.7.3.1, C.7.6.2, C.8.1.1,
C.7.6.6).

Two questions are answered here, both without Django:

* :func:`select_series`: the series of a study that a viewport's selector asks for
  (modality, plane, description, view position, slice thickness, frames), exact or, when
  none meets every criterion, the nearest;
* :func:`comparison_score` / :func:`best_comparable`: the series of another study
  (a prior) that best matches a series already hung: same modality (required), then the
  same plane, a similar slice thickness, a similar description, the same body part.

The plane of an image is the patient axis its normal (row × column direction, PS3.3
C.7.6.2.1.1) is nearest to: along L-R (x) sagittal, along A-P (y) coronal, along F-H (z)
axial; when the nearest axis is more than about 37° away (|component| < 0.8) the plane is
oblique. A gantry-tilted axial stack (18.5° in the corpus) is axial.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from viewer.dicom.geometry import slice_normal

AXIAL = "axial"
CORONAL = "coronal"
SAGITTAL = "sagittal"
OBLIQUE = "oblique"
PLANES = (AXIAL, CORONAL, SAGITTAL, OBLIQUE)

# |normal component| at least this along one patient axis: the plane of that axis.
PLANE_COSINE = 0.8

PREFER = ("most_images", "thinnest", "thickest")

# The criteria a series selector may name (the others: prefer, fallback, any_of).
CRITERIA = (
    "modality",
    "orientation",
    "description",
    "body_part",
    "view_position",
    "thickness_mm",
    "min_frames",
)


def plane_of(orientation: Sequence[float] | None) -> str | None:
    """The plane of an image from its (0020,0037) *Image Orientation (Patient)* (six
    direction cosines, row then column, LPS): axial, coronal, sagittal or oblique; None
    when there is no usable orientation (a projection radiograph, an ultrasound image)."""
    if orientation is None or len(orientation) != 6:
        return None
    try:
        cosines = [float(v) for v in orientation]
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in cosines):
        return None
    normal = slice_normal(cosines)
    length = math.sqrt(sum(c * c for c in normal))
    if length < 1e-6:
        return None
    x, y, z = (abs(c) / length for c in normal)
    largest = max(x, y, z)
    if largest < PLANE_COSINE:
        return OBLIQUE
    if largest == z:
        return AXIAL
    if largest == y:
        return CORONAL
    return SAGITTAL


@dataclass(frozen=True)
class SeriesFacts:
    """What the index knows of one series, for choosing it (see the module docstring)."""

    series_instance_uid: str
    modality: str = ""
    description: str = ""
    body_part: str = ""
    view_position: str = ""
    series_number: int | None = None
    instances: int = 0
    plane: str | None = None
    thickness_mm: float | None = None
    frames: int = 1  # the most frames of any of its images (1 for single-frame images)

    def order(self) -> tuple[bool, int, str]:
        """Series order within a study: by (0020,0011) *Series Number*, unnumbered last."""
        return (self.series_number is None, self.series_number or 0, self.series_instance_uid)


@lru_cache(maxsize=256)
def pattern(text: str) -> re.Pattern[str]:
    """A protocol's regular expression: searched anywhere, case-insensitive."""
    return re.compile(text, re.IGNORECASE)


def _words(values: Any) -> list[str]:
    if isinstance(values, str):
        return [values.upper()]
    return [str(v).upper() for v in values]


def criterion_met(facts: SeriesFacts, name: str, wanted: Any) -> bool:
    """Whether ``facts`` meets one criterion of a series selector."""
    if name == "modality":
        return facts.modality.upper() in _words(wanted)
    if name == "orientation":
        return facts.plane is not None and facts.plane in [w.lower() for w in _words(wanted)]
    if name == "description":
        return (
            bool(facts.description) and pattern(str(wanted)).search(facts.description) is not None
        )
    if name == "body_part":
        return bool(facts.body_part) and facts.body_part.upper() in _words(wanted)
    if name == "view_position":
        return bool(facts.view_position) and facts.view_position.upper() in _words(wanted)
    if name == "thickness_mm":
        if facts.thickness_mm is None:
            return False
        low, high = wanted.get("min"), wanted.get("max")
        return (low is None or facts.thickness_mm >= low) and (
            high is None or facts.thickness_mm <= high
        )
    if name == "min_frames":
        return facts.frames >= int(wanted)
    if name == "any_of":
        return any(meets_all(facts, option) for option in wanted)
    raise ValueError(f"unknown series criterion {name!r}")


def criteria_met(facts: SeriesFacts, selector: Mapping[str, Any]) -> tuple[int, int]:
    """(criteria met, criteria named) of a selector, ``any_of`` counting as one."""
    names = [n for n in (*CRITERIA, "any_of") if selector.get(n) is not None]
    return sum(criterion_met(facts, n, selector[n]) for n in names), len(names)


def meets_all(facts: SeriesFacts, selector: Mapping[str, Any]) -> bool:
    met, named = criteria_met(facts, selector)
    return met == named


def _preference(facts: SeriesFacts, prefer: str) -> tuple[float, ...]:
    """Larger is better."""
    if prefer == "thinnest":
        thickness = facts.thickness_mm
        return (thickness is not None, -(thickness or 0.0), facts.instances)
    if prefer == "thickest":
        return (facts.thickness_mm is not None, facts.thickness_mm or 0.0, facts.instances)
    return (facts.instances * max(facts.frames, 1), facts.instances)


@dataclass(frozen=True)
class Selection:
    """The series chosen for a viewport; ``exact`` when it meets every criterion."""

    series: SeriesFacts
    exact: bool


def select_series(
    candidates: Iterable[SeriesFacts], selector: Mapping[str, Any], hung: Iterable[str] = ()
) -> Selection | None:
    """The series a viewport's selector asks for, among a study's image series.

    A series meeting every criterion wins (one not yet ``hung`` in another viewport of
    the protocol first, then by ``prefer``: most_images (default), thinnest or thickest,
    then Series Number). When none does and ``fallback`` is not false, the series of the
    wanted modality meeting the most criteria, never one already hung; else None.
    """
    hung_uids = set(hung)
    prefer = str(selector.get("prefer") or "most_images")
    pool = sorted(candidates, key=SeriesFacts.order)
    scored = [(facts, *criteria_met(facts, selector)) for facts in pool]
    exact = [facts for facts, met, named in scored if met == named]
    if exact:
        best = max(
            exact,
            key=lambda f: (f.series_instance_uid not in hung_uids, _preference(f, prefer), _neg(f)),
        )
        return Selection(best, exact=True)
    if selector.get("fallback") is False:
        return None
    modality = selector.get("modality")
    nearest = [
        (facts, met)
        for facts, met, _named in scored
        if facts.series_instance_uid not in hung_uids
        and (modality is None or criterion_met(facts, "modality", modality))
    ]
    if not nearest:
        return None
    best = max(nearest, key=lambda fm: (fm[1], _preference(fm[0], prefer), _neg(fm[0])))[0]
    return Selection(best, exact=False)


def _neg(facts: SeriesFacts) -> tuple[bool, int]:
    """Tie-break toward the lowest Series Number (max() picks the largest key)."""
    return (facts.series_number is not None, -(facts.series_number or 0))


def _tokens(text: str) -> set[str]:
    return {t for t in re.split(r"[^a-z0-9.]+", text.lower()) if t}


def description_similarity(a: str, b: str) -> float:
    """0..1: 1 for the same description (ignoring case and spacing), else the share of
    words the two have in common (Jaccard); 0 when either is empty."""
    if not a.strip() or not b.strip():
        return 0.0
    if " ".join(a.lower().split()) == " ".join(b.lower().split()):
        return 1.0
    left, right = _tokens(a), _tokens(b)
    return len(left & right) / len(left | right) if left | right else 0.0


def thickness_similarity(a: float | None, b: float | None) -> float:
    """0..1: 1 for the same slice thickness (within 10 %), falling with the ratio of the
    two to 0 at a ratio of 4 or more; 0 when either is unknown."""
    if a is None or b is None or a <= 0 or b <= 0:
        return 0.0
    ratio = abs(math.log(a / b))
    if ratio <= math.log(1.1):
        return 1.0
    return max(0.0, 1.0 - ratio / math.log(4.0))


# Weights of the comparison: the plane outweighs thickness and description together.
SAME_PLANE = 7.0
THICKNESS = 3.0
DESCRIPTION = 3.0
SAME_BODY_PART = 1.0
SAME_KIND_OF_STACK = 1.0  # both one image (a localizer, a radiograph) or both a stack


def comparison_score(reference: SeriesFacts, candidate: SeriesFacts) -> float | None:
    """How well ``candidate`` (a series of another study) matches ``reference`` (a series
    already hung): None for another modality, else the sum of the same plane (4), the
    thickness similarity (×3), the description similarity (×3), the same body part (1)
    and the same kind of series, one image or a stack (1). At most 15."""
    if candidate.modality.upper() != reference.modality.upper():
        return None
    score = 0.0
    if reference.plane is not None and candidate.plane == reference.plane:
        score += SAME_PLANE
    score += THICKNESS * thickness_similarity(reference.thickness_mm, candidate.thickness_mm)
    score += DESCRIPTION * description_similarity(reference.description, candidate.description)
    if reference.body_part and reference.body_part.upper() == candidate.body_part.upper():
        score += SAME_BODY_PART
    if (reference.instances * reference.frames > 1) == (candidate.instances * candidate.frames > 1):
        score += SAME_KIND_OF_STACK
    return score


def best_comparable(
    candidates: Iterable[SeriesFacts], reference: SeriesFacts
) -> SeriesFacts | None:
    """The candidate with the best :func:`comparison_score` (ties: more images, then the
    lower Series Number); None when no candidate has the reference's modality."""
    scored = [
        (score, facts)
        for facts in sorted(candidates, key=SeriesFacts.order)
        if (score := comparison_score(reference, facts)) is not None
    ]
    if not scored:
        return None
    return max(scored, key=lambda sf: (sf[0], sf[1].instances * sf[1].frames, _neg(sf[1])))[1]
