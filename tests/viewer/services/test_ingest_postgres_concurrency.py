"""Two processes importing the same folder at once, on a real PostgreSQL server."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.conftest import PROJECT_DIR
from tests.servers import Server, create_database
from viewer.services import storage

pytestmark = pytest.mark.postgres


def manage(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_importers_of_one_folder_end_with_one_row_per_instance(
    postgres: Server, shared_dicom: Path, tmp_path: Path
) -> None:
    url = create_database(postgres, "concurrency")
    env = {**os.environ, "DATABASE_URL": url, "LOUPE_DATA_DIR": str(tmp_path)}
    migrate = manage(env, "migrate", "-v0")
    assert migrate.wait(timeout=120) == 0, migrate.communicate()[1]

    folder = shared_dicom / "ct-series"
    files = sorted(folder.glob("*.dcm"))
    importers = [manage(env, "import_dicom", str(folder), "--no-progress") for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in importers]
    assert [p.returncode for p in importers] == [0, 0], outputs

    stored = duplicate = 0
    for out, _ in outputs:
        match = re.search(r"(\d+) object\(s\): (\d+) stored, (\d+) duplicate", out)
        assert match, out
        assert int(match.group(1)) == len(files)
        stored += int(match.group(2))
        duplicate += int(match.group(3))
    assert stored == len(files) and duplicate == len(files)

    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT sop_instance_uid, sha256, storage_key FROM viewer_instance"
        ).fetchall()
        (studies,) = connection.execute("SELECT count(*) FROM viewer_study").fetchone() or (0,)
        counts = connection.execute(
            "SELECT number_of_study_related_instances, number_of_study_related_series "
            "FROM viewer_study"
        ).fetchone()
    assert len(rows) == len(files) == len({r[0] for r in rows})
    assert studies == 1 and counts == (len(files), 1)
    expected = {hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    assert {r[1] for r in rows} == expected
    objects = tmp_path / "objects"
    for _, sha, key in rows:
        assert hashlib.sha256((objects / key).read_bytes()).hexdigest() == sha
    on_disk = set(storage.keys_in(objects))
    assert on_disk == {r[2] for r in rows}
    assert list((tmp_path / "tmp").iterdir()) == []
