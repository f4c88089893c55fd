"""viewer.dicom.archive: zips and DICOMDIRs never reach outside where they belong."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from viewer.dicom.archive import Limits, iter_dicomdir, iter_paths, iter_zip

LIMITS = Limits(max_object_bytes=64 * 1024 * 1024, zip_max_ratio=200, zip_max_total_bytes=1 << 30)


def ct_small() -> bytes:
    path = get_testdata_file("CT_small.dcm")
    assert path is not None
    return Path(path).read_bytes()


def make_zip(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    buffer.seek(0)
    return buffer


def test_zip_members_are_read_in_memory() -> None:
    items = list(iter_zip(make_zip({"a/ct.dcm": ct_small()}), "x.zip", LIMITS))
    assert [(i.name, i.error) for i in items] == [("x.zip!a/ct.dcm", None)]
    assert items[0].data == ct_small()


def test_zip_slip_entries_are_refused_and_nothing_is_extracted(tmp_path: Path) -> None:
    names = ["../evil.dcm", "/etc/evil.dcm", "a/../../evil.dcm", "..\\evil.dcm", "C:/evil.dcm"]
    archive = make_zip({name: ct_small() for name in names} | {"ok.dcm": ct_small()})
    items = list(iter_zip(archive, "x.zip", LIMITS))
    refused = [i for i in items if i.error is not None]
    assert len(refused) == len(names)
    assert all(i.error is not None and i.error.code == "unsafe_zip_entry" for i in refused)
    assert [i.name for i in items if i.error is None] == ["x.zip!ok.dcm"]
    assert not (tmp_path.parent / "evil.dcm").exists()


def test_zip_bomb_is_refused_by_ratio() -> None:
    bomb = make_zip({"bomb.dcm": b"\x00" * (50 * 1024 * 1024)})
    assert len(bomb.getvalue()) < 200 * 1024  # 50 MB of zeros deflate to about 50 KB
    items = list(iter_zip(bomb, "bomb.zip", LIMITS))
    assert len(items) == 1 and items[0].error is not None
    assert items[0].error.code == "zip_ratio"
    assert items[0].error.status == 413


def test_zip_that_expands_beyond_the_total_cap_is_refused_whole() -> None:
    limits = Limits(max_object_bytes=1 << 30, zip_max_ratio=10_000, zip_max_total_bytes=1000)
    items = list(iter_zip(make_zip({"a.dcm": ct_small()}), "big.zip", limits))
    assert len(items) == 1 and items[0].error is not None
    assert items[0].error.code == "zip_too_large"


def test_a_file_that_is_not_a_zip_is_reported() -> None:
    items = list(iter_zip(io.BytesIO(b"PK\x03\x04 broken"), "broken.zip", LIMITS))
    assert items[0].error is not None and items[0].error.code == "bad_zip"


def test_dicomdir_records_are_followed(shared_dicom: Path) -> None:
    items = list(iter_dicomdir(shared_dicom / "dicomdir" / "DICOMDIR", LIMITS))
    assert len(items) == 31
    assert all(i.error is None and i.path is not None for i in items)
    assert all(
        i.path.is_relative_to((shared_dicom / "dicomdir").resolve()) for i in items if i.path
    )


def test_dicomdir_reference_outside_its_folder_is_refused(
    tmp_path: Path, shared_dicom: Path
) -> None:
    folder = tmp_path / "media"
    shutil.copytree(shared_dicom / "dicomdir", folder)
    dicomdir = pydicom.dcmread(folder / "DICOMDIR")
    records = [r for r in dicomdir.DirectoryRecordSequence if "ReferencedFileID" in r]
    records[0].ReferencedFileID = ["..", "..", "etc", "passwd"]
    records[1].ReferencedFileID = "/etc/passwd"
    dicomdir.save_as(folder / "DICOMDIR")
    items = list(iter_dicomdir(folder / "DICOMDIR", LIMITS))
    refused = [i for i in items if i.error is not None]
    assert {i.error.code for i in refused if i.error} == {"unsafe_file_id"}
    assert len(refused) == 2
    assert len([i for i in items if i.error is None]) == 29


def test_folders_are_walked_recursively_and_symlinks_are_not_followed(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "ct.dcm").write_bytes(ct_small())
    (tmp_path / "a" / "link.dcm").symlink_to("/etc/hostname")
    items = list(iter_paths([tmp_path], LIMITS))
    by_name = {Path(i.name).name: i for i in items}
    assert by_name["ct.dcm"].path == tmp_path / "a" / "b" / "ct.dcm"
    assert by_name["link.dcm"].error is not None and by_name["link.dcm"].error.code == "symlink"


# --- corrupt members and records -------------------------------------------------------


def zip_of(payload: bytes, method: int, name: str = "a.dcm") -> bytearray:
    return bytearray(make_zip({name: payload}, compression=method).getvalue())


def only_error(data: bytes | bytearray) -> tuple[str, str]:
    items = list(iter_zip(io.BytesIO(bytes(data)), "x.zip", LIMITS))
    assert len(items) == 1 and items[0].error is not None, items
    return items[0].error.code, items[0].error.message


@pytest.mark.parametrize(
    "method",
    [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA],
    ids=["deflate", "bzip2", "lzma"],
)
def test_a_zip_entry_whose_compressed_stream_is_corrupt_is_reported_not_raised(method: int) -> None:
    data = zip_of(bytes(range(256)) * 40, method)
    start = 30 + len("a.dcm")  # the member's data follows its local header (APPNOTE 4.3.7)
    for i in range(start + 4, start + 40):
        data[i] ^= 0x5A
    code, message = only_error(data)
    assert code == "bad_zip" and "cannot read this zip entry" in message


def test_a_zip_entry_whose_local_header_offset_points_before_the_archive_is_reported() -> None:
    data = zip_of(ct_small(), zipfile.ZIP_STORED)
    central = data.rfind(b"PK\x01\x02")
    data[central + 42 : central + 46] = (0xFFFFFF00).to_bytes(4, "little")  # header offset
    code, _ = only_error(data)
    assert code == "bad_zip"


def test_a_zip_entry_flagged_utf8_whose_local_name_is_not_utf8_is_reported() -> None:
    data = zip_of(ct_small(), zipfile.ZIP_STORED, name="ab.dcm")
    data[30:32] = b"a\x80"  # the local header's name, no longer UTF-8
    for header in (0, data.rfind(b"PK\x01\x02")):
        flags_at = header + (6 if header == 0 else 8)
        flags = int.from_bytes(data[flags_at : flags_at + 2], "little") | 0x800  # UTF-8 names
        data[flags_at : flags_at + 2] = flags.to_bytes(2, "little")
    code, _ = only_error(data)
    assert code == "bad_zip"


def test_an_encrypted_zip_entry_is_refused_without_asking_for_a_password() -> None:
    data = zip_of(ct_small(), zipfile.ZIP_STORED)
    for header in (0, data.rfind(b"PK\x01\x02")):
        flags_at = header + (6 if header == 0 else 8)
        data[flags_at] |= 0x01  # APPNOTE 4.4.4 bit 0: encrypted
    code, message = only_error(data)
    assert code == "encrypted_zip_entry" and "encrypted" in message


def test_a_deflated_dicomdir_that_inflates_past_the_object_limit_is_refused(
    tmp_path: Path,
) -> None:
    dataset = pydicom.dcmread(io.BytesIO(ct_small()))
    dataset.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
    dataset.add_new(0x00091010, "OB", b"\x00" * (2 * 1024 * 1024))
    dataset.save_as(tmp_path / "DICOMDIR")
    small = Limits(max_object_bytes=1024 * 1024, zip_max_ratio=200, zip_max_total_bytes=1 << 30)
    items = list(iter_dicomdir(tmp_path / "DICOMDIR", small))
    assert [i.error.code for i in items if i.error] == ["inflated_too_large"]


def test_a_directory_record_whose_file_id_has_an_unknown_vr_is_reported_and_the_rest_read(
    tmp_path: Path, shared_dicom: Path
) -> None:
    """A corrupt explicit VR ('BS') in (0004,1500) makes pydicom raise NotImplementedError
    when the record is read."""
    folder = tmp_path / "media"
    shutil.copytree(shared_dicom / "dicomdir", folder)
    data = (folder / "DICOMDIR").read_bytes()
    tag_and_vr = b"\x04\x00\x00\x15CS"  # (0004,1500) Referenced File ID, explicit VR LE
    at = data.index(tag_and_vr)
    (folder / "DICOMDIR").write_bytes(data[:at] + b"\x04\x00\x00\x15BS" + data[at + 6 :])
    items = list(iter_dicomdir(folder / "DICOMDIR", LIMITS))
    refused = [i for i in items if i.error is not None]
    assert [i.error.code for i in refused if i.error] == ["bad_dicomdir"]
    assert "Referenced File ID cannot be read" in refused[0].error.message  # type: ignore[union-attr]
    assert len([i for i in items if i.error is None]) == 30


def test_a_file_whose_media_storage_sop_class_cannot_be_read_is_not_taken_for_a_dicomdir(
    tmp_path: Path,
) -> None:
    """An unknown explicit VR ('TI') in (0002,0002) makes pydicom raise NotImplementedError
    when the class is read; the file is then an ordinary item, which ingest refuses."""
    data = ct_small()
    at = data.index(b"\x02\x00\x02\x00UI")  # Media Storage SOP Class UID, explicit VR LE
    path = tmp_path / "odd.dcm"
    path.write_bytes(data[:at] + b"\x02\x00\x02\x00TI" + data[at + 6 :])
    items = list(iter_paths([path], LIMITS))
    assert [(i.path, i.error) for i in items] == [(path, None)]
