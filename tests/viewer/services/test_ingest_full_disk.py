"""A full disk (a small tmpfs under the store): ingest refuses with a clear message (507
``storage_error`` naming the cause), what was stored before stays intact, nothing is
half-written, and once space is freed the same objects are stored."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.config.test_health import _mount_tmpfs
from tests.conftest import require
from viewer.models import Instance
from viewer.services import ingest, storage, verification

pytestmark = pytest.mark.django_db


def test_a_full_disk_refuses_the_object_and_harms_nothing_stored(
    shared_dicom: Path, settings: Any, tmp_path: Path
) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    require(_mount_tmpfs(disk, "3m"))  # room for five 512 KiB CT slices, not twelve
    try:
        (disk / "objects").mkdir()
        (disk / "tmp").mkdir()
        settings.LOUPE_STORAGE_DIR = disk / "objects"
        settings.LOUPE_TEMP_DIR = disk / "tmp"
        slices = [p.read_bytes() for p in sorted((shared_dicom / "ct-series").glob("*.dcm"))[:12]]

        results = [ingest.ingest_bytes(data, source=f"slice {i}") for i, data in enumerate(slices)]

        stored = [r for r in results if r.ok]
        refused = [r for r in results if not r.ok]
        assert stored and refused
        assert all(r.status == "stored" for r in stored)
        for result in refused:
            assert (result.code, result.http_status) == ("storage_error", 507)
            assert "No space left on device" in result.reason
        # What was stored before is whole; no temp file and no row of a refused one.
        assert Instance.objects.count() == len(stored)
        report = verification.verify(grace_seconds=0)
        assert (report.missing, report.corrupt, report.orphans) == ([], [], [])
        assert list((disk / "tmp").iterdir()) == []

        # Space freed (the stored ones moved aside): the refused objects now store.
        for row in Instance.objects.all():
            storage.delete(row.storage_key)
        Instance.objects.all().delete()
        waiting = [int(r.source.split()[1]) for r in refused][: len(stored)]
        again = [ingest.ingest_bytes(slices[i], source="again") for i in waiting]
        assert [r.status for r in again] == ["stored"] * len(waiting)
    finally:
        subprocess.run(["umount", str(disk)], check=True)
