"""Test data made from real files: a DICOM object with some attributes changed."""

from __future__ import annotations

import io
from typing import Any

import pydicom


def changed(data: bytes, **values: Any) -> bytes:
    """``data`` re-written with the given keywords set (SOP Instance UID kept consistent
    with the file meta's Media Storage SOP Instance UID)."""
    dataset = pydicom.dcmread(io.BytesIO(data))
    for keyword, value in values.items():
        setattr(dataset, keyword, value)
    if "SOPInstanceUID" in values:
        dataset.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.UID(values["SOPInstanceUID"])
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()
