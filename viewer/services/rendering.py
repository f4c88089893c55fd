"""Rendering: stored object -> decoded frame (cached) -> display image -> encoded bytes.

Two caches, both bounded:

* the frame cache (in-process LRU, ``settings.LOUPE_FRAME_CACHE_MB``) holds decoded
  frames as *stored* values, per pyramid level, with the frame's pipeline attributes.
  Modality values are one lookup away (``pixels.modality_values``); keeping the stored
  integers lets one 256-level table apply Modality LUT, VOI and Presentation LUT at once;
* rendered bytes go to a byte-bounded LRU of this process (``LOUPE_RENDER_CACHE_MB``:
  a count of entries alone would let a few thousand large renders hold gigabytes), or to
  Django's cache when Redis is configured (shared by every worker, bounded by Redis's
  own memory policy); keyed like the ETag: the object's SHA-256, the frame, every
  parameter and the renderer's version. The same key answers ``If-None-Match`` with 304
  before any work.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
from django.conf import settings
from django.core.cache import cache
from pydicom.dataset import Dataset

from viewer.dicom import pixels, render
from viewer.errors import UnrenderableFrame, ViewerError
from viewer.lru import Lru
from viewer.models import Instance
from viewer.services import decoding

# Bump when a change alters rendered pixels, so cached bytes and ETags are not reused.
RENDERER_VERSION = "1"


@dataclass(frozen=True)
class RenderRequest:
    """Everything that determines the rendered bytes (besides the stored object)."""

    frame: int = 0  # 0-based
    media_type: str = render.PNG
    quality: int = render.DEFAULT_QUALITY
    greyscale: pixels.GreyscaleRequest = field(default_factory=pixels.GreyscaleRequest)
    viewport: render.Viewport | None = None
    tile: tuple[int, int, int] | None = None  # (level, column, row)

    def key(self, instance: Instance) -> str:
        text = repr((RENDERER_VERSION, instance.sha256, self, settings.LOUPE_TILE_SIZE))
        return hashlib.sha256(text.encode()).hexdigest()[:40]


@dataclass(frozen=True)
class Rendered:
    content: bytes
    media_type: str
    etag: str


@dataclass
class DecodedFrame:
    """One frame's stored values (grey) or 8-bit RGB (colour, converted at decode time)
    at one pyramid level, with its pipeline attributes."""

    values: npt.NDArray[Any]
    view: Dataset
    greyscale: bool

    @cached_property
    def value_range(self) -> tuple[int, int] | None:
        """Scanned once per cached frame, not once per request or tile."""
        return pixels.value_range(self.values)

    @cached_property
    def default_voi(self) -> pixels.GreyscaleRequest:
        """The header's VOI, or the frame's full range (resolved once per cached frame)."""
        return pixels.frame_voi(self.view, pixels.GreyscaleRequest(), self.values, self.value_range)

    def voi(self, asked: pixels.GreyscaleRequest) -> pixels.GreyscaleRequest:
        """The VOI ``asked`` for (or the frame's default), as an explicit window or LUT."""
        if asked == pixels.GreyscaleRequest():
            return self.default_voi
        return pixels.frame_voi(self.view, asked, self.values, self.value_range)

    @property
    def nbytes(self) -> int:
        return int(self.values.nbytes) + 4096


# Decoded frames of this process, bounded by their bytes (LOUPE_FRAME_CACHE_MB).
frame_cache: Lru[tuple[str, int, int], DecodedFrame] = Lru(
    max_weight=settings.LOUPE_FRAME_CACHE_MB * 1024 * 1024, weight=lambda frame: frame.nbytes
)
# Rendered bytes of this process, bounded by their size (None: Django's cache, Redis).
local_rendered: Lru[str, bytes] | None = (
    None
    if settings.LOUPE_REDIS_URL
    else Lru(
        max_weight=settings.LOUPE_RENDER_CACHE_BYTES,
        weight=len,
        seconds=settings.LOUPE_RENDER_CACHE_SECONDS,
    )
)


def _cached_bytes(key: str) -> bytes | None:
    if local_rendered is not None:
        return local_rendered.get(key)
    found: bytes | None = cache.get(f"render:{key}")
    return found


def _keep_bytes(key: str, content: bytes) -> None:
    if len(content) > settings.LOUPE_RENDER_CACHE_MAX_ITEM_BYTES:
        return
    if local_rendered is not None:
        local_rendered.set(key, content)
    else:
        cache.set(f"render:{key}", content, timeout=settings.LOUPE_RENDER_CACHE_SECONDS)


def clear_caches() -> None:
    """Forget this process's decoded frames and rendered bytes (not Redis's)."""
    frame_cache.clear()
    if local_rendered is not None:
        local_rendered.clear()


def decoded_frame(instance: Instance, frame: int, level: int = 0) -> DecodedFrame:
    """Frame ``frame`` (0-based) of ``instance`` at pyramid ``level``, from the cache or decoded."""
    key = (instance.sha256, frame, level)
    found = frame_cache.get(key)
    if found is not None:
        return found
    if level > 0:
        full = decoded_frame(instance, frame, 0)
        reduced = DecodedFrame(render.reduce_by(full.values, 2**level), full.view, full.greyscale)
        frame_cache.set(key, reduced)
        return reduced
    dataset, values = decoding.decode_stored(instance, frame)
    view = pixels.frame_view(dataset, frame)
    greyscale = pixels.is_greyscale(view)
    if not greyscale:
        values = pixels.colour_to_display(values, view, dataset)
    decoded = DecodedFrame(np.ascontiguousarray(values), view, greyscale)
    frame_cache.set(key, decoded)
    return decoded


def display_image(instance: Instance, request: RenderRequest) -> npt.NDArray[np.uint8]:
    """The 8-bit image for ``request`` (frame, VOI, tile or viewport), before encoding."""
    level = _checked_level(instance, request.tile[0]) if request.tile else None
    decoded = decoded_frame(instance, request.frame, level.level if level else 0)
    values = decoded.values
    if request.tile and level:
        rows, columns = render.tile_region(
            level, request.tile[1], request.tile[2], settings.LOUPE_TILE_SIZE
        )
        values = values[rows, columns]
    if decoded.greyscale:
        image, _ = pixels.greyscale_to_display(
            values, decoded.view, _voi_for(instance, request), decoded.value_range
        )
    else:
        image = np.asarray(values, dtype=np.uint8)
    if request.viewport is not None:
        image = render.apply_viewport(image, request.viewport)
    return image


def _checked_level(instance: Instance, level: int) -> render.Level:
    levels = render.pyramid(instance.columns or 0, instance.rows or 0, settings.LOUPE_TILE_SIZE)
    if not 0 <= level < len(levels):
        raise ViewerError(
            f"level {level} does not exist (0 to {len(levels) - 1})",
            code="no_such_tile",
            status=404,
        )
    return levels[level]


def _voi_for(instance: Instance, request: RenderRequest) -> pixels.GreyscaleRequest:
    """The VOI, resolved on the full-resolution frame (``pixels.frame_voi``)."""
    return decoded_frame(instance, request.frame, 0).voi(request.greyscale)


def render_instance(instance: Instance, request: RenderRequest) -> Rendered:
    """Encoded bytes for ``request``: from the rendered-bytes cache, or rendered now."""
    if instance.number_of_frames < 1:
        raise UnrenderableFrame("this object has no Pixel Data", code="no_pixel_data")
    key = request.key(instance)
    cached = _cached_bytes(key)
    if cached is not None:
        return Rendered(cached, request.media_type, key)
    content = render.encode(display_image(instance, request), request.media_type, request.quality)
    _keep_bytes(key, content)
    return Rendered(content, request.media_type, key)
