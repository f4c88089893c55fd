"""Ingest into a real PostgreSQL server: an object of a stored series is inserted and
counted by one statement; duplicates, conflicts and moved series still take the general
path, and leave no file behind."""

from __future__ import annotations

import hashlib
from pathlib import Path

import psycopg
import pytest

from tests.factories import changed
from tests.servers import Server, manage, migrated_database
from viewer.services import storage

pytestmark = pytest.mark.postgres


def test_stored_series_duplicates_conflicts_and_moves_on_postgres(
    postgres: Server, shared_dicom: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    env = migrated_database(postgres, "ingest_paths", data)
    url = env["DATABASE_URL"]
    slices = sorted((shared_dicom / "ct-series").glob("*.dcm"))
    first = tmp_path / "first"
    first.mkdir()
    for path in slices[:5]:
        (first / path.name).write_bytes(path.read_bytes())
    assert "5 object(s): 5 stored" in manage(env, "import_dicom", str(first), "--no-progress")

    second = tmp_path / "second"
    second.mkdir()
    (second / "a_resent.dcm").write_bytes(slices[0].read_bytes())
    (second / "b_conflict.dcm").write_bytes(
        changed(slices[1].read_bytes(), StudyDescription="OTHER")
    )
    (second / "c_moved.dcm").write_bytes(
        changed(slices[2].read_bytes(), PatientID="X", SOPInstanceUID="1.2.3.4.5")
    )
    (second / "d_new.dcm").write_bytes(slices[5].read_bytes())
    output = manage(env, "import_dicom", str(second), "--no-progress")
    assert "4 object(s): 1 stored, 1 duplicate, 0 replaced, 2 rejected" in output
    assert "sop_instance_conflict" in output and "patient_mismatch" in output

    with psycopg.connect(url) as connection:
        rows = connection.execute("SELECT sha256, storage_key FROM viewer_instance").fetchall()
        counts = connection.execute(
            "SELECT st.number_of_study_related_instances, se.number_of_series_related_instances "
            "FROM viewer_study st JOIN viewer_series se ON se.study_id = st.id"
        ).fetchall()
    assert len(rows) == 6 and counts == [(6, 6)]
    objects = data / "objects"
    on_disk = set(storage.keys_in(objects))
    assert on_disk == {key for _, key in rows}
    for sha, key in rows:
        assert hashlib.sha256((objects / key).read_bytes()).hexdigest() == sha
