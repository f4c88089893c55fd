"""viewer/hl7/mllp.py: the listener ``manage.py hl7_listener`` runs, on a real TCP socket of
127.0.0.1, with a test client that sends MLLP-framed messages (<VT> message <FS><CR>) as
an interface engine does and reads the ACKs.

The listener runs in a thread of its own (its event loop there; the database work in
asgiref's worker thread), hence the transactional tests: another thread writes the rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import queue
import re
import signal
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import hl7
import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.db import connections
from django.test import Client

from tests.viewer.hl7.messages import a24, a37, adt, pid
from tests.viewer.hl7.studies import store_two_identities, stored_objects
from viewer.hl7.mllp import Listener
from viewer.models import AuditEvent, PatientLink, Study
from viewer.services import priors

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 10.0  # seconds: the bound on every wait here, so that nothing can hang
START_BLOCK, END_BLOCK = b"\x0b", b"\x1c\x0d"
PATIENT_RECORD = AuditEvent.EventId.PATIENT_RECORD.value
LINK = ("MRN-7^^^NORTH", "PLASTIC")  # PID-3 of the two PIDs: MRN-7 of NORTH, PLASTIC


# --- the listener, and a client ------------------------------------------------------------


async def _stop(listener: Listener) -> None:
    await listener.stop()
    # The worker thread's database connection, so the test database is left unused.
    await sync_to_async(connections.close_all, thread_sensitive=True)()


@contextlib.contextmanager
def serving(*, max_message_bytes: int, read_timeout: float) -> Iterator[Listener]:
    """A :class:`Listener` on a free port of 127.0.0.1, its event loop in a thread; stopped
    (:meth:`Listener.stop`, what SIGTERM does to the command) on leaving."""
    listener = Listener(
        host="127.0.0.1", port=0, max_message_bytes=max_message_bytes, read_timeout=read_timeout
    )
    loop = asyncio.new_event_loop()
    started = threading.Event()
    failed: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(listener.start())
        except BaseException as exc:  # reported to the test below
            failed.append(exc)
        started.set()
        if not failed:
            loop.run_forever()
        loop.close()

    thread = threading.Thread(target=run, name="hl7-listener", daemon=True)
    thread.start()
    assert started.wait(TIMEOUT), "the listener did not start"
    if failed:
        raise failed[0]
    try:
        yield listener
    finally:
        asyncio.run_coroutine_threadsafe(_stop(listener), loop).result(TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "the listener did not stop"


@pytest.fixture
def listener(settings: Any) -> Iterator[Listener]:
    """The listener as ``hl7_listener`` makes it: the settings' limit and read timeout."""
    with serving(
        max_message_bytes=settings.LOUPE_HL7_MAX_MESSAGE_BYTES,
        read_timeout=settings.LOUPE_HL7_READ_TIMEOUT_SECONDS,
    ) as running:
        yield running


@dataclass(frozen=True)
class Ack:
    """An ACK as the sender reads it (values unescaped by the ``hl7`` library)."""

    message: Any  # hl7.Message

    def __getitem__(self, key: str) -> str:
        return str(self.message[key])

    @property
    def code(self) -> str:
        return self["MSA.F1"]  # MSA-1 acknowledgment code: AA, AE, AR

    @property
    def control_id(self) -> str:
        return self["MSA.F2"]  # MSA-2: the MSH-10 of the message acknowledged

    @property
    def reason(self) -> str:
        return self["MSA.F3"]


class Engine:
    """A test client: an interface engine's TCP connection to the listener."""

    def __init__(self, port: int) -> None:
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self._received = b""

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.socket.close()

    def send(self, message: str | bytes, *, framed: bool = True) -> None:
        data = message.encode() if isinstance(message, str) else message
        self.socket.sendall(START_BLOCK + data + END_BLOCK if framed else data)

    def ack(self) -> Ack:
        """The next ACK: one MLLP block, which must be an HL7 message."""
        while END_BLOCK not in self._received:
            chunk = self.socket.recv(65536)
            assert chunk, f"the connection closed before an ACK; received {self._received!r}"
            self._received += chunk
        block, _, self._received = self._received.partition(END_BLOCK)
        assert block.startswith(START_BLOCK), block
        return Ack(hl7.parse(block[1:].decode("ascii")))

    def exchange(self, message: str | bytes) -> Ack:
        self.send(message)
        return self.ack()

    def closed_by_listener(self) -> bool:
        """Whether the listener closes the connection (end of stream, or a reset) with
        nothing more sent; a timeout fails the test."""
        try:
            return self.socket.recv(65536) == b""
        except ConnectionResetError:
            return True


