"""``manage.py storescp [--port N] [--ae-title AET] [--host H]``: the C-STORE SCP.

Listens on ``--host`` (default 127.0.0.1) and ``--port`` (default LOUPE_DIMSE_PORT,
11112; 0 picks a free port) as ``--ae-title`` (default LOUPE_DIMSE_AE_TITLE, LOUPE),
accepts the calling AE titles of LOUPE_DIMSE_ALLOWED_CALLERS (any when unset), stores
every object received through ingest (:mod:`viewer.dimse.scp`) and stops cleanly on
SIGTERM or SIGINT.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from viewer.dimse import scp


class Command(BaseCommand):
    help = "Receive DICOM objects over DIMSE (C-STORE SCP, C-ECHO) and store them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
        parser.add_argument(
            "--port",
            type=int,
            default=settings.LOUPE_DIMSE_PORT,
            help="TCP port (default LOUPE_DIMSE_PORT, 11112; 0 for a free one)",
        )
        parser.add_argument(
            "--ae-title",
            default=settings.LOUPE_DIMSE_AE_TITLE,
            help="this SCP's AE title (default LOUPE_DIMSE_AE_TITLE, LOUPE)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        port: int = options["port"]
        title: str = options["ae_title"]
        if not 0 <= port <= 65535:
            raise CommandError(f"--port {port} is not a TCP port (0-65535)", returncode=2)
        if not 1 <= len(title.strip()) <= 16 or "\\" in title:
            raise CommandError(f"--ae-title {title!r} is not an AE title (1-16 characters)")
        server = scp.from_settings(port=port, ae_title=title.strip(), host=options["host"])
        try:
            server.start()
        except OSError as exc:
            raise CommandError(
                f"cannot listen on {options['host']}:{port}: {exc.strerror or exc}"
            ) from None
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        self.stdout.write(f"C-STORE SCP {server.ae_title} on {server.host}:{server.port}")
        self.stdout.flush()
        stop.wait()
        self.stdout.write("C-STORE SCP stopping")
        server.stop()
