"""Hanging protocols: validate their JSON, load them, and hang a study with them.

A protocol (one :class:`~viewer.models.HangingProtocol` row, or one JSON object in a file
of ``viewer/hanging_protocols/``) says which studies it fits (``match``) and how to show
them: a ``layout`` ("1x1", "1x2", "2x1", "2x2"), which series of which study (the
current one, or the n-th prior) goes in each viewport with its initial window preset and
whether it plays as a cine, and which viewports are linked (``sync``). The shape is
checked by :func:`validate_protocol`, field by field, with a message that names the
field; it is documented in the README ("Hanging protocols").

Hanging a study (:func:`hang`):

1. The prior slots: the studies given to compare (in order), then the study's priors
   among those this session may see (``viewer.services.priors``: the relevant prior
   first, then the others newest first). "prior 1" is the first slot.
2. Each enabled protocol is evaluated: its ``match`` criteria against the study, each
   viewport resolved to a concrete series (``viewer.dicom.hanging``: a selector, or
   ``match_current:N``, the series of that study that best matches the one hung in
   viewport N by modality, plane, slice thickness and description). A protocol matches
   when every criterion holds and every required viewport has a series.
3. The chosen protocol: the matching one of highest ``priority``, then highest score
   (criteria met plus viewports resolved exactly), then name. Every protocol is answered,
   the chosen first, so that the viewer can switch to any.

Only :func:`load` writes rows (besides the admin, whose form validates through here).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import Exists, JSONField, Max, OuterRef, QuerySet, Subquery

from viewer.dicom import hanging as series_choice
from viewer.dicom.hanging import PLANES, PREFER, SeriesFacts
from viewer.errors import ViewerError
from viewer.models import HangingProtocol, Instance, Series, Study
from viewer.services import priors

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "hanging_protocols"

LAYOUTS = {"1x1": 1, "1x2": 2, "2x1": 2, "2x2": 4}
SYNC_KEYS = ("scroll", "window", "zoom")
STUDIES = ("current", "prior")
MATCH_CURRENT = re.compile(r"^match_current:(\d+)$")

TOP_KEYS = ("name", "description", "priority", "enabled", "match", "layout", "viewports", "sync")
MATCH_KEYS = (
    "modality",
    "body_part",
    "study_description",
    "series_description",
    "orientation",
    "min_priors",
    "max_priors",
    "min_frames",
)
VIEWPORT_KEYS = ("study", "prior", "series", "preset", "cine", "required")
SELECTOR_KEYS = (*series_choice.CRITERIA, "any_of", "prefer", "fallback")

MAX_NAME = 128
MAX_PRESET = 40  # as the viewer's preset table (static/viewer/js/presets.js)
MAX_PATTERN = 500
MAX_WORD = 64
MAX_PRIOR = 8
MAX_FILE_BYTES = 1 << 20


class InvalidProtocol(ViewerError):
    """A hanging protocol whose JSON does not have the documented shape; ``field`` is
    the path of the field at fault (``viewports[1].series.thickness_mm.max``)."""

    status = 400
    code = "invalid_hanging_protocol"

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}" if field else problem)
        self.field = field
        self.problem = problem


# ---------------------------------------------------------------------------------------
# The shape
# ---------------------------------------------------------------------------------------


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _object(value: Any, path: str, keys: Sequence[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidProtocol(path, f"must be an object, not {_kind(value)}")
    for key in value:
        if key not in keys:
            where = f"{path}.{key}" if path else str(key)
            raise InvalidProtocol(where, f"unknown field (known: {', '.join(keys)})")
    return value


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidProtocol(path, f"must be true or false, not {_kind(value)}")
    return value


def _int(value: Any, path: str, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidProtocol(path, f"must be a whole number, not {_kind(value)}")
    if not low <= value <= high:
        raise InvalidProtocol(path, f"must be between {low} and {high}, not {value}")
    return value


def _text(value: Any, path: str, *, most: int, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise InvalidProtocol(path, f"must be a string, not {_kind(value)}")
    if not empty and not value.strip():
        raise InvalidProtocol(path, "must not be empty")
    if len(value) > most:
        raise InvalidProtocol(path, f"is {len(value)} characters long; at most {most}")
    return value


def _words(value: Any, path: str) -> list[str]:
    """A code string, or a non-empty list of them (modality, body part, view position)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise InvalidProtocol(
            path, f"must be a string or a non-empty list of strings, not {_kind(value)}"
        )
    return [_text(item, f"{path}[{i}]", most=MAX_WORD) for i, item in enumerate(items)]


