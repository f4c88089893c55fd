"""viewer.dicom.render: encoders round-trip, the pyramid's maths, viewport cropping."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from viewer.dicom import render
from viewer.errors import ViewerError

RNG = np.random.default_rng(7)


@pytest.mark.parametrize("shape", [(512, 512), (300, 517), (61, 40, 3)])
def test_png_round_trips_exactly(shape: tuple[int, ...]) -> None:
    image = RNG.integers(0, 256, size=shape, dtype=np.uint8)
    decoded = np.asarray(Image.open(io.BytesIO(render.encode_png(image))))
    assert np.array_equal(decoded, image)


@pytest.mark.parametrize("media_type", [render.JPEG, render.WEBP])
@pytest.mark.parametrize("colour", [False, True])
def test_jpeg_and_webp_keep_the_image_within_their_loss(media_type: str, colour: bool) -> None:
    # A smooth image (lossy codecs are made for them): a gradient with a bright square.
    rows, columns = np.mgrid[0:100, 0:80]
    grey = ((rows * 2 + columns) % 256).astype(np.uint8)
    grey[30:60, 20:50] = 230
    image = np.stack([grey, 255 - grey, grey // 2], axis=-1) if colour else grey
    high = render.encode(image, media_type, 95)
    low = render.encode(image, media_type, 30)
    decoded = np.asarray(Image.open(io.BytesIO(high)).convert("RGB" if colour else "L"))
    assert decoded.shape == image.shape
    error = np.abs(decoded.astype(int) - image.astype(int))
    assert error.mean() < 3 and np.median(error) <= 2
    assert len(low) < len(high)  # quality is what was asked for


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32])
def test_reduce_by_is_the_exact_box_average_on_even_sizes(dtype: Any) -> None:
    low, high = {np.uint8: (0, 255), np.uint16: (0, 4095)}.get(dtype, (-500, 500))
    values: np.ndarray = (low + RNG.random((64, 48)) * (high - low)).astype(dtype)
    reduced = render.reduce_by(values, 4)
    expected = values.astype(np.float64).reshape(16, 4, 12, 4).mean(axis=(1, 3))
    tolerance = 1e-3 if dtype == np.float32 else 0.5
    assert reduced.dtype == values.dtype and reduced.shape == (16, 12)
    assert np.abs(reduced.astype(np.float64) - expected).max() <= tolerance


def test_pyramid_levels_and_reduce_agree_on_odd_sizes() -> None:
    levels = render.pyramid(2010, 2446, 256)
    assert [(lv.width, lv.height) for lv in levels] == [
        (2010, 2446),
        (1005, 1223),
        (503, 612),
        (252, 306),
        (126, 153),
    ]
    assert (levels[0].columns, levels[0].rows) == (8, 10) and (
        levels[-1].columns,
        levels[-1].rows,
    ) == (1, 1)
    values = RNG.integers(0, 4096, size=(2446, 2010), dtype=np.uint16)
    for level in levels[1:]:
        assert render.reduce_by(values, 2**level.level).shape == (level.height, level.width)


def test_viewport_parsing_and_flips() -> None:
    image = np.arange(12, dtype=np.uint8).reshape(3, 4)
    flipped = render.apply_viewport(image, render.parse_viewport("4,3,4,0,-4,3"))
    assert np.array_equal(flipped, image[:, ::-1])
    with pytest.raises(ViewerError):
        render.parse_viewport("4,3,1")
    with pytest.raises(ViewerError):
        render.apply_viewport(image, render.parse_viewport("4,3,10,10,2,2"))


def test_tile_outside_the_grid_is_404() -> None:
    level = render.pyramid(600, 300, 256)[0]
    assert render.tile_region(level, 2, 1, 256) == (slice(256, 300), slice(512, 600))
    with pytest.raises(ViewerError) as caught:
        render.tile_region(level, 3, 0, 256)
    assert caught.value.status == 404
