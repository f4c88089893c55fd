"""The HL7 v2 listener: MLLP over TCP (HL7 v2.5 Appendix C), on asyncio, with the ``hl7``
library's server streams (``hl7.mllp.start_hl7_server``).

Each connection is read one MLLP block at a time; each block is one message, answered
with one ACK (original mode, HL7 table 0008) before the next is read:

- ``AA``: the message was applied (:func:`viewer.hl7.adt.apply`), or changed nothing
  because its links were already as it says;
- ``AE``: an ADT message whose content Loupe refuses (a missing PID-3 or MRG-1, too few PID
  segments, a link the cross-reference refuses); the reason is in MSA-3 and ERR;
- ``AR``: not a message Loupe takes (not ER7, another type or trigger event, a malformed
  MSH, a block without its start character, a message larger than
  ``LOUPE_HL7_MAX_MESSAGE_KB``), or Loupe could not store it (a database error: resend
  later). A message too large is answered and its connection closed, as the rest of it
  cannot be told from the next message.

Parsing and the service calls run in one worker thread (``sync_to_async``), never on the
event loop's thread, so the database is used as Django expects and a slow commit does not
stop the other connections. A connection that sends no complete message for
``LOUPE_HL7_READ_TIMEOUT_SECONDS`` is closed. Text is read as UTF-8, else as ISO 8859-1
(which reads any byte); ACKs are ASCII, other characters escaped as HL7 hex escapes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from dataclasses import dataclass, field
from typing import Any

import hl7
from asgiref.sync import sync_to_async
from django.db import DatabaseError, close_old_connections
from hl7.mllp import HL7StreamReader, HL7StreamWriter, InvalidBlockError, start_hl7_server

from viewer.hl7 import adt

logger = logging.getLogger(__name__)

RECEIVING_APPLICATION = "LOUPE"
# The ACK of a block that is not a message: nothing to copy its header from.
_BARE_ACK = "MSH|^~\\&|LOUPE\rMSA|AR\r"
_STOP_GRACE_SECONDS = 10.0


def decode(block: bytes) -> tuple[str, str]:
    """A message's bytes as text, and the character set read: UTF-8, else ISO 8859-1."""
    try:
        return block.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return block.decode("latin-1"), "latin-1"


def _escaped(message: Any, text: str) -> str:
    return str(message.escape(text))


def _bare_ack(head: adt.Header | None, ack_code: str) -> Any:
    """An ACK made from nothing but what is known of the message (its header, if any)."""
    ack = hl7.parse(_BARE_ACK)
    msh = ack.segment("MSH")
    if head is not None:
        msh.assign_field(_escaped(ack, head.sending_application), 5)
        msh.assign_field(_escaped(ack, head.sending_facility), 6)
    msh.assign_field(datetime.datetime.now(datetime.UTC).strftime("%Y%m%d%H%M%S"), 7)
    msh.assign_field("ACK", 9, 1, 1)
    if head is not None and head.trigger.isalnum():
        msh.assign_field(head.trigger, 9, 1, 2)
    msh.assign_field(hl7.generate_message_control_id(), 10)
    msh.assign_field("P", 11)
    msh.assign_field("2.5", 12)
    ack.segment("MSA").assign_field(ack_code, 1)
    if head is not None:
        ack.segment("MSA").assign_field(_escaped(ack, head.control_id), 2)
    return ack


def acknowledgement(message: Any | None, refused: adt.AdtRefused | None = None) -> str:
    """The ACK of ``message`` (an ``hl7.Message``; None where the text was not one):
    AA, or the refusal's AE/AR with its reason in MSA-3 and an ERR segment (ERR-2 the
    location, ERR-3 the table 0357 code, ERR-4 severity E, ERR-8 the reason)."""
    ack: Any = None
    head = adt.header(message) if message is not None else None
    if message is not None and head is not None:
        with contextlib.suppress(IndexError, TypeError, KeyError, ValueError):
            ack = message.create_ack(
                refused.ack_code if refused else adt.ACCEPT,
                application=None if head.receiving_application else RECEIVING_APPLICATION,
            )
    if ack is None:  # not a message, or one whose MSH the library cannot answer from
        ack = _bare_ack(head, refused.ack_code if refused else adt.ACCEPT)
    if refused is None:
        return str(ack)
    reason = _escaped(ack, refused.message[:200])
    ack.segment("MSA").assign_field(reason, 3)
    err = ack.create_segment([ack.create_field(["ERR"])])
    if refused.location is not None:
        segment_id, sequence, field_number = refused.location
        err.assign_field(segment_id, 2, 1, 1)
        err.assign_field(str(sequence), 2, 1, 2)
        err.assign_field(str(field_number), 2, 1, 3)
    err.assign_field(refused.hl7_error, 3, 1, 1)
    err.assign_field(_escaped(ack, refused.code), 3, 1, 2)
    err.assign_field("HL70357", 3, 1, 3)
    err.assign_field("E", 4)
    err.assign_field(reason, 8)
    ack.append(err)
    return str(ack)


