"""viewer.services.ingest: objects of a series already stored (one statement per object)
and the general path agree on rows, counts and files."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import DatabaseError, connection

from tests.factories import changed
from viewer.models import Instance, Series, Study
from viewer.services import ingest, known_series, storage

pytestmark = pytest.mark.django_db


def ct_slices(shared_dicom: Path, count: int) -> list[bytes]:
    return [p.read_bytes() for p in sorted((shared_dicom / "ct-series").glob("*.dcm"))[:count]]


def test_objects_of_a_stored_series_are_counted_in_their_series_and_study(
    shared_dicom: Path,
) -> None:
    slices = ct_slices(shared_dicom, 6)
    results = [ingest.ingest_bytes(data, source=str(i)) for i, data in enumerate(slices)]
    assert [r.status for r in results] == ["stored"] * 6
    series = Series.objects.get()
    assert series.number_of_series_related_instances == 6
    study = Study.objects.get()
    assert study.number_of_study_related_instances == 6
    assert study.number_of_study_related_series == 1
    assert Instance.objects.filter(series=series).count() == 6
    assert len(storage.all_keys()) == 6


def test_in_a_stored_series_a_resend_is_a_duplicate_and_other_bytes_a_conflict(
    shared_dicom: Path,
) -> None:
    first, second = ct_slices(shared_dicom, 2)
    ingest.ingest_bytes(first, source="first")
    ingest.ingest_bytes(second, source="second")
    assert ingest.ingest_bytes(second, source="again").status == "duplicate"
    conflict = ingest.ingest_bytes(changed(second, StudyDescription="OTHER"), source="x")
    assert (conflict.status, conflict.code, conflict.http_status) == (
        "rejected",
        "sop_instance_conflict",
        409,
    )
    assert Instance.objects.count() == 2
    assert Study.objects.get().number_of_study_related_instances == 2
    assert len(storage.all_keys()) == 2  # the conflicting object's file is not kept


def test_a_new_object_naming_a_stored_series_under_another_patient_is_refused(
    shared_dicom: Path,
) -> None:
    first, second = ct_slices(shared_dicom, 2)
    ingest.ingest_bytes(first, source="first")
    moved = ingest.ingest_bytes(changed(second, PatientID="SOMEONE-ELSE"), source="moved")
    assert (moved.status, moved.code) == ("rejected", "patient_mismatch")
    assert Instance.objects.count() == 1 and len(storage.all_keys()) == 1


def test_a_failing_count_update_in_a_stored_series_leaves_no_row_and_no_file(
    shared_dicom: Path, monkeypatch: Any
) -> None:
    first, second = ct_slices(shared_dicom, 2)
    ingest.ingest_bytes(first, source="first")
    before = (storage.all_keys(), Instance.objects.count())

    def fail(*args: Any, **kwargs: Any) -> None:
        raise DatabaseError("disk full (simulated in the index, not in the file store)")

    # The count update is part of the insert statement on PostgreSQL, a second one here.
    failing = "_execute_prepared" if connection.vendor == "postgresql" else "_count_instance_in"
    monkeypatch.setattr(known_series, failing, fail)
    result = ingest.ingest_bytes(second, source="second")
    # Refused, naming the database as the cause, with a 503: send it again.
    assert (result.status, result.code, result.http_status) == ("rejected", "database_error", 503)
    assert (storage.all_keys(), Instance.objects.count()) == before
    assert Study.objects.get().number_of_study_related_instances == 1


def test_a_batch_stores_each_object_whole_and_refuses_the_bad_ones_alone(
    shared_dicom: Path,
) -> None:
    slices = ct_slices(shared_dicom, 3)
    bad = slices[1][:2000]  # cut inside its header: refused, the others kept
    with ingest.batch():
        results = [
            ingest.ingest_bytes(d, source=str(i)) for i, d in enumerate([slices[0], bad, slices[2]])
        ]
    assert [r.status for r in results] == ["stored", "rejected", "stored"]
    assert Instance.objects.count() == 2 and len(storage.all_keys()) == 2
    assert Series.objects.get().number_of_series_related_instances == 2


def test_a_batch_whose_transaction_fails_leaves_no_row_and_no_file(
    shared_dicom: Path, instance_insert_fails_for: Any
) -> None:
    import pydicom

    slices = ct_slices(shared_dicom, 3)
    instance_insert_fails_for(str(pydicom.dcmread(io.BytesIO(slices[2])).SOPInstanceUID))
    results: list[ingest.IngestResult] = []
    with pytest.raises(ingest.BatchFailed) as failed:
        with ingest.batch():
            for i, data in enumerate(slices):
                results.append(ingest.ingest_bytes(data, source=str(i)))
    assert [r.status for r in results] == ["stored", "stored"]  # the third raised
    assert failed.value.error.code == "database_error"
    reported = ingest.failed_batch(results, failed.value.error)
    assert [(r.status, r.code) for r in reported] == [("rejected", "database_error")] * 2
    assert reported[0].sop_instance_uid == results[0].sop_instance_uid
    assert Instance.objects.count() == 0 and Series.objects.count() == 0
    assert storage.all_keys() == []


@pytest.mark.parametrize(
    ("tag", "vr"),
    [
        (b"\x08\x00\x16\x00", b"Ug"),  # SOP Class UID with a VR that does not exist
        (b"\x10\x00\x10\x00", b"Qq"),  # Patient's Name, the same
    ],
)
def test_a_value_pydicom_cannot_convert_is_refused_with_a_400(tag: bytes, vr: bytes) -> None:
    """pydicom reads values lazily; one it cannot convert (here an unknown VR, which it
    raises NotImplementedError for) must be a 400 naming the problem, never a 500."""
    from pydicom.data import get_testdata_file

    data = bytearray(Path(str(get_testdata_file("CT_small.dcm"))).read_bytes())
    where = data.index(tag, 132)
    data[where + 4 : where + 6] = vr
    result = ingest.ingest_bytes(bytes(data), source="bad-vr")
    assert result.status == "rejected"
    assert result.http_status == 400 and result.code == "unparseable"
    assert "Value Representation" in result.reason
    assert not Instance.objects.exists()
    assert not any(p.is_file() for p in Path(settings.LOUPE_STORAGE_DIR).rglob("*"))


def test_a_disk_that_refuses_the_temp_file_is_a_507_after_validation_and_nothing_is_kept(
    shared_dicom: Path, settings: Any, tmp_path: Path
) -> None:
    (ct,) = ct_slices(shared_dicom, 1)
    settings.LOUPE_TEMP_DIR = tmp_path / "unmounted"  # the temp volume is gone
    result = ingest.ingest_bytes(ct, source="ct")
    assert (result.status, result.code, result.http_status) == ("rejected", "storage_error", 507)
    assert "cannot write the object" in result.reason
    # Bad bytes are named as such, whatever the disk does.
    not_dicom = ingest.ingest_bytes(b"x" * 4096, source="text")
    assert (not_dicom.code, not_dicom.http_status) == ("not_dicom", 400)
    assert Instance.objects.count() == 0 and storage.all_keys() == []


def test_a_store_that_cannot_take_the_file_is_a_507_and_the_temp_file_is_removed(
    shared_dicom: Path, settings: Any, tmp_path: Path
) -> None:
    (ct,) = ct_slices(shared_dicom, 1)
    blocked = tmp_path / "objects-is-a-file"
    blocked.write_bytes(b"")
    settings.LOUPE_STORAGE_DIR = blocked
    result = ingest.ingest_bytes(ct, source="ct")
    assert (result.status, result.code, result.http_status) == ("rejected", "storage_error", 507)
    assert Instance.objects.count() == 0
    assert list(Path(settings.LOUPE_TEMP_DIR).iterdir()) == []


def test_sqlite_commits_are_synced_to_disk_at_every_commit() -> None:
    """A committed row must survive a power loss as its file does (PostgreSQL does this
    with synchronous_commit on): in WAL mode that is synchronous FULL (2), not NORMAL."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
        cursor.execute("PRAGMA synchronous")
        assert cursor.fetchone()[0] == 2


