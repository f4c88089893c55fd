"""The seeds of the fuzz tests: real files of the shared corpus, read at run time.

Nothing here is copied into the repository: the lists are made from ``SHARED_DICOM`` when
the tests start, and are empty where the corpus is absent (the tests then skip through
the ``shared_dicom`` fixture before any input is drawn).
"""

from __future__ import annotations

import functools
from pathlib import Path

from tests.conftest import SHARED_DICOM


def _files(folder: str, pattern: str = "*") -> list[Path]:
    root = SHARED_DICOM / folder
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob(pattern) if p.is_file())


def _named(folder: str, *names: str) -> list[Path]:
    return [p for p in (SHARED_DICOM / folder / n for n in names) if p.is_file()]


# Every transfer syntax of compressed/: the Siemens MR in ExplLE, ImplLE, ExplBE, RLE,
# JPEG lossless SV1 (2), JPEG-LS lossless (2), J2K lossless; WG04 CT J2K lossy, JPEG-LS
# near-lossless, RLE in fragments; CR JPEG extended 12-bit; MR JPEG lossless process 14;
# US JPEG baseline, JPEG extended and J2K lossy YBR_ICT; deflated; HTJ2K.
COMPRESSED = _files("compressed", "*.dcm")
MALFORMED = _files("malformed")
# The RLE/JPEG/J2K files of the radiographs and the colour and cine set.
CR_MONOCHROME1 = _files("cr-monochrome1", "*.dcm")
US_RGB_COMPRESSED = _named(
    "us-rgb-multiframe",
    "Issue16_US_34frames_jpeg.dcm",
    "US_Mindray_YBR_FULL_RLE_planar1.dcm",
    "XA_96frames_jpeg_HasFragmentSequence.dcm",
    "Issue164_US_87frames_jpeg.dcm",
)
US_RGB_NATIVE = _named(
    "us-rgb-multiframe",
    "MR_enhanced_10frames_emri_small.dcm",
    "US_palette_color_OBXXXX1A.dcm",
)
CT_PRIOR_MINI = _files("ct-prior-pair-mini", "*.dcm")
CT_SLICES = _files("ct-series", "*.dcm")[::45]  # three slices of the 99
# Window presets, VOI LUT and Modality LUT Sequences: the LUT code's real inputs.
PRESETS = _files("presets", "*.dcm")
# No preamble or meta, odd lengths, 3×3 RGB, the 16-bit segmented palette in big endian.
ODD_CASES = _files("odd-cases")
DICOMDIR_IMAGES = [p for p in _files("dicomdir") if not p.name.upper().startswith("DICOMDIR")]
DICOMDIR_FILES = [p for p in _files("dicomdir") if p.name.upper().startswith("DICOMDIR")]

# Small objects first: Hypothesis shrinks towards the start of a list.
_SMALL_FIRST = functools.partial(sorted, key=lambda p: p.stat().st_size)

# Objects that parse, for mutations at the data-set level (no value in editing an
# object pydicom cannot read in the first place).
PARSEABLE = _SMALL_FIRST(
    COMPRESSED
    + CR_MONOCHROME1
    + US_RGB_COMPRESSED
    + US_RGB_NATIVE
    + CT_PRIOR_MINI
    + CT_SLICES
    + PRESETS
    + ODD_CASES
    + DICOMDIR_IMAGES[:4]
    + [p for p in MALFORMED if p.stat().st_size < 400_000 and "nested" not in p.name]
)
# Everything, for byte-level mutations of the parser.
ALL_SEEDS = _SMALL_FIRST(
    COMPRESSED
    + MALFORMED
    + CR_MONOCHROME1
    + US_RGB_COMPRESSED
    + US_RGB_NATIVE
    + CT_PRIOR_MINI
    + CT_SLICES
    + PRESETS
    + ODD_CASES
    + DICOMDIR_IMAGES[:6]
    + DICOMDIR_FILES
)
# For the pixel pipeline: every transfer syntax, each colour model and LUT kind, the
# compressed radiographs and cine, and the malformed images that still parse.
PIXEL_SEEDS = _SMALL_FIRST(
    COMPRESSED
    + CR_MONOCHROME1
    + US_RGB_COMPRESSED
    + US_RGB_NATIVE
    + CT_PRIOR_MINI
    + CT_SLICES[:1]
    + PRESETS
    + ODD_CASES
    + DICOMDIR_IMAGES[:2]
    + _named(
        "malformed",
        "NM_WG04_JPLY_bad_SOS.dcm",
        "NM_j2k_with_embedded_sequence_delimiter.dcm",
        "jpeg_ts_but_raw_payload_genFile.dcm",
        "CR_WG04_RG2_JPLY_unfixed.dcm",
        "MR_truncated_pixeldata.dcm",
    )
)


@functools.lru_cache(maxsize=128)
def read(path: Path) -> bytes:
    """A seed's bytes (read once per run)."""
    return path.read_bytes()