def answer(block: bytes, client_address: str) -> bytes:
    """One message's bytes -> its ACK's bytes (in the message's character set), after
    applying it. Synchronous (it uses the database): the listener runs it in a worker
    thread. Never raises."""
    text, charset = decode(block)
    return _answer(text, client_address).encode(charset, "replace")


def _answer(text: str, client_address: str) -> str:
    message: Any = None
    close_old_connections()
    try:
        message = adt.read(text)
        applied = adt.apply(adt.actions_of(message), client_address=client_address)
    except adt.AdtRefused as refused:
        logger.info("HL7 message from %s refused: %s", client_address, refused.message)
        return acknowledgement(message, refused)
    except DatabaseError as exc:
        logger.exception("HL7 message from %s could not be stored", client_address)
        return acknowledgement(
            message,
            adt.AdtRefused(
                f"Loupe could not store the message ({type(exc).__name__}); send it again later",
                code="hl7_not_stored",
                ack_code=adt.REJECT,
            ),
        )
    except Exception:  # the connection's boundary: a bug answers AR, never ends the listener
        logger.exception("HL7 message from %s: internal error", client_address)
        return acknowledgement(
            message,
            adt.AdtRefused(
                "internal error in Loupe; send it again later",
                code="hl7_internal_error",
                ack_code=adt.REJECT,
            ),
        )
    finally:
        close_old_connections()
    # Counts only: the identities are PHI and stay out of the log (the audit trail has them).
    logger.info("HL7 message from %s applied: %d action(s)", client_address, len(applied))
    return acknowledgement(message)


@dataclass
class Listener:
    """An MLLP listener on ``host``:``port`` (0: a free port, see :attr:`port`)."""

    host: str
    port: int
    max_message_bytes: int
    read_timeout: float
    _server: asyncio.Server | None = None
    _connections: set[asyncio.Task[None]] = field(default_factory=set)
    _reading: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        # The library's limit counts the block's start character <VT> with the message:
        # one more, so a message of exactly max_message_bytes is read.
        self._server = await start_hl7_server(
            self._connection, self.host, self.port, limit=self.max_message_bytes + 1
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Take no new connection; end those waiting for a message at once, and give
        those whose message is being applied time to send its ACK."""
        if self._server is not None:
            self._server.close()
        for task in list(self._reading):
            task.cancel()
        if self._connections:
            _, pending = await asyncio.wait(self._connections, timeout=_STOP_GRACE_SECONDS)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _connection(self, reader: HL7StreamReader, writer: HL7StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        peer = writer.get_extra_info("peername")
        client_address = str(peer[0]) if peer else ""
        try:
            await self._serve(reader, writer, task, client_address)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._connections.discard(task)
            self._reading.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _serve(
        self,
        reader: HL7StreamReader,
        writer: HL7StreamWriter,
        task: asyncio.Task[None],
        client_address: str,
    ) -> None:
        while True:
            self._reading.add(task)
            close_after = False
            try:
                block = await asyncio.wait_for(reader.readblock(), self.read_timeout)
            except (TimeoutError, asyncio.IncompleteReadError):
                return  # silent too long, or the peer closed (mid-message or not)
            except InvalidBlockError:
                ack = acknowledgement(
                    None,
                    adt.AdtRefused(
                        "not an MLLP block: it does not begin with the start block <VT> (0x0B)",
                        code="hl7_unreadable",
                        ack_code=adt.REJECT,
                        hl7_error=adt.SEGMENT_SEQUENCE_ERROR,
                    ),
                ).encode("ascii")
            except ValueError:  # the library's limit: no end of block within the bound
                ack = acknowledgement(
                    None,
                    adt.AdtRefused(
                        f"message larger than {self.max_message_bytes} bytes "
                        "(LOUPE_HL7_MAX_MESSAGE_KB); the connection is closed",
                        code="too_large",
                        ack_code=adt.REJECT,
                    ),
                ).encode("ascii")
                close_after = True
            else:
                self._reading.discard(task)
                ack = await sync_to_async(answer, thread_sensitive=True)(block, client_address)
            self._reading.discard(task)
            writer.writeblock(ack)
            await asyncio.wait_for(writer.drain(), self.read_timeout)
            if close_after:
                return
