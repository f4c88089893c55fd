"""``manage.py hl7_listener [--host H] [--port P]``: HL7 v2 ADT A24/A37/A40 over MLLP.

Listens on ``--host`` (default 127.0.0.1) and ``--port`` (default LOUPE_HL7_PORT, 2575; 0
picks a free port), prints where it listens, answers every message with an ACK (see
:mod:`viewer.hl7.mllp`) and stops cleanly on SIGTERM or SIGINT: no new connections, the
messages being applied finish and are acknowledged.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from viewer.hl7.mllp import Listener


class Command(BaseCommand):
    help = "Receive HL7 v2 ADT link (A24), unlink (A37) and merge (A40) messages over MLLP."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
        parser.add_argument(
            "--port",
            type=int,
            default=settings.LOUPE_HL7_PORT,
            help="TCP port (default LOUPE_HL7_PORT; 0 for a free one)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        port: int = options["port"]
        if not 0 <= port <= 65535:
            raise CommandError(f"--port {port} is not a TCP port (0-65535)", returncode=2)
        listener = Listener(
            host=options["host"],
            port=port,
            max_message_bytes=settings.LOUPE_HL7_MAX_MESSAGE_BYTES,
            read_timeout=settings.LOUPE_HL7_READ_TIMEOUT_SECONDS,
        )
        try:
            asyncio.run(self._run(listener))
        except OSError as exc:
            raise CommandError(
                f"cannot listen on {options['host']}:{port}: {exc.strerror or exc}"
            ) from None

    async def _run(self, listener: Listener) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await listener.start()
        self.stdout.write(f"HL7 listener (MLLP) on {listener.host}:{listener.port}")
        self.stdout.flush()
        await stop.wait()
        self.stdout.write("HL7 listener stopping")
        await listener.stop()
        self.stdout.write("HL7 listener stopped")