def _pattern(value: Any, path: str) -> str:
    text = _text(value, path, most=MAX_PATTERN)
    try:
        re.compile(text, re.IGNORECASE)
    except re.error as exc:
        raise InvalidProtocol(path, f"is not a valid regular expression ({exc})") from None
    return text


def _planes(value: Any, path: str) -> list[str]:
    planes = _words(value, path)
    for i, plane in enumerate(planes):
        if plane not in PLANES:
            where = path if isinstance(value, str) else f"{path}[{i}]"
            raise InvalidProtocol(where, f"'{plane}' is not one of {', '.join(PLANES)}")
    return planes


def validate_match(value: Any, path: str = "match") -> dict[str, Any]:
    """The ``match`` object: which studies the protocol fits. Every field is optional;
    ``{}`` fits every study."""
    match = _object(value, path, MATCH_KEYS)
    for key in ("modality", "body_part"):
        if match.get(key) is not None:
            _words(match[key], f"{path}.{key}")
    for key in ("study_description", "series_description"):
        if match.get(key) is not None:
            _pattern(match[key], f"{path}.{key}")
    if match.get("orientation") is not None:
        _planes(match["orientation"], f"{path}.orientation")
    low = match.get("min_priors")
    if low is not None:
        _int(low, f"{path}.min_priors", low=0, high=MAX_PRIOR)
    high = match.get("max_priors")
    if high is not None:
        _int(high, f"{path}.max_priors", low=0, high=MAX_PRIOR)
        if low is not None and high < low:
            raise InvalidProtocol(f"{path}.max_priors", f"is less than min_priors ({low})")
    if match.get("min_frames") is not None:
        _int(match["min_frames"], f"{path}.min_frames", low=1, high=100_000)
    return match


def validate_layout(value: Any, path: str = "layout") -> str:
    if not isinstance(value, str) or value not in LAYOUTS:
        shown = value if isinstance(value, str) else _kind(value)
        raise InvalidProtocol(path, f"'{shown}' is not one of {', '.join(LAYOUTS)}")
    return value


def validate_sync(value: Any, path: str = "sync") -> dict[str, bool]:
    """``sync``: which of scroll, window and zoom the viewports share (missing = off)."""
    sync = _object(value, path, SYNC_KEYS)
    for key, on in sync.items():
        _bool(on, f"{path}.{key}")
    return {key: bool(sync.get(key, False)) for key in SYNC_KEYS}


