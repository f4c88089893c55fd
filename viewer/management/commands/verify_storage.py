"""``manage.py verify_storage [--sweep]``: check every stored object against its SHA-256.

Exit status 0 when every row has its file intact, 1 when a file is missing or corrupt.
Orphan files (no row) and stale temp files are listed, and removed with ``--sweep``.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from viewer.services import verification


class Command(BaseCommand):
    help = "Verify stored objects against their SHA-256; list (and sweep) orphan files."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--sweep", action="store_true", help="delete orphans and stale temp files"
        )
        parser.add_argument(
            "--grace-seconds", type=int, default=3600, help="ignore files younger than this"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report = verification.verify(grace_seconds=options["grace_seconds"])
        for uid in report.missing:
            self.stdout.write(f"missing file: instance {uid}")
        for uid in report.corrupt:
            self.stdout.write(f"SHA-256 mismatch: instance {uid}")
        for key in report.orphans:
            self.stdout.write(f"orphan file (no row): {key}")
        for name in report.stale_temp:
            self.stdout.write(f"stale temp file: {name}")
        self.stdout.write(
            f"{report.checked} object(s) checked: {len(report.missing)} missing, "
            f"{len(report.corrupt)} corrupt, {len(report.orphans)} orphan(s), "
            f"{len(report.stale_temp)} stale temp file(s)"
        )
        if options["sweep"]:
            self.stdout.write(f"swept {verification.sweep(report)} file(s)")
        if not report.healthy:
            raise CommandError("the archive has missing or corrupt objects", returncode=1)