def _move_to_earlier_layout(instance: Instance) -> str:
    """Put the object's file where the two-level layout kept it and point its row there."""
    sha = instance.sha256
    old_key = f"{sha[0:2]}/{sha[2:4]}/{sha}.dcm"
    old_path = Path(settings.LOUPE_STORAGE_DIR) / old_key
    old_path.parent.mkdir(parents=True, exist_ok=True)
    storage.path_for(instance.storage_key).rename(old_path)
    Instance.objects.filter(pk=instance.pk).update(storage_key=old_key)
    return old_key


def test_a_resend_of_an_object_stored_under_the_earlier_layout_leaves_no_second_copy(
    shared_dicom: Path,
) -> None:
    (ct,) = ct_slices(shared_dicom, 1)
    ingest.ingest_bytes(ct, source="first")
    old_key = _move_to_earlier_layout(Instance.objects.get())
    assert ingest.ingest_bytes(ct, source="again").status == "duplicate"
    assert storage.all_keys() == [old_key]
    assert Instance.objects.get().storage_key == old_key


def test_a_resend_repairs_a_row_of_the_earlier_layout_whose_file_was_lost(
    shared_dicom: Path,
) -> None:
    (ct,) = ct_slices(shared_dicom, 1)
    ingest.ingest_bytes(ct, source="first")
    old_key = _move_to_earlier_layout(Instance.objects.get())
    storage.delete(old_key)
    assert ingest.ingest_bytes(ct, source="again").status == "duplicate"
    row = Instance.objects.get()
    assert row.storage_key == storage.key_for(row.sha256) != old_key
    assert storage.all_keys() == [row.storage_key]
    assert storage.read(row.storage_key) == ct


