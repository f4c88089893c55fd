"""manage.py import_dicom: folders, zips, DICOMDIRs; a summary table; honest exit status."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from tests.conftest import PROJECT_DIR
from viewer.models import Instance

pytestmark = pytest.mark.django_db


def run(*paths: Path) -> str:
    out = io.StringIO()
    call_command("import_dicom", *map(str, paths), "--no-progress", stdout=out)
    return out.getvalue()


def test_folder_import_prints_rejections_and_totals(shared_dicom: Path, settings: Any) -> None:
    settings.LOUPE_INGEST_DECODE_CHECK = "off"  # the four corrupt codestreams are stored unchecked
    output = run(shared_dicom / "malformed")
    assert "14 object(s): 4 stored, 0 duplicate, 0 replaced, 10 rejected" in output
    assert "oob_rows_cols_65535.dcm" in output and "frame_too_large" in output
    assert Instance.objects.count() == 4


def test_corrupt_codestreams_are_refused_by_the_decode_check(shared_dicom: Path) -> None:
    out = io.StringIO()
    with pytest.raises(CommandError, match="nothing could be imported"):
        call_command("import_dicom", str(shared_dicom / "malformed"), "--no-progress", stdout=out)
    output = out.getvalue()
    assert "14 object(s): 0 stored, 0 duplicate, 0 replaced, 14 rejected" in output
    for name in ("NM_WG04_JPLY_bad_SOS.dcm", "jpeg_ts_but_raw_payload_genFile.dcm"):
        row = next(line for line in output.splitlines() if name in line)
        assert "undecodable" in row and "does not decode" in row, row
    assert Instance.objects.count() == 0


def test_dicomdir_import_follows_its_records(shared_dicom: Path) -> None:
    output = run(shared_dicom / "dicomdir" / "DICOMDIR")
    assert "31 object(s): 31 stored" in output
    assert Instance.objects.count() == 31
    assert "31 object(s): 0 stored, 31 duplicate" in run(shared_dicom / "dicomdir" / "DICOMDIR")


def test_zip_import(tmp_path: Path, shared_dicom: Path) -> None:
    archive = tmp_path / "mr.zip"
    members = sorted((shared_dicom / "mr-series").glob("*"))[:5]
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
        for path in members:
            handle.write(path, f"mr/{path.name}")
    run(archive)
    stored = {i.sha256 for i in Instance.objects.all()}
    assert stored == {hashlib.sha256(path.read_bytes()).hexdigest() for path in members}


def test_nothing_readable_exits_1(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(CommandError) as caught:
        run(tmp_path)
    assert caught.value.returncode == 1


def test_missing_path_exits_2_with_a_message(tmp_path: Path, settings: Any) -> None:
    env = {**os.environ, "LOUPE_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "manage.py", "import_dicom", str(tmp_path / "nope")],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "no such file or folder" in done.stderr
    assert "Traceback" not in done.stderr
