"""manage.py load_hanging_protocols [FILE_OR_DIR ...] [--replace]

Loads hanging protocols from JSON files (one protocol object, or a list of them, per file;
a folder stands for its ``*.json`` files). With no argument, the shipped set
(viewer/hanging_protocols/). Protocols are upserted by name; every file is read and
validated before anything is written, all in one transaction, so a file at fault leaves
the database as it was. ``--replace`` also deletes every protocol the files do not name.
The shape is documented in the README ("Hanging protocols") and checked by
``viewer.services.hanging.validate_protocol``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from viewer.services import hanging


class Command(BaseCommand):
    help = "Load hanging protocols from JSON files (default: the shipped set), upserting by name."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "paths", nargs="*", type=Path, metavar="FILE_OR_DIR", help="JSON files or folders"
        )
        parser.add_argument(
            "--replace",
            action="store_true",
            help="also delete every protocol that the files do not name",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = hanging.load(options["paths"], replace=options["replace"])
        except hanging.InvalidProtocol as exc:
            raise CommandError(f"nothing loaded: {exc.message}") from None
        self.stdout.write(
            f"hanging protocols: {len(result.created)} created, {len(result.updated)} updated"
            + (f", {len(result.deleted)} deleted" if options["replace"] else "")
        )
        for label, names in (
            ("created", result.created),
            ("updated", result.updated),
            ("deleted", result.deleted),
        ):
            for name in names:
                self.stdout.write(f"  {label}: {name}")
