"""viewer.dicom.io: what makes an object storable, on real files and their corruptions."""

from __future__ import annotations

import io
import struct

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from viewer.dicom.io import read_object
from viewer.dicom.uids import uid_problem
from viewer.errors import InvalidDicom, TooLarge

LIMITS = {"max_bytes": 64 * 1024 * 1024, "max_frame_bytes": 64 * 1024 * 1024}


def ct_small() -> bytes:
    path = get_testdata_file("CT_small.dcm")
    assert path is not None
    with open(path, "rb") as handle:
        return handle.read()


def with_dataset(change: object) -> bytes:
    dataset = pydicom.dcmread(io.BytesIO(ct_small()))
    change(dataset)  # type: ignore[operator]
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_real_part10_file_is_accepted_with_its_transfer_syntax() -> None:
    parsed = read_object(ct_small(), **LIMITS)
    assert parsed.has_preamble
    assert parsed.transfer_syntax_uid == ExplicitVRLittleEndian
    assert parsed.number_of_frames == 1
    assert parsed.dataset.Rows == 128


def test_bare_dataset_without_preamble_or_meta_is_accepted_as_implicit_le() -> None:
    dataset = pydicom.dcmread(io.BytesIO(ct_small()))
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, True
    write_dataset(out, dataset)
    parsed = read_object(out.getvalue(), **LIMITS)
    assert not parsed.has_preamble
    assert parsed.transfer_syntax_uid == ImplicitVRLittleEndian
    assert parsed.dataset.SOPInstanceUID == dataset.SOPInstanceUID


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        (b"", "empty_file", "empty"),
        (b"%PDF-1.7 this is a report, not an image" * 10, "not_dicom", "not a DICOM file"),
        (b"\x00" * 128 + b"DICM" + b"\x02\x00", "missing_transfer_syntax", "Transfer Syntax"),
    ],
)
def test_non_dicom_bytes_are_refused_with_a_reason(data: bytes, code: str, words: str) -> None:
    with pytest.raises(InvalidDicom) as caught:
        read_object(data, **LIMITS)
    assert caught.value.code == code
    assert words in caught.value.message
    assert caught.value.status == 400


def test_a_file_cut_in_its_pixel_data_is_refused_as_truncated() -> None:
    data = ct_small()
    with pytest.raises(InvalidDicom) as caught:
        read_object(data[: len(data) - 1000], **LIMITS)
    assert caught.value.code == "truncated"
    assert "(7FE0,0010)" in caught.value.message


def test_a_declared_length_of_2_gb_is_refused_before_anything_is_trusted() -> None:
    data = bytearray(ct_small())
    position = data.find(b"\xe0\x7f\x10\x00OW")
    assert position > 0
    data[position + 8 : position + 12] = struct.pack("<I", 0x80000000)
    with pytest.raises(InvalidDicom) as caught:
        read_object(bytes(data), **LIMITS)
    assert caught.value.code == "truncated"
    assert "2147483648" in caught.value.message


def test_missing_sop_instance_uid_is_refused() -> None:
    data = with_dataset(lambda ds: delattr(ds, "SOPInstanceUID"))
    with pytest.raises(InvalidDicom) as caught:
        read_object(data, **LIMITS)
    assert caught.value.code == "missing_uid"
    assert "(0008,0018) SOP Instance UID is missing" in caught.value.message


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("SOPInstanceUID", "1.2.3/../../etc/passwd"),
        ("SOPInstanceUID", "../../x"),
        ("StudyInstanceUID", "1.2.840.abc"),
        ("SeriesInstanceUID", "1.2..3"),
        ("SOPInstanceUID", "1.2.3 4"),
        ("SOPInstanceUID", "1." + "1" * 70),
    ],
)
def test_uids_outside_ps3_5_section_9_are_refused(keyword: str, value: str) -> None:
    def change(dataset: pydicom.Dataset) -> None:
        setattr(dataset, keyword, value)
        if keyword == "SOPInstanceUID":
            dataset.file_meta.MediaStorageSOPInstanceUID = UID("1.2.3")

    with pytest.raises(InvalidDicom) as caught:
        read_object(with_dataset(change), **LIMITS)
    assert caught.value.code == "invalid_uid"


def test_uid_rules() -> None:
    assert uid_problem("1.2.840.10008.5.1.4.1.1.2") is None
    assert uid_problem("999.999.01.23.45.6789") is None  # leading zero: tolerated, see module
    assert uid_problem("") == "is empty"
    assert uid_problem(None) == "is missing"
    assert "64" in str(uid_problem("1." * 40))
    assert "outside" in str(uid_problem("1.2.3\x00"))