def padded(message: str, size: int) -> str:
    """``message`` (one that ends with its last PID) with an NTE segment before its last
    PID, long enough to make it ``size`` bytes of UTF-8."""
    *head, last, end = message.split("\r")
    note = "NTE|1||"
    missing = size - len(message.encode()) - len(note) - 1
    assert missing >= 0
    return "\r".join([*head, note + "x" * missing, last, end])


def prior_uids(client: Client, study: Study) -> list[tuple[str, bool]]:
    """The priors of ``study`` through the API: (Study Instance UID, linked) of each."""
    response = client.get(f"/api/studies/{study.study_instance_uid}/priors")
    assert response.status_code == 200, response.content
    return [(p["study_instance_uid"], p["linked"]) for p in response.json()]


def patient_records(action: str) -> set[tuple[str, str, str, str, str, str]]:
    return {
        (
            row.patient_id,
            row.issuer_of_patient_id,
            row.user_id,
            row.client_address,
            row.detail["reference"],
            row.detail["other_patient"],
        )
        for row in AuditEvent.objects.filter(event_id=PATIENT_RECORD, action=action)
    }


# --- link and unlink -----------------------------------------------------------------------


def test_an_a24_over_mllp_makes_the_linked_study_a_prior_until_an_a37_unlinks_it(
    listener: Listener, shared_dicom: Path, logged_in_client: Client
) -> None:
    studies = store_two_identities(shared_dicom)
    before = stored_objects()
    assert prior_uids(logged_in_client, studies.current) == []

    with Engine(listener.port) as engine:
        ack = engine.exchange(a24(*LINK, control="ADT-A24-0001"))
    assert (ack.code, ack.control_id) == ("AA", "ADT-A24-0001")
    assert (ack["MSH.F9.R1.C1"], ack["MSH.F9.R1.C2"]) == ("ACK", "A24")
    assert (ack["MSH.F5"], ack["MSH.F6"]) == ("EPIC", "NORTH")  # back to the sender

    other = studies.other.study_instance_uid
    assert prior_uids(logged_in_client, studies.current) == [(other, True)]
    current = Study.objects.get(pk=studies.current.pk)
    found = priors.priors_of(current, Study.objects.all())
    assert [(p.study.study_instance_uid, p.linked) for p in found] == [(other, True)]
    assert stored_objects() == before  # a link moves, rewrites and deletes nothing

    link = PatientLink.objects.get()
    assert (link.source, link.kind, link.created_by, link.reference) == (
        "hl7",
        "link",
        "hl7:EPIC^NORTH",
        "ADT-A24-0001",
    )
    # A.5.3.9 Patient Record, one row for each patient, naming the sender and its message.
    assert patient_records("C") == {
        ("MRN-7", "NORTH", "hl7:EPIC^NORTH", "127.0.0.1", "ADT-A24-0001", "PLASTIC"),
        ("PLASTIC", "", "hl7:EPIC^NORTH", "127.0.0.1", "ADT-A24-0001", "MRN-7^^^NORTH"),
    }

    with Engine(listener.port) as engine:
        ack = engine.exchange(a37(*LINK, control="ADT-A37-0002"))
    assert (ack.code, ack.control_id) == ("AA", "ADT-A37-0002")
    assert prior_uids(logged_in_client, studies.current) == []
    assert priors.priors_of(Study.objects.get(pk=studies.current.pk), Study.objects.all()) == []
    assert not PatientLink.objects.exists()
    assert stored_objects() == before
    assert {(r[0], r[2], r[4]) for r in patient_records("D")} == {
        ("MRN-7", "hl7:EPIC^NORTH", "ADT-A37-0002"),
        ("PLASTIC", "hl7:EPIC^NORTH", "ADT-A37-0002"),
    }


def test_messages_on_one_connection_are_answered_in_order(listener: Listener) -> None:
    """An engine may keep its connection and send the next message at once: each gets its
    own ACK, in order, each applied before the next is read."""
    with Engine(listener.port) as engine:
        engine.send(a24(*LINK, control="ONE"))
        engine.send(a24(*LINK, control="TWO"))  # already linked: still AA
        engine.send(a37(*LINK, control="THREE"))
        acks = [engine.ack() for _ in range(3)]
    assert [(a.code, a.control_id) for a in acks] == [("AA", "ONE"), ("AA", "TWO"), ("AA", "THREE")]
    assert not PatientLink.objects.exists()
    # The second link changed nothing, so recorded nothing: linked once, unlinked once.
    records = AuditEvent.objects.filter(event_id=PATIENT_RECORD).order_by("recorded_at")
    assert [(r.action, r.detail["reference"]) for r in records] == [
        ("C", "ONE"),
        ("C", "ONE"),
        ("D", "THREE"),
        ("D", "THREE"),
    ]


