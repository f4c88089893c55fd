"""viewer.dicom.explicit_vr: the one-pass reading gives what pydicom's full reading gives,
on the whole corpus and on corrupted variants, and never accepts what it refuses."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataelem import RawDataElement

from viewer.dicom import io as dicom_io
from viewer.dicom.explicit_vr import read_part10
from viewer.dicom.index import index_fields
from viewer.errors import ViewerError

LIMITS = {"max_bytes": 64 * 1024 * 1024, "max_frame_bytes": 64 * 1024 * 1024}


def same_as_pydicom(fast: pydicom.Dataset, data: bytes) -> None:
    full = pydicom.dcmread(io.BytesIO(data), force=True)
    assert list(fast.keys()) == list(full.keys())
    assert list(fast.file_meta.keys()) == list(full.file_meta.keys())
    for tag in full.file_meta.keys():
        assert fast.file_meta[tag].value == full.file_meta[tag].value
    for tag in full.keys():
        ours, theirs = fast.get_item(tag), full.get_item(tag)
        if isinstance(ours, RawDataElement) and isinstance(theirs, RawDataElement):
            assert (ours.VR, ours.length, ours.value, ours.value_tell) == (
                theirs.VR,
                theirs.length,
                theirs.value,
                theirs.value_tell,
            ), tag
        else:  # read eagerly on one side (undefined-length sequences, the character set)
            assert fast[tag].value == full[tag].value, tag


def test_every_corpus_file_read_in_one_pass_equals_pydicoms_reading(
    shared_dicom: Path, manifest: list[dict[str, Any]]
) -> None:
    accepted = 0
    for entry in manifest:
        data = (shared_dicom / entry["path"]).read_bytes()
        fast = read_part10(data)
        if fast is None:
            continue
        accepted += 1
        same_as_pydicom(fast, data)
        full = pydicom.dcmread(io.BytesIO(data), force=True)
        if "StudyInstanceUID" in full and "SeriesInstanceUID" in full:
            assert index_fields(fast, number_of_frames=1, transfer_syntax_uid="") == index_fields(
                full, number_of_frames=1, transfer_syntax_uid=""
            ), entry["path"]
    # Every Explicit VR Little Endian file (native or encapsulated) with a preamble,
    # except the malformed ones and a DICOMDIR-like few, takes the one-pass reading.
    assert accepted >= 290


def outcome(data: bytes) -> tuple[Any, ...]:
    try:
        parsed = dicom_io.read_object(data, **LIMITS)
    except ViewerError as error:
        return ("refused", type(error).__name__, error.code, error.message)
    except Exception as error:  # the full reading lets some pydicom errors through
        return ("error", repr(error))
    try:
        fields = index_fields(
            parsed.dataset,
            number_of_frames=parsed.number_of_frames,
            transfer_syntax_uid=parsed.transfer_syntax_uid,
        )
    except Exception as error:  # what the index makes of a value it cannot read
        return ("read", parsed.transfer_syntax_uid, parsed.number_of_frames, repr(error))
    return ("read", parsed.transfer_syntax_uid, parsed.number_of_frames, fields)


def variants(data: bytes, seed: int) -> list[bytes]:
    """The file cut at many places, and with bytes of its header overwritten."""
    rng = random.Random(seed)
    cuts = sorted({rng.randrange(0, len(data)) for _ in range(60)} | {len(data) - 1, 140, 200})
    out = [data[:cut] for cut in cuts]
    header_end = min(len(data), data.find(b"\xe0\x7f\x10\x00") + 12 or len(data))
    for _ in range(120):
        changed = bytearray(data)
        for _ in range(rng.choice((1, 2, 4))):
            changed[rng.randrange(132, header_end)] = rng.randrange(256)
        out.append(bytes(changed))
    return out


@pytest.mark.parametrize(
    "source", ["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "emri_small_RLE.dcm"]
)
def test_corrupted_files_get_the_same_outcome_as_with_the_full_reading(
    source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = get_testdata_file(source)
    assert path is not None
    data = Path(str(path)).read_bytes()
    assert read_part10(data) is not None  # the intact file takes the one-pass reading
    for variant in variants(data, seed=len(data)):
        fast = outcome(variant)
        with monkeypatch.context() as patched:
            patched.setattr(dicom_io, "read_part10", lambda data: None)
            full = outcome(variant)
        assert fast == full


def test_what_it_leaves_to_the_full_reading(shared_dicom: Path) -> None:
    ct = (shared_dicom / "ct-series" / "000000.dcm").read_bytes()
    assert read_part10(ct) is not None
    assert read_part10(ct[:-1]) is None  # a byte short
    assert read_part10(ct + b"\x00\x00") is None  # bytes left over
    assert read_part10(ct[128:]) is None  # no preamble
    meta = json.loads((shared_dicom / "manifest.json").read_text())["files"]
    for entry in meta:
        if entry["transfer_syntax"] in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.2"):
            data = (shared_dicom / entry["path"]).read_bytes()
            assert read_part10(data) is None, entry["path"]  # implicit VR, big endian
