"""``manage.py import_dicom PATH...``: files, folders (recursively), zips and DICOMDIRs.

Prints a progress bar on stderr, then a table with one row per object that was not
simply stored (duplicates and rejections with their reasons; ``--verbose-table`` lists
every object) and the totals. Exits 0 when at least one object could be read and
stored or recognised as a duplicate; 1 when nothing could; 2 for bad arguments.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from viewer.dicom.archive import iter_paths
from viewer.errors import AuditUnavailable
from viewer.services import audit, ingest


class Command(BaseCommand):
    help = "Import DICOM files, folders, zip archives and DICOMDIRs into the archive."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", type=Path, help="files, folders, .zip, DICOMDIR")
        parser.add_argument("--all-rows", action="store_true", help="list stored objects too")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        paths: list[Path] = options["paths"]
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise CommandError(f"no such file or folder: {', '.join(missing)}", returncode=2)
        items: Iterable[Any] = iter_paths(paths, ingest.archive_limits())
        progress = tqdm(
            items,
            unit=" obj",
            file=sys.stderr,
            disable=options["no_progress"],
            desc="import",
            dynamic_ncols=True,
        )
        results = ingest.ingest_items(progress)
        progress.close()
        self._table(results, show_all=options["all_rows"])
        if results:
            self._audit(results)
        counts = ingest.summarize(results)
        self.stdout.write(
            f"{len(results)} object(s): {counts['stored']} stored, {counts['duplicate']} duplicate, "
            f"{counts['replaced']} replaced, {counts['rejected']} rejected"
        )
        if not any(r.ok for r in results):
            raise CommandError("nothing could be imported", returncode=1)

    def _audit(self, results: list[ingest.IngestResult]) -> None:
        """One DICOM Instances Transferred record per patient (PS3.15 A.5.3.7)."""
        try:
            operator = getpass.getuser()
        except (KeyError, OSError):
            operator = "unknown"
        try:
            audit.record_transfer(None, results, user=f"import_dicom ({operator})")
        except AuditUnavailable as error:
            raise CommandError(f"imported, but {error.message}", returncode=1) from None

    def _table(self, results: list[ingest.IngestResult], *, show_all: bool) -> None:
        rows = [r for r in results if show_all or r.status != ingest.STORED]
        if not rows:
            return
        width = min(max(len(r.source) for r in rows), 80)
        self.stdout.write(f"{'source':<{width}}  {'result':<9}  reason")
        for result in rows:
            source = (
                result.source if len(result.source) <= width else "…" + result.source[-width + 1 :]
            )
            reason = f"{result.code}: {result.reason}" if result.reason else ""
            self.stdout.write(f"{source:<{width}}  {result.status:<9}  {reason}")