# --- refusals ------------------------------------------------------------------------------

ORU = (
    "MSH|^~\\&|EPIC|NORTH|LOUPE|RADIOLOGY|20250301120000||ORU^R01^ORU_R01|BAD-4|P|2.5\r"
    "PID|1||PLASTIC\r"
)


@pytest.mark.parametrize(
    ("block", "ack_code", "control_id", "reason"),
    [
        pytest.param(
            START_BLOCK + adt("A24", pid("PLASTIC"), control="BAD-1").encode() + END_BLOCK,
            "AE",
            "BAD-1",
            "ADT^A24 needs two PID segments (one for each patient); it has 1",
            id="one-pid",
        ),
        pytest.param(
            START_BLOCK + adt("A24", pid(""), pid(LINK[0]), control="BAD-2").encode() + END_BLOCK,
            "AE",
            "BAD-2",
            "PID-3 (patient identifier list) of the first PID is empty",
            id="empty-pid-3",
        ),
        pytest.param(
            START_BLOCK + b"hello, is this the lab?" + END_BLOCK,
            "AR",
            "",
            "not an HL7 v2 message: it does not begin with an MSH segment",
            id="not-hl7",
        ),
        pytest.param(
            START_BLOCK + ORU.encode() + END_BLOCK,
            "AR",
            "BAD-4",
            "ORU^R01 is not a message Loupe applies",
            id="another-message-type",
        ),
        pytest.param(
            START_BLOCK + a24(*LINK, control="").encode() + END_BLOCK,
            "AR",
            "",
            "MSH-10 (message control ID) is empty",
            id="no-control-id",
        ),
        pytest.param(
            a24(*LINK, control="BAD-6").encode() + END_BLOCK,
            "AR",
            "",
            "not an MLLP block: it does not begin with the start block <VT> (0x0B)",
            id="no-start-block",
        ),
        pytest.param(
            START_BLOCK + b"\xff\xfe\x00\x01 binary" + END_BLOCK,
            "AR",
            "",
            "not an HL7 v2 message",
            id="binary",
        ),
    ],
)
def test_a_malformed_message_is_refused_with_the_reason_and_the_listener_serves_on(
    listener: Listener, block: bytes, ack_code: str, control_id: str, reason: str
) -> None:
    with Engine(listener.port) as engine:
        engine.send(block, framed=False)
        refused = engine.ack()
        # The connection stays open: the engine may send the next message on it.
        then = engine.exchange(a24(*LINK, control="NEXT-1"))
    assert (refused.code, refused.control_id) == (ack_code, control_id)
    assert reason in refused.reason
    assert reason in refused["ERR.F8"]  # ERR-8 user message
    assert refused["ERR.F3.R1.C3"] == "HL70357" and refused["ERR.F4"] == "E"
    assert (then.code, then.control_id) == ("AA", "NEXT-1")

    with Engine(listener.port) as engine:  # and the next connection is served
        again = engine.exchange(a24("X-1^^^SOUTH", "X-2^^^SOUTH", control="NEXT-2"))
    assert (again.code, again.control_id) == ("AA", "NEXT-2")
    # Only the good messages linked anyone, and only they are in the audit trail.
    assert sorted(PatientLink.objects.values_list("reference", flat=True)) == ["NEXT-1", "NEXT-2"]
    audited = {r.detail["reference"] for r in AuditEvent.objects.filter(event_id=PATIENT_RECORD)}
    assert audited == {"NEXT-1", "NEXT-2"}


def test_an_ae_names_the_segment_and_field_at_fault(listener: Listener) -> None:
    with Engine(listener.port) as engine:
        ack = engine.exchange(adt("A24", pid(LINK[0]), pid("^^^NORTH"), control="BAD-7"))
    assert (ack.code, ack.control_id) == ("AE", "BAD-7")
    assert (
        ack.reason
        == "PID-3 (patient identifier list) of the second PID repetition 1 has no ID (CX.1)"
    )
    assert (ack["ERR.F2.R1.C1"], ack["ERR.F2.R1.C2"], ack["ERR.F2.R1.C3"]) == ("PID", "2", "3")
    assert ack["ERR.F3.R1.C1"] == "101"  # table 0357: required field missing
    assert not PatientLink.objects.exists()


