"""viewer.dicom.values.value answers what pydicom's Dataset.get answers, for every
attribute of every file of the corpus."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset

from viewer.dicom.values import frame_macro, value


def read(data: bytes) -> Dataset:
    return pydicom.dcmread(io.BytesIO(data), force=True)


def same(ours: Any, theirs: Any) -> bool:
    return type(ours) is type(theirs) and repr(ours) == repr(theirs)


def test_every_attribute_of_the_corpus_reads_as_pydicom_reads_it(
    shared_dicom: Path, manifest: list[dict[str, Any]]
) -> None:
    compared = 0
    for entry in manifest:
        data = (shared_dicom / entry["path"]).read_bytes()
        try:
            ours, theirs = read(data), read(data)
        except Exception:  # noqa: S112  # files pydicom cannot read are not this test's subject
            continue
        for dataset_pair in ((ours, theirs), (ours.file_meta, theirs.file_meta)):
            keywords = [e.keyword for e in dataset_pair[1].iterall() if e.keyword]
            for keyword in keywords:
                try:
                    expected = dataset_pair[1].get(keyword)
                except Exception as error:  # pydicom refuses the value: so must we
                    expected = repr(error)
                try:
                    got = value(dataset_pair[0], keyword)
                except Exception as error:
                    got = repr(error)
                assert same(got, expected), (entry["path"], keyword, got, expected)
                compared += 1
    assert compared > 10000


def test_absent_attributes_give_the_default(shared_dicom: Path) -> None:
    dataset = read((shared_dicom / "ct-series" / "000000.dcm").read_bytes())
    assert value(dataset, "CineRate") is None
    assert value(dataset, "CineRate", 7) == 7
    assert value(dataset, "NotAKeyword") is None


def test_a_binary_value_whose_length_is_not_a_whole_number_of_values_is_invalid_dicom() -> None:
    """pydicom raises a bare Exception (BytesLengthException) for a US of one byte; it is
    refused as invalid DICOM, naming the attribute."""
    import pytest
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    from viewer.errors import InvalidDicom

    dataset = Dataset()
    dataset.set_original_encoding(False, True)
    dataset[0x00280010] = RawDataElement(Tag(0x00280010), "US", 1, b"\x01", 0, False, True)
    with pytest.raises(InvalidDicom) as caught:
        value(dataset, "Rows")
    assert caught.value.code == "unparseable"
    assert "(0028,0010) Rows holds 1 bytes" in caught.value.message


def test_an_integer_string_of_infinity_is_invalid_dicom() -> None:
    """pydicom's IS reads 'inf' through float() and then int(), an OverflowError."""
    import pytest
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    from viewer.errors import InvalidDicom

    dataset = Dataset()
    dataset.set_original_encoding(False, True)
    dataset[0x00280008] = RawDataElement(Tag(0x00280008), "IS", 4, b"inf ", 0, False, True)
    with pytest.raises(InvalidDicom) as caught:
        value(dataset, "NumberOfFrames")
    assert caught.value.code == "unparseable"
    assert "(0028,0008) NumberOfFrames" in caught.value.message


def _macro_item(spacing: float) -> pydicom.Dataset:
    item = pydicom.Dataset()
    measures = pydicom.Dataset()
    measures.PixelSpacing = [spacing, spacing]
    item.PixelMeasuresSequence = [measures]
    return item


@pytest.mark.parametrize(
    ("per_frame", "shared", "frame", "expected"),
    [
        ([0.5, 0.6], 0.9, 1, 0.6),  # the frame's own macro wins
        ([0.5, None], 0.9, 1, 0.9),  # a frame without it takes the shared one
        ([0.5], 0.9, 7, 0.9),  # a frame beyond the per-frame items: the shared one
        (None, 0.9, 0, 0.9),
        ([0.5], None, 0, 0.5),
        (None, None, 0, None),
    ],
)
def test_frame_macro_takes_the_frames_own_item_else_the_shared_one(
    per_frame: list[float | None] | None, shared: float | None, frame: int, expected: float | None
) -> None:
    dataset = pydicom.Dataset()
    if per_frame is not None:
        dataset.PerFrameFunctionalGroupsSequence = [
            _macro_item(s) if s is not None else pydicom.Dataset() for s in per_frame
        ]
    if shared is not None:
        dataset.SharedFunctionalGroupsSequence = [_macro_item(shared)]
    found = frame_macro(dataset, "PixelMeasuresSequence", frame)
    assert (None if found is None else float(found.PixelSpacing[0])) == expected
