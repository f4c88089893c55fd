"""Archive import of hostile zips and DICOMDIRs: every member or record comes out as an
item (its bytes, a file, or the ViewerError that stopped it), and ingesting the items
answers each below 500. Nothing raises, nothing is read outside the archive's folder."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import pydicom
import pytest
from django.db import transaction
from hypothesis import given
from hypothesis import strategies as st
from pydicom.sequence import Sequence as DicomSequence

from tests.fuzz import corpus, mutations
from tests.fuzz.conftest import Figures, budget
from viewer.dicom.archive import Item, Limits, iter_dicomdir, iter_paths, iter_zip
from viewer.services import ingest

Draw = mutations.Draw
pytestmark = pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")

# Caps small enough that the ratio and size checks are reached by real members.
LIMITS = Limits(max_object_bytes=4 * 1024 * 1024, zip_max_ratio=50, zip_max_total_bytes=64 << 20)

MEMBER_NAMES = st.one_of(
    st.sampled_from(
        [
            "a.dcm",
            "dir/b.dcm",
            "IMAGES/IM0001",
            "DICOMDIR",
            "../escape.dcm",
            "/abs.dcm",
            "c:/x.dcm",
            "a\\b.dcm",
            "dir/",
            "x\x00y",
            "é.dcm",
            "." * 300,
            "a/../../b",
        ]
    ),
    # zipfile cuts a name at NUL and cannot write an empty one.
    st.text(min_size=1, max_size=40).filter(lambda name: name.split("\x00", 1)[0] != ""),
)
COMPRESSIONS = st.sampled_from(
    [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]
)
SMALL_SEEDS = [p for p in corpus.ALL_SEEDS if p.stat().st_size < 600_000]


@st.composite
def hostile_zips(draw: Draw) -> bytes:
    """A zip made here from corpus files (some of them mutated first), then byte-edited
    in its local headers, data, central directory or end record."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for _ in range(draw(st.integers(0, 4))):
            member = corpus.read(draw(st.sampled_from(SMALL_SEEDS)))
            if draw(st.booleans()):
                member = draw(mutations.byte_edit(member))
            if draw(st.integers(0, 5)) == 0:
                member = b"\x00" * draw(st.sampled_from([1, 10_000, 1_000_000]))  # ratio bait
            archive.writestr(draw(MEMBER_NAMES), member, compress_type=draw(COMPRESSIONS))
    data = buffer.getvalue()
    for _ in range(draw(st.integers(0, 4))):
        end = max(len(data) - 22, 0)
        region = draw(st.sampled_from(["start", "end_record", "anywhere"]))
        low = {"start": 0, "end_record": end, "anywhere": 0}[region]
        high = {"start": min(len(data), 64), "end_record": len(data), "anywhere": len(data)}[region]
        at = draw(st.integers(low, max(low, high - 1)))
        width = draw(st.sampled_from([1, 2, 4]))
        number = draw(st.sampled_from(mutations.INTERESTING_32)) & ((1 << (8 * width)) - 1)
        if draw(st.booleans()) or not data:
            data = draw(mutations.byte_edit(data or b"PK"))
        else:
            data = data[:at] + number.to_bytes(width, "little") + data[at + width :]
    return data


def ingest_items(items: list[Item], fuzz: Figures, limit: int = 3) -> None:
    """Ingest every refused item and the first ``limit`` others; each answer below 500."""
    ingested = 0
    for item in items:
        if item.error is None:
            if ingested >= limit:
                continue
            ingested += 1
        with transaction.atomic():
            result = ingest.ingest_item(item)
            transaction.set_rollback(True)
        fuzz.tried(f"item {result.code or result.status}")
        if not result.ok:
            assert 400 <= result.http_status < 500, result


@pytest.mark.django_db
@budget(500)
@given(data=hostile_zips())
def test_hostile_zips_yield_items_and_viewer_errors_only(
    shared_dicom: Path, fuzz: Figures, data: bytes
) -> None:
    with fuzz.one_input():
        items = list(iter_zip(io.BytesIO(data), "fuzz.zip", LIMITS))
        fuzz.tried("archive")
        ingest_items(items, fuzz)


@pytest.fixture
def media(tmp_path: Path, shared_dicom: Path) -> Path:
    """The DICOMDIR set, copied at run time into this test's folder."""
    folder = tmp_path / "media"
    shutil.copytree(shared_dicom / "dicomdir", folder)
    return folder


FILE_IDS = st.one_of(
    st.lists(
        st.sampled_from(["77654033", "CR1", "6154", "..", ".", "", "/", "a/b", "\\", "x" * 20])
        | st.text(max_size=10),
        min_size=0,
        max_size=9,
    ),
    st.sampled_from(["/etc/passwd", "..", "77654033\\CR1\\6154"]),
)


@st.composite
def hostile_dicomdirs(draw: Draw) -> bytes:
    """One of the DICOMDIR variants with records edited (Referenced File IDs, offsets,
    record types, removed or repeated records), then sometimes byte-edited."""
    data = corpus.read(draw(st.sampled_from(corpus.DICOMDIR_FILES)))
    if draw(st.booleans()):
        try:
            dicomdir = pydicom.dcmread(io.BytesIO(data), force=True)
            records = list(dicomdir.get("DirectoryRecordSequence") or [])
        except Exception:
            records = []
        if records:
            for _ in range(draw(st.integers(1, 4))):
                record = records[draw(st.integers(0, len(records) - 1))]
                edit = draw(st.sampled_from(["file_id", "offset", "type", "drop", "repeat"]))
                if edit == "file_id":
                    record.ReferencedFileID = draw(FILE_IDS)
                elif edit == "offset":
                    record.OffsetOfTheNextDirectoryRecord = draw(
                        st.sampled_from([0, 1, 2**31, 2**32 - 1])
                    )
                elif edit == "type":
                    record.DirectoryRecordType = draw(
                        st.sampled_from(["IMAGE", "PATIENT", "", "X"])
                    )
                elif edit == "drop":
                    records.remove(record)
                    if not records:
                        break
                else:
                    records.append(record)
            dicomdir.DirectoryRecordSequence = DicomSequence(records)
            data = mutations.save(dicomdir) or data
    if draw(st.booleans()):
        data = draw(mutations.byte_edit(data))
    return data


@pytest.mark.django_db
@budget(400)
@given(data=hostile_dicomdirs())
def test_hostile_dicomdirs_yield_items_and_viewer_errors_only(
    media: Path, fuzz: Figures, data: bytes
) -> None:
    target = media / "DICOMDIR"
    with fuzz.one_input():
        target.write_bytes(data)
        items = list(iter_dicomdir(target, LIMITS))
        fuzz.tried("dicomdir")
        for item in items:
            if item.path is not None:
                assert item.path.resolve().is_relative_to(media.resolve()), item
        ingest_items(items, fuzz)
        found = list(iter_paths([target], LIMITS))  # the way import_dicom finds it
        fuzz.tried("dicomdir via iter_paths")
        ingest_items(found, fuzz, limit=1)
