"""A fault during an import: PostgreSQL restarts while ``import_dicom`` runs. The import
goes on, names each object it could not store (``database_error``), leaves no row without
its file (``verify_storage``), and a second run stores exactly the ones that failed."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from tests.conftest import require
from tests.servers import (
    PG_BIN,
    PROJECT_DIR,
    Server,
    _as_postgres_user,
    manage,
    migrated_database,
    postgres_available,
    start_postgres,
)

pytestmark = pytest.mark.postgres

OBJECTS = 6000


def tiny_objects(folder: Path, count: int) -> None:
    """``count`` small CT objects (pydicom's CT_small, pixels cut to 16×16), one study."""
    ds = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))
    ds.Rows = ds.Columns = 16
    ds.PixelData = bytes(16 * 16 * 2)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    for n in range(count):
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = n + 1
        ds.save_as(folder / f"{n:05d}.dcm", enforce_file_format=True)


def rows(url: str) -> int:
    with psycopg.connect(url, connect_timeout=2) as conn:
        found = conn.execute("SELECT count(*) FROM viewer_instance").fetchone()
    return int(found[0]) if found else 0


def restart(server: Server) -> None:
    """A fast shutdown (SIGINT: sessions are cut, as a crash or failover cuts them), then
    the same server on the same data folder and port."""
    subprocess.run(  # pg_ctl signals the postmaster itself (SIGINT), not the runuser wrapper
        [
            *_as_postgres_user(),
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(server.root / "data"),
            "stop",
            "-m",
            "fast",
            "-w",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=60,
    )
    server.process.wait(timeout=60)
    time.sleep(1.0)  # the import meets the database down for a while
    server.process = subprocess.Popen(
        [
            *_as_postgres_user(),
            str(PG_BIN / "postgres"),
            "-D",
            str(server.root / "data"),
            "-c",
            "listen_addresses=127.0.0.1",
            "-p",
            str(server.port),
            "-k",
            str(server.root / "sock"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while subprocess.run(
        [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(server.port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ).returncode:
        assert time.monotonic() < deadline, "postgres did not come back within 30 s"
        time.sleep(0.2)


def test_an_import_across_a_postgres_restart_names_what_failed_and_a_retry_stores_it(
    tmp_path: Path,
) -> None:
    require(postgres_available())
    server = start_postgres()  # its own: the session's server is not restarted
    try:
        env = migrated_database(server, "restart", tmp_path / "data")
        url = env["DATABASE_URL"]
        source = tmp_path / "source"
        source.mkdir()
        tiny_objects(source, OBJECTS)

        importing = subprocess.Popen(
            [sys.executable, "manage.py", "import_dicom", str(source), "--no-progress"],
            cwd=PROJECT_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 120
        while rows(url) < 100:  # well under way
            assert importing.poll() is None, importing.communicate()
            assert time.monotonic() < deadline, "the import did not start storing"
            time.sleep(0.05)
        restart(server)
        output, errors = importing.communicate(timeout=300)

        # It ran to its end: a summary, some stored before and after the restart, the
        # ones in between refused by name with the reason, nothing else wrong.
        assert importing.returncode == 0, errors[-2000:]
        summary = re.search(
            r"(\d+) object\(s\): (\d+) stored, 0 duplicate, 0 replaced, (\d+) rejected", output
        )
        assert summary, output[-2000:]
        total, stored, refused = map(int, summary.groups())
        assert total == OBJECTS and refused > 0 and stored > 100
        failed = [line for line in output.splitlines() if "rejected" in line.split()[1:2]]
        assert len(failed) == refused
        assert all("database_error" in line for line in failed), failed[:3]
        assert rows(url) == stored  # the refused ones left no row

        # No row without its intact file (orphan files of a cut batch are listed, and swept).
        verified = manage(env, "verify_storage", "--grace-seconds", "0")
        assert f"{stored} object(s) checked: 0 missing, 0 corrupt" in verified

        # The retry stores exactly the ones that failed.
        again = manage(env, "import_dicom", str(source), "--no-progress")
        assert f"{OBJECTS} object(s): {refused} stored, {stored} duplicate" in again
        assert rows(url) == OBJECTS
        assert "0 missing, 0 corrupt, 0 orphan(s)" in manage(
            env, "verify_storage", "--grace-seconds", "0"
        )
    finally:
        server.stop()
