"""Objects whose compressed pixel data does not decode, made in code from real files.

* ``rle_frame`` builds an RLE Lossless frame (PS3.5 G.3: a 64-byte header of the segment
  count and offsets, then the segments);
* ``overrunning_rle_frame`` is a 16-bit frame whose last segment ends in a literal run
  one byte longer than the room left in the frame: pylibjpeg-rle panics on it (a Rust panic, which
  Python sees as a ``BaseException``, not an ``Exception``);
* ``rle_ct`` is pydicom's CT_small (128 × 128, 16-bit) as an RLE multi-frame object whose
  chosen frames overrun;
* ``with_pixel_bytes_changed`` overwrites random bytes of a real file's encapsulated
  pixel data (its fragments, not the item tags), seeded, as a flaky disk or a broken
  modality would.
"""

from __future__ import annotations

import io
import random
import struct
from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate, parse_basic_offsets, parse_fragments
from pydicom.uid import RLELossless, generate_uid


def rle_frame(*segments: bytes) -> bytes:
    offsets, position = [], 64
    for segment in segments:
        offsets.append(position)
        position += len(segment)
    header = struct.pack("<16L", len(segments), *offsets, *([0] * (15 - len(segments))))
    return header + b"".join(segments)


def _zeros_segment(count: int) -> bytes:
    """PackBits runs of zero bytes: replicate runs of 128 (header byte 0x81), then the rest."""
    runs, left = [], count
    while left:
        run = min(left, 128)
        runs.append(bytes([257 - run if run > 1 else 0, 0]))
        left -= run
    return b"".join(runs)


def overrunning_rle_frame(rows: int, columns: int) -> bytes:
    """A 16-bit frame of zeros whose second segment ends in a literal run of two bytes
    (header byte 1) where one byte of the frame is left."""
    pixels = rows * columns
    return rle_frame(_zeros_segment(pixels), _zeros_segment(pixels - 1) + b"\x01\x00\x00")


def rle_ct(frames: int = 1, overrunning: frozenset[int] = frozenset({0})) -> bytes:
    """pydicom's CT_small as an RLE Lossless object of ``frames`` frames (0-based
    ``overrunning`` ones replaced by ``overrunning_rle_frame``), with new UIDs."""
    path = get_testdata_file("CT_small.dcm")
    assert path is not None
    dataset = pydicom.dcmread(path)
    stack = np.stack([dataset.pixel_array] * frames)
    dataset.NumberOfFrames = frames
    dataset.compress(RLELossless, stack if frames > 1 else stack[0], encoding_plugin="pydicom")
    fragments = [
        overrunning_rle_frame(dataset.Rows, dataset.Columns) if index in overrunning else frame
        for index, frame in enumerate(_frames_of(dataset.PixelData))
    ]
    dataset.PixelData = encapsulate(fragments)
    dataset.SOPInstanceUID = generate_uid()
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.SeriesInstanceUID = generate_uid()
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _fragment_spans(pixel_data: bytes) -> list[tuple[int, int]]:
    """Where each fragment's bytes (after its item tag and length) lie in encapsulated
    Pixel Data (PS3.5 A.4)."""
    buffer = io.BytesIO(pixel_data)
    parse_basic_offsets(buffer)
    _, offsets = parse_fragments(buffer)
    spans = []
    for offset in offsets:
        length = struct.unpack("<L", pixel_data[offset + 4 : offset + 8])[0]
        spans.append((offset + 8, offset + 8 + length))
    return spans


def _frames_of(pixel_data: bytes) -> list[bytes]:
    return [pixel_data[low:high] for low, high in _fragment_spans(pixel_data)]


def fragment_spans(data: bytes) -> list[tuple[int, int]]:
    """Where the fragments' bytes (not their item tags) lie in the Part 10 file ``data``."""
    pixel_data = pydicom.dcmread(io.BytesIO(data)).PixelData
    start = data.rindex(pixel_data[:64])  # the value follows the element's header
    return [(start + low, start + high) for low, high in _fragment_spans(pixel_data)]


def with_pixel_bytes_changed(path: Path, *, seed: int, count: int = 300) -> bytes:
    """``path``'s bytes with ``count`` random bytes of its fragments overwritten, and a new
    SOP Instance UID so that it is stored as an object of its own."""
    data = bytearray(path.read_bytes())
    spans = fragment_spans(bytes(data))
    chooser = random.Random(seed)
    for _ in range(count):
        low, high = chooser.choice(spans)
        if high > low:
            data[chooser.randrange(low, high)] = chooser.randrange(256)
    dataset = pydicom.dcmread(io.BytesIO(bytes(data)))
    dataset.SOPInstanceUID = generate_uid()
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()