def _selector(value: Any, path: str, *, option: bool = False) -> dict[str, Any]:
    keys = series_choice.CRITERIA if option else SELECTOR_KEYS
    selector = _object(value, path, keys)
    for key in ("modality", "body_part", "view_position"):
        if selector.get(key) is not None:
            _words(selector[key], f"{path}.{key}")
    if selector.get("orientation") is not None:
        _planes(selector["orientation"], f"{path}.orientation")
    if selector.get("description") is not None:
        _pattern(selector["description"], f"{path}.description")
    if selector.get("thickness_mm") is not None:
        bounds = _object(selector["thickness_mm"], f"{path}.thickness_mm", ("min", "max"))
        for key, bound in bounds.items():
            if bound is None:
                continue
            if isinstance(bound, bool) or not isinstance(bound, int | float) or bound < 0:
                raise InvalidProtocol(
                    f"{path}.thickness_mm.{key}", f"must be a number of mm ≥ 0, not {bound!r}"
                )
        low, high = bounds.get("min"), bounds.get("max")
        if low is not None and high is not None and high < low:
            raise InvalidProtocol(f"{path}.thickness_mm.max", f"is less than min ({low})")
    if selector.get("min_frames") is not None:
        _int(selector["min_frames"], f"{path}.min_frames", low=1, high=100_000)
    if option:
        if not selector:
            raise InvalidProtocol(path, "must name at least one criterion")
        return selector
    if selector.get("any_of") is not None:
        options = selector["any_of"]
        if not isinstance(options, list) or not 1 <= len(options) <= 8:
            raise InvalidProtocol(f"{path}.any_of", "must be a list of 1 to 8 objects")
        for i, item in enumerate(options):
            _selector(item, f"{path}.any_of[{i}]", option=True)
    prefer = selector.get("prefer")
    if prefer is not None and prefer not in PREFER:
        raise InvalidProtocol(f"{path}.prefer", f"'{prefer}' is not one of {', '.join(PREFER)}")
    if selector.get("fallback") is not None:
        _bool(selector["fallback"], f"{path}.fallback")
    return selector


def validate_viewports(value: Any, layout: str | None = None, path: str = "viewports") -> list[Any]:
    """``viewports``: one object per viewport, in layout order (left to right, then top
    to bottom), at most as many as the layout has cells."""
    if not isinstance(value, list) or not value:
        raise InvalidProtocol(path, f"must be a non-empty list, not {_kind(value)}")
    if layout is not None and len(value) > LAYOUTS[layout]:
        raise InvalidProtocol(
            path, f"has {len(value)} viewports; layout {layout} has {LAYOUTS[layout]}"
        )
    for index, item in enumerate(value):
        here = f"{path}[{index}]"
        viewport = _object(item, here, VIEWPORT_KEYS)
        study = viewport.get("study", "current")
        if study not in STUDIES:
            raise InvalidProtocol(f"{here}.study", f"'{study}' is not one of {', '.join(STUDIES)}")
        if "prior" in viewport:
            if study != "prior":
                raise InvalidProtocol(f"{here}.prior", 'is only for "study": "prior"')
            _int(viewport["prior"], f"{here}.prior", low=1, high=MAX_PRIOR)
        series = viewport.get("series")
        if isinstance(series, str):
            found = MATCH_CURRENT.match(series)
            if found is None:
                raise InvalidProtocol(
                    f"{here}.series", f"'{series[:40]}' is not an object or 'match_current:N'"
                )
            other = int(found.group(1))
            if other >= index:
                raise InvalidProtocol(
                    f"{here}.series", f"match_current:{other} must name an earlier viewport"
                )
            if value[other].get("series") is None:
                raise InvalidProtocol(f"{here}.series", f"viewport {other} hangs no series")
        elif series is not None:
            _selector(series, f"{here}.series")
        if viewport.get("preset") is not None:
            _text(viewport["preset"], f"{here}.preset", most=MAX_PRESET)
        for key in ("cine", "required"):
            if key in viewport:
                _bool(viewport[key], f"{here}.{key}")
    return value


def validate_protocol(value: Any) -> dict[str, Any]:
    """A whole protocol document; the same object back (for :func:`load`), or
    InvalidProtocol naming the first field at fault."""
    document = _object(value, "", TOP_KEYS)
    for key in ("name", "layout", "viewports"):
        if key not in document:
            raise InvalidProtocol(key, "is missing")
    _text(document["name"], "name", most=MAX_NAME)
    if "description" in document:
        _text(document["description"], "description", most=10_000, empty=True)
    if "priority" in document:
        _int(document["priority"], "priority", low=-10_000, high=10_000)
    if "enabled" in document:
        _bool(document["enabled"], "enabled")
    validate_match(document.get("match", {}))
    layout = validate_layout(document["layout"])
    validate_viewports(document["viewports"], layout)
    validate_sync(document.get("sync", {}))
    return document