def test_a_message_of_the_largest_size_is_read(listener: Listener, settings: Any) -> None:
    limit = settings.LOUPE_HL7_MAX_MESSAGE_BYTES  # LOUPE_HL7_MAX_MESSAGE_KB * 1024
    message = padded(a24(*LINK, control="BIG-1"), limit)
    assert len(message.encode()) == limit
    with Engine(listener.port) as engine:
        ack = engine.exchange(message)
    assert (ack.code, ack.control_id) == ("AA", "BIG-1")
    assert PatientLink.objects.get().reference == "BIG-1"


@pytest.mark.parametrize("over", [1, 3 * 1024 * 1024], ids=["a-byte-over", "3-MiB-over"])
def test_a_message_over_the_limit_is_refused_and_its_connection_closed(
    listener: Listener, settings: Any, over: int
) -> None:
    limit = settings.LOUPE_HL7_MAX_MESSAGE_BYTES
    with Engine(listener.port) as engine:
        try:
            engine.send(padded(a24(*LINK, control="BIG-2"), limit + over))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the listener stopped reading: it has answered and closed
        ack = engine.ack()
        assert engine.closed_by_listener()  # the rest cannot be told from the next message
    assert ack.code == "AR"
    assert ack.reason == (
        f"message larger than {limit} bytes (LOUPE_HL7_MAX_MESSAGE_KB); the connection is closed"
    )
    assert not PatientLink.objects.exists()

    with Engine(listener.port) as engine:  # the listener serves the next connection
        assert engine.exchange(a24(*LINK, control="SMALL")).code == "AA"


def test_a_connection_silent_for_the_read_timeout_is_closed_without_an_ack() -> None:
    with serving(max_message_bytes=4096, read_timeout=0.2) as listener:
        with Engine(listener.port) as engine:
            engine.send(START_BLOCK + a24(*LINK).encode(), framed=False)  # no end block
            assert engine.closed_by_listener()
        assert not PatientLink.objects.exists()


# --- the management command ----------------------------------------------------------------


class Printed(io.StringIO):
    """The command's stdout, whose lines another thread can wait for."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: queue.Queue[str] = queue.Queue()

    def write(self, text: str) -> int:
        for line in text.splitlines():
            self.lines.put(line)
        return super().write(text)


def test_manage_py_hl7_listener_answers_on_the_port_it_prints_and_stops_on_sigterm() -> None:
    """The command itself, in this (the main) thread, as it installs signal handlers; the
    engine in another thread, which sends SIGTERM when done. An idle connection is closed
    at once on SIGTERM; the command returns."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:  # pragma: no cover - depends on which tests ran before in this process
        pytest.skip("an event loop (Playwright's sync API) runs in this main thread already")
    printed = Printed()
    seen: dict[str, Any] = {}

    def engine() -> None:
        try:
            first = printed.lines.get(timeout=TIMEOUT)
        except queue.Empty:
            seen["error"] = AssertionError("hl7_listener printed nothing")
            return  # it did not start: it raised, and call_command returns
        try:
            where = re.fullmatch(r"HL7 listener \(MLLP\) on 127\.0\.0\.1:(\d+)", first)
            assert where is not None, first
            with Engine(int(where[1])) as idle, Engine(int(where[1])) as sender:
                seen["ack"] = sender.exchange(a24(*LINK, control="CMD-1"))
                os.kill(os.getpid(), signal.SIGTERM)
                seen["idle closed"] = idle.closed_by_listener()
        except BaseException as exc:
            seen["error"] = exc
        finally:
            if "ack" not in seen:  # the listener runs (it printed): stop it all the same
                os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=engine, name="hl7-engine", daemon=True)
    thread.start()
    try:
        call_command("hl7_listener", "--host", "127.0.0.1", "--port", "0", stdout=printed)
    finally:
        thread.join(TIMEOUT)
        asyncio.run(sync_to_async(connections.close_all, thread_sensitive=True)())
    if "error" in seen:
        raise seen["error"]
    assert (seen["ack"].code, seen["ack"].control_id) == ("AA", "CMD-1")
    assert seen["idle closed"]
    assert printed.getvalue().splitlines()[1:] == ["HL7 listener stopping", "HL7 listener stopped"]
    assert PatientLink.objects.get().reference == "CMD-1"
