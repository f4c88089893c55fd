"""8-bit images -> encoded bytes; viewport scaling and cropping; the tile pyramid.

Encoders were chosen by measurement on a windowed 512×512 CT slice (``bench/render.py``,
``bench/README.md``):

* PNG: written here (signature, IHDR, one IDAT, IEND; PNG spec §11) with filter type 0 on
  every row and ISA-L's deflate at level 1 (``isal``): about 5× faster than Pillow's
  encoder at its fastest level for a file of the same size, because the filter search
  and zlib's level-1 deflate are what cost;
* JPEG: libjpeg-turbo through ``simplejpeg`` (grey or RGB, no chroma subsampling for grey);
* WebP: Pillow (libwebp), lossy at the requested quality, fastest method.

Tile pyramid (Deep Zoom convention, level 0 at full resolution): level ``k`` is the
frame reduced by ``2**k`` in each direction (box average of the source pixels; the
level's size is rounded up); the top level is the first that fits in one tile.
Tile ``(col, row)`` of level ``k`` covers the level's pixels
``[col*T, min((col+1)*T, width_k))`` × ``[row*T, …)``; edge tiles are smaller than T.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import simplejpeg
from isal import isal_zlib
from PIL import Image

from viewer.errors import ViewerError

PNG = "image/png"
JPEG = "image/jpeg"
WEBP = "image/webp"
MEDIA_TYPES = (PNG, JPEG, WEBP)
DEFAULT_QUALITY = 90


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(image: npt.NDArray[np.uint8]) -> bytes:
    """8-bit grey (H, W) or RGB (H, W, 3) -> PNG, filter 0, ISA-L deflate level 1."""
    height, width = image.shape[:2]
    colour_type = 2 if image.ndim == 3 else 0
    row_bytes = width * (3 if colour_type == 2 else 1)
    scanlines = np.empty((height, row_bytes + 1), dtype=np.uint8)
    scanlines[:, 0] = 0  # filter type None for every row
    scanlines[:, 1:] = image.reshape(height, row_bytes)
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", isal_zlib.compress(scanlines.tobytes(), 1)),
            _chunk(b"IEND", b""),
        )
    )


def encode_jpeg(image: npt.NDArray[np.uint8], quality: int) -> bytes:
    if image.ndim == 2:
        return bytes(simplejpeg.encode_jpeg(image[..., None], quality=quality, colorspace="GRAY"))
    return bytes(
        simplejpeg.encode_jpeg(
            np.ascontiguousarray(image), quality=quality, colorspace="RGB", colorsubsampling="444"
        )
    )


def encode_webp(image: npt.NDArray[np.uint8], quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "WEBP", quality=quality, method=0)
    return buffer.getvalue()


def encode(image: npt.NDArray[np.uint8], media_type: str, quality: int = DEFAULT_QUALITY) -> bytes:
    if media_type == PNG:
        return encode_png(image)
    if media_type == JPEG:
        return encode_jpeg(image, quality)
    if media_type == WEBP:
        return encode_webp(image, quality)
    raise ViewerError(f"cannot render as {media_type}", code="not_acceptable", status=406)


@dataclass(frozen=True)
class Viewport:
    """PS3.18 §8.3.5.1.3 ``viewport=vw,vh[,sx,sy,sw,sh]``.

    The source region (sx, sy, sw, sh) in image pixels (default: the whole image; a
    negative sw or sh flips that axis) is scaled to fit vw × vh, keeping its aspect ratio.
    """

    width: int
    height: int
    sx: float = 0
    sy: float = 0
    sw: float | None = None
    sh: float | None = None


MAX_VIEWPORT = 8192


def parse_viewport(text: str) -> Viewport:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (2, 6):
        raise ViewerError(
            "viewport takes vw,vh or vw,vh,sx,sy,sw,sh (PS3.18 §8.3.5.1.3)", code="bad_viewport"
        )
    try:
        vw, vh = int(parts[0]), int(parts[1])
        region = [float(p) for p in parts[2:]]
    except ValueError:
        raise ViewerError(
            f"viewport '{text[:60]}' is not made of numbers", code="bad_viewport"
        ) from None
    if not (0 < vw <= MAX_VIEWPORT and 0 < vh <= MAX_VIEWPORT):
        raise ViewerError(f"viewport size must be 1 to {MAX_VIEWPORT} pixels", code="bad_viewport")
    if region and not all(math.isfinite(v) for v in region):
        raise ViewerError("viewport region must be finite", code="bad_viewport")
    if region:
        return Viewport(vw, vh, region[0], region[1], region[2], region[3])
    return Viewport(vw, vh)


def apply_viewport(image: npt.NDArray[np.uint8], viewport: Viewport) -> npt.NDArray[np.uint8]:
    """Crop the source region and scale it to fit the viewport (area average down,
    bilinear up)."""
    height, width = image.shape[:2]
    sw = width - viewport.sx if viewport.sw is None else viewport.sw
    sh = height - viewport.sy if viewport.sh is None else viewport.sh
    x0, x1 = sorted((viewport.sx, viewport.sx + sw))
    y0, y1 = sorted((viewport.sy, viewport.sy + sh))
    left, top = max(math.floor(x0), 0), max(math.floor(y0), 0)
    right, bottom = min(math.ceil(x1), width), min(math.ceil(y1), height)
    if right <= left or bottom <= top:
        raise ViewerError(
            "the viewport's source region lies outside the image", code="bad_viewport"
        )
    region = image[top:bottom, left:right]
    if sw < 0:
        region = region[:, ::-1]
    if sh < 0:
        region = region[::-1, :]
    scale = min(viewport.width / region.shape[1], viewport.height / region.shape[0])
    out_w = max(round(region.shape[1] * scale), 1)
    out_h = max(round(region.shape[0] * scale), 1)
    if (out_w, out_h) == (region.shape[1], region.shape[0]):
        return np.ascontiguousarray(region)
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    resized = Image.fromarray(np.ascontiguousarray(region)).resize((out_w, out_h), resample)
    return np.asarray(resized, dtype=np.uint8)


@dataclass(frozen=True)
class Level:
    level: int
    width: int
    height: int
    columns: int
    rows: int


def pyramid(width: int, height: int, tile_size: int) -> list[Level]:
    """Levels from full resolution (0) to the first that fits one tile."""
    levels = []
    k = 0
    while True:
        w, h = math.ceil(width / 2**k), math.ceil(height / 2**k)
        levels.append(Level(k, w, h, math.ceil(w / tile_size), math.ceil(h / tile_size)))
        if w <= tile_size and h <= tile_size:
            return levels
        k += 1


def reduce_by(values: npt.NDArray[Any], factor: int) -> npt.NDArray[Any]:
    """Box-average a frame by ``factor`` (a power of two) in each direction, rounding half
    up. Odd edges are padded by replicating the last row or column before each halving.

    8-bit images go through Pillow's ``reduce``; other integers are summed in int32 by
    repeated 2×2 halving and divided once at the end, so the average is exact."""
    if factor == 1:
        return values
    if factor & (factor - 1):
        raise ValueError(f"reduction factor {factor} is not a power of two")
    if values.dtype == np.uint8:
        return np.asarray(Image.fromarray(values).reduce(factor))
    if not np.issubdtype(values.dtype, np.integer):
        reduced = np.asarray(Image.fromarray(values.astype(np.float32), mode="F").reduce(factor))
        return reduced.astype(values.dtype)
    sums = values.astype(np.int32)
    step = 1
    while step < factor:
        height, width = sums.shape[:2]
        if height % 2 or width % 2:
            pad = ((0, height % 2), (0, width % 2)) + ((0, 0),) * (sums.ndim - 2)
            sums = np.pad(sums, pad, mode="edge")
        sums = sums[0::2, 0::2] + sums[1::2, 0::2] + sums[0::2, 1::2] + sums[1::2, 1::2]
        step *= 2
    area = factor * factor
    return ((sums + area // 2) // area).astype(values.dtype)


def tile_region(level: Level, column: int, row: int, tile_size: int) -> tuple[slice, slice]:
    if not (0 <= column < level.columns and 0 <= row < level.rows):
        raise ViewerError(
            f"tile ({column},{row}) is outside level {level.level}'s "
            f"{level.columns}×{level.rows} grid",
            code="no_such_tile",
            status=404,
        )
    top, left = row * tile_size, column * tile_size
    return slice(top, min(top + tile_size, level.height)), slice(
        left, min(left + tile_size, level.width)
    )
