"""Burned-in annotation of rendered images, only when asked (PS3.18 §8.3.5.1.1
``annotation=patient,technique``).

Nothing is drawn by default. ``patient`` draws the demographics (name, ID, birth date,
sex) at the top left; ``technique`` draws how the image was made (modality, the
acquisition parameters present, the frame) at the bottom left. The text is drawn with
Pillow's ImageDraw in white with a black outline, onto the 8-bit display image, after
the viewport, so it stays legible at the size asked for. A de-identified share may not
ask for ``patient`` (403 ``deidentified_share``): it would burn the identity in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset

from viewer.dicom.names import format_person_name
from viewer.errors import ViewerError

PATIENT = "patient"
TECHNIQUE = "technique"
KINDS = (PATIENT, TECHNIQUE)


def parse_annotation(query: Mapping[str, str]) -> tuple[str, ...]:
    """``annotation=patient,technique`` -> ("patient", "technique"); () when absent;
    400 naming a value that is neither."""
    text = query.get("annotation")
    if text is None:
        return ()
    asked = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [part for part in asked if part not in KINDS]
    if unknown or not asked:
        raise ViewerError(
            f"annotation takes patient, technique or both, not '{','.join(unknown)[:40]}'",
            code="bad_annotation",
        )
    return tuple(kind for kind in KINDS if kind in asked)


def _text(dataset: Dataset, keyword: str) -> str:
    try:
        found = dataset.get(keyword)
    except Exception:  # a value pydicom cannot read is simply not annotated
        return ""
    if found is None or found == "":
        return ""
    if isinstance(found, list | tuple) or type(found).__name__ == "MultiValue":
        return "\\".join(str(v) for v in found)
    return str(found).strip()


def _date(text: str) -> str:
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}" if len(text) == 8 and text.isdigit() else text


def patient_lines(dataset: Dataset) -> list[str]:
    name = format_person_name(_text(dataset, "PatientName"))
    lines = [name] if name else []
    if pid := _text(dataset, "PatientID"):
        lines.append(f"ID {pid}")
    born = _date(_text(dataset, "PatientBirthDate"))
    sex = _text(dataset, "PatientSex")
    if born or sex:
        lines.append(" ".join(p for p in (born and f"born {born}", sex) if p))
    if study := _date(_text(dataset, "StudyDate")):
        lines.append(f"study {study}")
    return lines


_TECHNIQUE = (
    ("KVP", "{} kVp"),
    ("XRayTubeCurrent", "{} mA"),
    ("ExposureTime", "{} ms"),
    ("SliceThickness", "thk {} mm"),
    ("RepetitionTime", "TR {}"),
    ("EchoTime", "TE {}"),
    ("MagneticFieldStrength", "{} T"),
    ("ConvolutionKernel", "kernel {}"),
)


def technique_lines(dataset: Dataset, frame: int, frames: int) -> list[str]:
    first = " ".join(
        p for p in (_text(dataset, "Modality"), _text(dataset, "SeriesDescription")) if p
    )
    lines = [first] if first else []
    values = [fmt.format(_text(dataset, kw)) for kw, fmt in _TECHNIQUE if _text(dataset, kw)]
    for start in range(0, len(values), 3):
        lines.append("  ".join(values[start : start + 3]))
    if frames > 1:
        lines.append(f"frame {frame + 1}/{frames}")
    return lines


def draw(image: npt.NDArray[np.uint8], top: list[str], bottom: list[str]) -> npt.NDArray[np.uint8]:
    """``image`` (grey or RGB) with ``top`` lines at its top left and ``bottom`` at its
    bottom left."""
    picture = Image.fromarray(np.ascontiguousarray(image))
    height = picture.height
    size = max(10, min(24, height // 32))
    font: Any = ImageFont.load_default(size=size)
    pen = ImageDraw.Draw(picture)
    white: Any = 255 if picture.mode == "L" else (255, 255, 255)
    black: Any = 0 if picture.mode == "L" else (0, 0, 0)
    step = size + 2
    margin = max(2, size // 3)
    for number, line in enumerate(top):
        pen.text(
            (margin, margin + number * step),
            line,
            fill=white,
            font=font,
            stroke_width=1,
            stroke_fill=black,
        )
    for number, line in enumerate(bottom):
        y = height - margin - (len(bottom) - number) * step
        pen.text((margin, y), line, fill=white, font=font, stroke_width=1, stroke_fill=black)
    return np.asarray(picture, dtype=np.uint8)


def annotate(
    image: npt.NDArray[np.uint8], dataset: Dataset, kinds: tuple[str, ...], frame: int, frames: int
) -> npt.NDArray[np.uint8]:
    top = patient_lines(dataset) if PATIENT in kinds else []
    bottom = technique_lines(dataset, frame, frames) if TECHNIQUE in kinds else []
    return draw(image, top, bottom)
