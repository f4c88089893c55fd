"""Check the archive against itself: every row's file present with its SHA-256, and no
file without a row (PS3.15-style integrity check, after Orthanc's MD5 verification).

A file without a row is what a crash between the file's fsync and the row's commit
leaves behind; ``sweep`` removes such orphans (and stale temp files) once they are older
than a grace period, so an ingest still in flight is never touched.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from viewer.models import Instance
from viewer.services import storage


@dataclass
class Report:
    checked: int = 0
    missing: list[str] = field(default_factory=list)  # SOP Instance UIDs whose file is gone
    corrupt: list[str] = field(default_factory=list)  # SOP Instance UIDs whose bytes changed
    orphans: list[str] = field(default_factory=list)  # storage keys with no row
    stale_temp: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not (self.missing or self.corrupt)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(*, grace_seconds: int = 3600) -> Report:
    report = Report()
    referenced: set[str] = set()
    for sop_uid, key, sha in Instance.objects.values_list(
        "sop_instance_uid", "storage_key", "sha256"
    ).iterator():
        referenced.add(key)
        report.checked += 1
        path = storage.path_for(key)
        if not path.exists():
            report.missing.append(sop_uid)
        elif _sha256_of(path) != sha:
            report.corrupt.append(sop_uid)
    cutoff = time.time() - grace_seconds
    for key in storage.all_keys():
        if key not in referenced and storage.path_for(key).stat().st_mtime < cutoff:
            report.orphans.append(key)
    for temp in Path(settings.LOUPE_TEMP_DIR).glob("ingest-*.part"):
        if temp.stat().st_mtime < cutoff:
            report.stale_temp.append(temp.name)
    return report


def sweep(report: Report) -> int:
    """Delete the orphans and stale temp files of ``report``; rows are never touched."""
    for key in report.orphans:
        if not Instance.objects.filter(storage_key=key).exists():
            storage.delete(key)
    for name in report.stale_temp:
        (Path(settings.LOUPE_TEMP_DIR) / name).unlink(missing_ok=True)
    return len(report.orphans) + len(report.stale_temp)