def _qualifiers(universal: str) -> Any:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    item = Dataset()
    item.UniversalEntityID = universal
    item.UniversalEntityIDType = "ISO"
    return Sequence([item])


def test_the_issuers_qualifiers_are_part_of_the_patients_identity(shared_dicom: Path) -> None:
    from viewer.models import Patient

    first, second, third = ct_slices(shared_dicom, 3)
    qualified = _qualifiers("2.16.840.1.113883.3.1")
    assert ingest.ingest_bytes(
        changed(first, IssuerOfPatientIDQualifiersSequence=qualified), source="1"
    ).ok
    # the fast path (a known series) compares the qualifiers too
    same = ingest.ingest_bytes(
        changed(second, IssuerOfPatientIDQualifiersSequence=qualified), source="2"
    )
    assert same.status == "stored" and same.issuer_of_patient_id == "2.16.840.1.113883.3.1"
    other = ingest.ingest_bytes(third, source="3")  # the same study without qualifiers
    assert (other.status, other.code) == ("rejected", "patient_mismatch")
    patient = Patient.objects.get()
    assert patient.issuer_of_patient_id_qualifiers == "2.16.840.1.113883.3.1&ISO"
    assert Instance.objects.count() == 2


def test_other_patient_ids_are_indexed_and_link_the_person(shared_dicom: Path) -> None:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    from viewer.models import OtherPatientId, Patient
    from viewer.services import identity

    first, second = ct_slices(shared_dicom, 2)
    item, bare = Dataset(), Dataset()
    item.PatientID, item.IssuerOfPatientID, item.TypeOfPatientID = "MRN-7", "HOSP", "TEXT"
    bare.PatientID = "LOCAL-1"
    assert ingest.ingest_bytes(first, source="1").ok
    assert ingest.ingest_bytes(
        changed(
            second,
            SeriesInstanceUID="1.2.826.0.1.3680043.8.498.55.1",
            SOPInstanceUID="1.2.826.0.1.3680043.8.498.55.2",
            OtherPatientIDsSequence=Sequence([item, bare]),
        ),
        source="2",
    ).ok
    patient = Patient.objects.get()
    assert set(
        OtherPatientId.objects.values_list(
            "patient_id", "issuer_of_patient_id", "type_of_patient_id"
        )
    ) == {("MRN-7", "HOSP", "TEXT"), ("LOCAL-1", "", "")}
    own = identity.identity_of(patient)
    assert identity.person(own) == {own, ("MRN-7", "HOSP")}  # the one without issuer: no link
    assert patient.person_key == identity.person_key([own, ("MRN-7", "HOSP")])


def test_items_are_ingested_in_batches_and_a_failed_batch_is_reported_whole(
    shared_dicom: Path, instance_insert_fails_for: Any, monkeypatch: Any
) -> None:
    import pydicom

    from viewer.dicom.archive import Item

    monkeypatch.setattr(ingest, "BATCH_OBJECTS", 2)
    slices = ct_slices(shared_dicom, 5)
    instance_insert_fails_for(str(pydicom.dcmread(io.BytesIO(slices[3])).SOPInstanceUID))
    items = (Item(name=f"slice {i}", data=data) for i, data in enumerate(slices))

    results = ingest.ingest_items(items)

    # Batches [0, 1], [2, 3], [4]: the second fails as a whole at slice 3.
    assert [(r.source, r.status, r.code) for r in results] == [
        ("slice 0", "stored", ""),
        ("slice 1", "stored", ""),
        ("slice 2", "rejected", "database_error"),
        ("slice 3", "rejected", "database_error"),
        ("slice 4", "stored", ""),
    ]
    assert Instance.objects.count() == 3 and len(storage.all_keys()) == 3
