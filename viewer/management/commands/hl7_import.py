"""``manage.py hl7_import FILE [FILE...]``: apply the HL7 v2 ADT A24/A37/A40 messages in files.

A file holds one message or many, each beginning with its MSH segment; segments end with
CR, LF or CR LF; MLLP framing (<VT> … <FS><CR>, as an interface engine logs it) and
FHS/BHS/BTS/FTS batch segments are accepted. Every message is applied on its own, in the
file's order, exactly as the listener applies it (``viewer.hl7.adt``; the link's author is
``hl7:<MSH-3>^<MSH-4>``, its reference MSH-10). One line per message: ``applied`` with what
it did, or ``refused:`` and why; then the totals. Exits 1 when any message was refused, 2
when a file cannot be read (then nothing is applied).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hl7
from django.core.management.base import BaseCommand, CommandError, CommandParser

from viewer.hl7 import adt

_FRAMING = str.maketrans("\x0b\x1c", "\r\r")  # MLLP start and end block: segment ends
_BATCH_SEGMENTS = ("FHS", "BHS", "BTS", "FTS")


@dataclass(frozen=True)
class _Text:
    """One message's text, or text that is no message (``orphan``), from a file."""

    path: Path
    number: int
    text: str
    orphan: bool = False


def split_messages(text: str) -> tuple[str, list[str]]:
    """The segments before the first MSH (other than batch headers and blank lines), and
    the messages (``hl7.split_file``), of a file's text."""
    normalised = text.translate(_FRAMING).replace("\r\n", "\r").replace("\n", "\r")
    lines = [line for line in normalised.split("\r") if line.strip()]
    first = next((i for i, line in enumerate(lines) if line.strip().startswith("MSH")), len(lines))
    leading = [line for line in lines[:first] if not line.strip().startswith(_BATCH_SEGMENTS)]
    messages = hl7.split_file("\r".join(lines[first:])) if first < len(lines) else []
    return "\r".join(leading), list(messages)


class Command(BaseCommand):
    help = "Apply the HL7 v2 ADT link (A24), unlink (A37) and merge (A40) messages in files."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", type=Path, help="files of HL7 v2 messages")

    def handle(self, *args: Any, **options: Any) -> None:
        texts = [item for path in options["files"] for item in self._read(path)]
        applied = refused = 0
        for item in texts:
            where = f"{item.path}: message {item.number}"
            if item.orphan:
                refused += 1
                self.stdout.write(f"{where}: refused: text before the first MSH segment")
                continue
            try:
                message = adt.read(item.text)
                where = f"{where} ({adt.header(message).label})"
                done = adt.apply(adt.actions_of(message))
            except adt.AdtRefused as refusal:
                refused += 1
                self.stdout.write(f"{where}: refused: {refusal.message}")
                continue
            applied += 1
            self.stdout.write(
                f"{where}: applied: {'; '.join(adt.describe_applied(a) for a in done)}"
            )
        self.stdout.write(f"{applied + refused} message(s): {applied} applied, {refused} refused")
        if refused:
            raise CommandError(f"{refused} message(s) refused", returncode=1)

    def _read(self, path: Path) -> list[_Text]:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror or exc}", returncode=2) from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
        leading, messages = split_messages(text)
        items = [_Text(path, 0, leading, orphan=True)] if leading else []
        items += [_Text(path, n, m) for n, m in enumerate(messages, start=1)]
        if not items:
            raise CommandError(f"{path} holds no HL7 message (no MSH segment)", returncode=1)
        return items