def test_rows_and_columns_inconsistent_with_pixel_data_are_refused() -> None:
    data = with_dataset(lambda ds: setattr(ds, "Rows", 512))
    with pytest.raises(InvalidDicom) as caught:
        read_object(data, **LIMITS)
    assert caught.value.code == "pixel_data_mismatch"
    assert "512 rows × 128 columns" in caught.value.message


def test_more_frames_than_the_pixel_data_holds_are_refused() -> None:
    data = with_dataset(lambda ds: setattr(ds, "NumberOfFrames", 2))
    with pytest.raises(InvalidDicom) as caught:
        read_object(data, **LIMITS)
    assert caught.value.code == "pixel_data_mismatch"


def test_a_frame_larger_than_the_cap_is_refused_before_decoding() -> None:
    with pytest.raises(TooLarge) as caught:
        read_object(ct_small(), max_bytes=LIMITS["max_bytes"], max_frame_bytes=1000)
    assert caught.value.code == "frame_too_large"
    assert caught.value.status == 413


def test_the_object_size_cap_applies() -> None:
    with pytest.raises(TooLarge) as caught:
        read_object(ct_small(), max_bytes=1000, max_frame_bytes=LIMITS["max_frame_bytes"])
    assert caught.value.code == "object_too_large"


def test_sequences_nested_beyond_the_limit_are_refused() -> None:
    def nest(dataset: pydicom.Dataset) -> None:
        inner = pydicom.Dataset()
        inner.CodeValue = "X"
        for _ in range(80):
            outer = pydicom.Dataset()
            outer.ContentSequence = [inner]
            inner = outer
        dataset.ContentSequence = [inner]

    with pytest.raises(InvalidDicom) as caught:
        read_object(with_dataset(nest), **LIMITS)
    assert caught.value.code == "nesting_too_deep"


def test_a_dicomdir_is_not_an_instance(shared_dicom: object) -> None:
    from pathlib import Path

    data = (Path(str(shared_dicom)) / "dicomdir" / "DICOMDIR").read_bytes()
    with pytest.raises(InvalidDicom) as caught:
        read_object(data, **LIMITS)
    assert caught.value.code == "dicomdir"


# --- empty pixel data, deflate bombs ----------------------------------------------------


@pytest.mark.parametrize("encapsulated", [False, True], ids=["native", "rle"])
def test_an_empty_pixel_data_element_is_refused_as_a_mismatch(encapsulated: bool) -> None:
    data = with_dataset(lambda ds: setattr(ds, "PixelData", b""))
    if encapsulated:  # the meta's UID of the same length: 1.2.840.10008.1.2.1 -> .5 (RLE)
        data = data.replace(b"1.2.840.10008.1.2.1\x00", b"1.2.840.10008.1.2.5\x00", 1)
    with pytest.raises(InvalidDicom) as caught:
        read_object(data, **LIMITS)
    assert caught.value.code == "pixel_data_mismatch"


def deflated(extra_bytes: int) -> bytes:
    """CT_small as Deflated Explicit VR Little Endian (PS3.5 §A.5), with a private element
    of ``extra_bytes`` zeros: a few kilobytes on disk whatever its inflated size."""

    def deflate(dataset: pydicom.Dataset) -> None:
        dataset.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
        dataset.add_new(0x00091010, "OB", b"\x00" * extra_bytes)

    return with_dataset(deflate)


def test_a_deflated_object_that_inflates_past_the_object_limit_is_refused_before_pydicom() -> None:
    bomb = deflated(16 * 1024 * 1024)
    assert len(bomb) < 64 * 1024
    with pytest.raises(TooLarge) as caught:
        read_object(bomb, max_bytes=4 * 1024 * 1024, max_frame_bytes=LIMITS["max_frame_bytes"])
    assert caught.value.code == "inflated_too_large"
    assert str(4 * 1024 * 1024) in caught.value.message


def test_a_deflated_object_within_the_limit_is_read() -> None:
    parsed = read_object(deflated(1024), **LIMITS)
    assert parsed.transfer_syntax_uid == pydicom.uid.DeflatedExplicitVRLittleEndian
    assert parsed.dataset.Rows == 128


def test_a_deflated_data_set_that_is_not_deflate_is_refused_as_unparseable() -> None:
    data = bytearray(deflated(0))
    data[-200:] = b"\xff" * 200
    with pytest.raises(InvalidDicom) as caught:
        read_object(bytes(data), **LIMITS)
    assert caught.value.code == "unparseable"
