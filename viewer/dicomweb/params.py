"""Query parameters of the rendered resources (PS3.18 §8.3.5.1) and media-type choice."""

from __future__ import annotations

from collections.abc import Mapping

from viewer.dicom import render
from viewer.dicom.pixels import GreyscaleRequest, Window
from viewer.errors import ViewerError

# PS3.18 §8.3.5.1.4 spells the functions in lower case with a hyphen.
_FUNCTIONS = {"linear": "LINEAR", "linear-exact": "LINEAR_EXACT", "sigmoid": "SIGMOID"}
_DEFAULT_MEDIA_TYPE = render.JPEG  # PS3.18 §8.3.5.2: image/jpeg unless asked otherwise


# The query parameters each resource answers (PS3.18 §8.3.5.1, and Loupe's preset/voilut).
RENDERED_PARAMETERS = frozenset(
    {"accept", "quality", "viewport", "window", "preset", "voilut", "annotation"}
)
TILE_PARAMETERS = frozenset({"accept", "quality", "window", "preset", "voilut"})
THUMBNAIL_PARAMETERS = frozenset({"accept", "quality", "viewport"})
# Parameters of PS3.18 §8.3.5.1 that Loupe does not implement.
_NOT_IMPLEMENTED = {
    "iccprofile": "ICC profiles",
    "charset": "character set choice",
}


def check_parameters(params: Mapping[str, str], allowed: frozenset[str], resource: str) -> None:
    """Refuse (400) a query parameter the resource does not answer, naming it, rather than
    answering as if it had not been sent."""
    for name in params:
        if name in allowed:
            continue
        if name in _NOT_IMPLEMENTED:
            raise ViewerError(
                f"the {name} parameter ({_NOT_IMPLEMENTED[name]}) is not supported",
                code="unsupported_parameter",
            )
        raise ViewerError(
            f"the {resource} resource takes no parameter '{name[:40]}' "
            f"(it takes {', '.join(sorted(allowed))})",
            code="unsupported_parameter",
        )


def parse_window(text: str) -> Window:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (2, 3):
        raise ViewerError(
            "window takes center,width[,function] (PS3.18 §8.3.5.1.4)", code="bad_window"
        )
    try:
        center, width = float(parts[0]), float(parts[1])
    except ValueError:
        raise ViewerError(
            f"window '{text[:60]}' is not made of numbers", code="bad_window"
        ) from None
    function = _FUNCTIONS.get(parts[2].lower()) if len(parts) == 3 else "LINEAR"
    if function is None:
        raise ViewerError(
            f"window function '{parts[2][:20]}' is not linear, linear-exact or sigmoid",
            code="bad_window",
        )
    return Window(center, width, function)


def parse_index(params: Mapping[str, str], name: str) -> int | None:
    """1-based ``preset``/``voilut`` parameter -> 0-based index."""
    raw = params.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ViewerError(f"{name} must be a whole number from 1", code="bad_window") from None
    if value < 1:
        raise ViewerError(f"{name} must be a whole number from 1", code="bad_window")
    return value - 1


def parse_greyscale(params: Mapping[str, str]) -> GreyscaleRequest:
    window = parse_window(params["window"]) if params.get("window") else None
    return GreyscaleRequest(
        window=window, preset=parse_index(params, "preset"), voi_lut=parse_index(params, "voilut")
    )


def parse_quality(params: Mapping[str, str]) -> int:
    raw = params.get("quality")
    if raw is None:
        return render.DEFAULT_QUALITY
    try:
        value = int(raw)
    except ValueError:
        raise ViewerError(
            "quality must be a whole number from 1 to 100", code="bad_quality"
        ) from None
    if not 1 <= value <= 100:
        raise ViewerError("quality must be a whole number from 1 to 100", code="bad_quality")
    return value


def choose_media_type(accept_param: str | None, accept_header: str | None) -> str:
    """The ``accept`` query parameter wins over the Accept header (PS3.18 §8.3.3.1);
    among acceptable types, the highest q, then the order given; ``*/*`` or ``image/*``
    gets the default, image/jpeg."""
    offered = accept_param or accept_header or "*/*"
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate(offered.split(",")):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        quality = 1.0
        for extra in fields[1:]:
            if extra.startswith("q="):
                try:
                    quality = float(extra[2:])
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            continue
        if media in render.MEDIA_TYPES:
            choices.append((-quality, position, media))
        elif media in ("*/*", "image/*"):
            choices.append((-quality, position, _DEFAULT_MEDIA_TYPE))
    if not choices:
        raise ViewerError(
            f"cannot answer in {offered[:80]}; rendered images come as "
            + ", ".join(render.MEDIA_TYPES),
            code="not_acceptable",
            status=406,
        )
    return min(choices)[2]