# ---------------------------------------------------------------------------------------
# Files and loading
# ---------------------------------------------------------------------------------------


def protocol_files(paths: Iterable[Path]) -> list[Path]:
    """The JSON files named, a folder standing for its ``*.json`` files (sorted)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.glob("*.json") if p.is_file()))
        elif path.is_file():
            found.append(path)
        else:
            raise InvalidProtocol("", f"{path}: no such file or folder")
    return found


def read_protocol_file(path: Path) -> list[dict[str, Any]]:
    """The protocols of one file (one object, or a list of them), validated; an error
    names the file, the protocol's position in a list, and the field."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InvalidProtocol("", f"{path.name}: larger than {MAX_FILE_BYTES} bytes")
        parsed = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidProtocol("", f"{path.name}: cannot be read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise InvalidProtocol(
            "", f"{path.name}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    documents = parsed if isinstance(parsed, list) else [parsed]
    for position, document in enumerate(documents):
        where = f"{path.name}[{position}]" if isinstance(parsed, list) else path.name
        try:
            validate_protocol(document)
        except InvalidProtocol as exc:
            raise InvalidProtocol(
                f"{where}: {exc.field}" if exc.field else where, exc.problem
            ) from None
    return documents


def row_fields(document: Mapping[str, Any]) -> dict[str, Any]:
    """The model fields of a validated document."""
    return {
        "description": document.get("description", ""),
        "priority": document.get("priority", 0),
        "enabled": document.get("enabled", True),
        "match": document.get("match", {}),
        "layout": document["layout"],
        "viewports": document["viewports"],
        "sync": document.get("sync", {}),
    }


@dataclass(frozen=True)
class LoadResult:
    created: list[str]
    updated: list[str]
    deleted: list[str]


def load(paths: Iterable[Path] = (), *, replace: bool = False) -> LoadResult:
    """Upsert the protocols of ``paths`` by name (none named: the shipped set), in one
    transaction, after every file has been read and validated; with ``replace``, every
    other protocol is deleted. Nothing is written when any file is at fault.

    ``source`` is "shipped" for the files of the shipped folder, else "file"."""
    named = list(paths)
    files = protocol_files(named or [SHIPPED_DIR])
    if not files:
        raise InvalidProtocol("", "no protocol files (*.json) found")
    seen: dict[str, str] = {}
    documents: list[tuple[dict[str, Any], str]] = []
    for path in files:
        source = "shipped" if path.resolve().parent == SHIPPED_DIR else "file"
        for document in read_protocol_file(path):
            name = document["name"]
            if name in seen:
                raise InvalidProtocol("", f"{path.name}: the name '{name}' is also in {seen[name]}")
            seen[name] = path.name
            documents.append((document, source))
    created: list[str] = []
    updated: list[str] = []
    with transaction.atomic():
        for document, source in documents:
            _row, was_created = HangingProtocol.objects.update_or_create(
                name=document["name"], defaults={**row_fields(document), "source": source}
            )
            (created if was_created else updated).append(document["name"])
        deleted: list[str] = []
        if replace:
            others = HangingProtocol.objects.exclude(name__in=list(seen))
            deleted = sorted(others.values_list("name", flat=True))
            others.delete()
    return LoadResult(created, updated, deleted)


# ---------------------------------------------------------------------------------------
# Hanging a study
# ---------------------------------------------------------------------------------------


def series_facts(study: Study) -> list[SeriesFacts]:
    """The image series of ``study`` (those with pixel rows), as ``viewer.dicom.hanging``
    sees them; the plane and thickness from the first image by Instance Number."""
    first = Instance.objects.filter(series=OuterRef("pk")).order_by("instance_number", "pk")
    rows = (
        Series.objects.filter(study=study)
        .annotate(
            first_orientation=Subquery(
                first.values("image_orientation_patient")[:1], output_field=JSONField()
            ),
            first_thickness=Subquery(first.values("slice_thickness")[:1]),
            most_frames=Max("instances__number_of_frames"),
            has_pixels=Exists(Instance.objects.filter(series=OuterRef("pk"), rows__isnull=False)),
        )
        .order_by("series_number", "pk")
    )
    facts = []
    for row in rows:
        if not row.has_pixels:
            continue  # a structured report, a key object selection, a presentation state
        orientation = row.first_orientation
        if isinstance(orientation, str):  # some backends hand a subquery's JSON back as text
            orientation = json.loads(orientation)
        facts.append(
            SeriesFacts(
                series_instance_uid=row.series_instance_uid,
                modality=row.modality,
                description=row.series_description,
                body_part=row.body_part_examined,
                view_position=str(getattr(row, "view_position", "") or ""),
                series_number=row.series_number,
                instances=row.number_of_series_related_instances,
                plane=series_choice.plane_of(orientation),
                thickness_mm=row.first_thickness,
                frames=max(row.most_frames or 1, 1),
            )
        )
    return facts


def prior_slots(
    study: Study, visible: QuerySet[Study], compared: Sequence[Study] = ()
) -> list[Study]:
    """The studies of the "prior" viewports, "prior 1" first: the compared studies in the
    order given, then the study's priors in ``visible`` (the relevant prior first, then
    the others newest first), each once."""
    slots = [s for s in compared if s.pk != study.pk]
    found = priors.priors_of(study, visible)  # newest first, at most one relevant
    ordered = [p.study for p in found if p.relevant] + [p.study for p in found if not p.relevant]
    for candidate in ordered:
        if candidate.pk != study.pk and all(candidate.pk != s.pk for s in slots):
            slots.append(candidate)
    return slots


@dataclass(frozen=True)
class HungViewport:
    index: int
    role: str  # "current" or "prior N"
    study: Study | None
    series: SeriesFacts | None
    exact: bool
    preset: str | None
    cine: bool


@dataclass(frozen=True)
class HungProtocol:
    protocol: HangingProtocol
    matches: bool
    score: int
    viewports: list[HungViewport]

    def sync(self) -> dict[str, bool]:
        sync = self.protocol.sync if isinstance(self.protocol.sync, dict) else {}
        return {key: sync.get(key) is True for key in SYNC_KEYS}


@dataclass
class _Studies:
    """The studies a hanging looks at, and their series facts, each read once."""

    current: Study
    slots: list[Study]
    facts: dict[int, list[SeriesFacts]] = field(default_factory=dict)
    _all_series: list[tuple[str, str, str]] | None = None

    def all_series(self) -> list[tuple[str, str, str]]:
        """(modality, description, body part) of every series of the current study,
        images or not."""
        if self._all_series is None:
            self._all_series = list(
                Series.objects.filter(study=self.current).values_list(
                    "modality", "series_description", "body_part_examined"
                )
            )
        return self._all_series

    def of(self, study: Study) -> list[SeriesFacts]:
        if study.pk not in self.facts:
            self.facts[study.pk] = series_facts(study)
        return self.facts[study.pk]


def _match_criteria(match: Mapping[str, Any], studies: _Studies) -> tuple[int, int]:
    """(criteria met, criteria named) of a protocol's ``match`` for the current study."""
    study = studies.current
    facts = studies.of(study)
    every_series = studies.all_series()
    results: list[bool] = []
    if match.get("modality") is not None:
        wanted = {m.upper() for m in _as_list(match["modality"])}
        present = {m.upper() for m, _d, _b in every_series if m}
        present |= {
            m.strip().upper() for m in re.split(r"[\\,]", study.modalities_in_study) if m.strip()
        }
        results.append(bool(wanted & present))
    if match.get("body_part") is not None:
        wanted = {b.upper() for b in _as_list(match["body_part"])}
        parts = {b.upper() for _m, _d, b in every_series if b}
        if parts:
            results.append(bool(wanted & parts))
        else:  # no Body Part Examined: a word of the study's description
            words = set(re.split(r"[^A-Z0-9]+", study.study_description.upper()))
            results.append(bool(wanted & words))
    if match.get("study_description") is not None:
        found = series_choice.pattern(match["study_description"]).search(study.study_description)
        results.append(bool(study.study_description) and found is not None)
    if match.get("series_description") is not None:
        regex = series_choice.pattern(match["series_description"])
        results.append(any(d and regex.search(d) for _m, d, _b in every_series))
    if match.get("orientation") is not None:
        planes = set(_as_list(match["orientation"]))
        results.append(any(f.plane in planes for f in facts))
    if match.get("min_priors") is not None or match.get("max_priors") is not None:
        count = len(studies.slots)
        low, high = match.get("min_priors"), match.get("max_priors")
        results.append((low is None or count >= low) and (high is None or count <= high))
    if match.get("min_frames") is not None:
        results.append(any(f.frames >= match["min_frames"] for f in facts))
    return sum(results), len(results)


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _hang_viewports(
    viewports: Sequence[Mapping[str, Any]], studies: _Studies
) -> list[HungViewport]:
    hung: list[HungViewport] = []
    used: dict[int, set[str]] = {}
    for index, viewport in enumerate(viewports):
        if viewport.get("study", "current") == "prior":
            number = int(viewport.get("prior", 1))
            role = f"prior {number}"
            study = studies.slots[number - 1] if number <= len(studies.slots) else None
        else:
            role, study = "current", studies.current
        series: SeriesFacts | None = None
        exact = False
        wanted = viewport.get("series")
        if study is not None and isinstance(wanted, str):
            found = MATCH_CURRENT.match(wanted)
            reference = hung[int(found.group(1))].series if found else None
            if reference is not None:
                series = series_choice.best_comparable(studies.of(study), reference)
                exact = series is not None
        elif study is not None and isinstance(wanted, dict):
            selection = series_choice.select_series(
                studies.of(study), wanted, used.get(study.pk, set())
            )
            if selection is not None:
                series, exact = selection.series, selection.exact
        if study is not None and series is not None:
            used.setdefault(study.pk, set()).add(series.series_instance_uid)
        preset = viewport.get("preset")
        hung.append(
            HungViewport(
                index=index,
                role=role,
                study=study,
                series=series,
                exact=exact,
                preset=preset if isinstance(preset, str) else None,
                cine=viewport.get("cine") is True and series is not None and series.frames > 1,
            )
        )
    return hung


def evaluate(protocol: HangingProtocol, studies: _Studies) -> HungProtocol:
    """One protocol applied to a study: whether it matches, its score, its viewports."""
    match = protocol.match if isinstance(protocol.match, dict) else {}
    viewports = protocol.viewports if isinstance(protocol.viewports, list) else []
    met, named = _match_criteria(match, studies)
    hung = _hang_viewports(viewports, studies)
    required_hung = all(
        v.series is not None
        for v, spec in zip(hung, viewports, strict=True)
        if spec.get("required", True) is not False and spec.get("series") is not None
    )
    score = met + sum(v.exact for v in hung)
    return HungProtocol(protocol, met == named and required_hung, score, hung)


@dataclass(frozen=True)
class Hanging:
    chosen: HungProtocol | None
    protocols: list[HungProtocol]  # the chosen first, then the matching, then the rest


def _rank(hung: HungProtocol) -> tuple[int, int, str]:
    return (-hung.protocol.priority, -hung.score, hung.protocol.name)


def hang(study: Study, visible: QuerySet[Study], compared: Sequence[Study] = ()) -> Hanging:
    """Every enabled protocol applied to ``study`` (its priors among ``visible``, the
    ``compared`` studies first in the prior slots), the chosen one first."""
    studies = _Studies(study, prior_slots(study, visible, compared))
    results = [evaluate(p, studies) for p in HangingProtocol.objects.filter(enabled=True)]
    matching = sorted((r for r in results if r.matches), key=_rank)
    rest = sorted((r for r in results if not r.matches), key=_rank)
    return Hanging(matching[0] if matching else None, [*matching, *rest])
