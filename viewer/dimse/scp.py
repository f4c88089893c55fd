"""The C-STORE SCP behind ``manage.py storescp`` (pynetdicom).

* Storage Service Class (PS3.4 Annex B): every storage SOP class pynetdicom knows, each
  with every transfer syntax it knows (the compressed ones included: the object is
  stored as it was sent, never transcoded), and the Verification SOP class (C-ECHO,
  PS3.4 Annex A).
* Who may associate (PS3.8 §7.1.1.3): LOUPE_DIMSE_ALLOWED_CALLERS lists ``AET`` or
  ``AET@address`` entries; a caller matching none is rejected (rejected-permanent,
  service-user, "calling AE title not recognised"). Empty: any caller.
* Each C-STORE's data set is stored as received (the preamble and File Meta Information
  built from the presentation context, PS3.10 §7.1, then the bytes as they came off the
  wire) through ``viewer.services.ingest``: success (0x0000) for stored and for an
  identical re-send (the duplicate is stored), and for a refusal the status of
  ``viewer.dimse.statuses`` (0xA700, 0xA900, 0xC000, 0x0110, 0x0122; PS3.4 §B.2.3)
  with an Error Comment (0000,0902) naming the reason. Ingest stores an object whole
  or not at all.
* Audit (PS3.15 A.5.3.7): one Instances Transferred record per association (per patient),
  at its release or abort, the user being the calling AE title, the client address the
  peer's, the counts per status in its detail.

No patient data is logged: log lines name the peer's AE title and address and counts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connections
from django.http import HttpRequest
from pydicom.dataset import Dataset
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, _config, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from viewer.dimse import statuses
from viewer.services import audit, ingest

log = logging.getLogger(__name__)

# A-ASSOCIATE-RJ (PS3.8 §9.3.4): rejected-permanent, by the service user, calling AE
# title not recognised.
REJECTED_PERMANENT = 0x01
SERVICE_USER = 0x01
CALLING_AE_NOT_RECOGNISED = 0x03

ERROR_COMMENT_MAX = 64
MAX_PDU_BYTES = 1 << 20  # (0000,0902) Error Comment is an LO


@dataclass(frozen=True)
class Caller:
    """One LOUPE_DIMSE_ALLOWED_CALLERS entry: an AE title, optionally at one address."""

    ae_title: str
    address: str | None = None

    @classmethod
    def parse(cls, entry: str) -> Caller:
        title, at, address = entry.strip().partition("@")
        return cls(title.strip(), address.strip() if at else None)

    def matches(self, ae_title: str, address: str) -> bool:
        return self.ae_title == ae_title.strip() and self.address in (None, address)


def parse_callers(entries: Iterable[str]) -> tuple[Caller, ...]:
    return tuple(Caller.parse(e) for e in entries if e.strip())


def caller_allowed(allowed: tuple[Caller, ...], ae_title: str, address: str) -> bool:
    """Any caller when nothing is configured; else one matching an entry."""
    return not allowed or any(c.matches(ae_title, address) for c in allowed)


@dataclass
class _Association:
    ae_title: str
    address: str
    results: list[ingest.IngestResult] = field(default_factory=list)


class StoreSCP:
    """The SCP: ``start()`` listens in the background (tests, ``port=0`` for a free
    port), ``serve_forever()`` blocks (the command), ``stop()`` shuts it down."""

    def __init__(
        self,
        *,
        ae_title: str,
        host: str = "127.0.0.1",
        port: int = 0,
        allowed_callers: Iterable[str] = (),
    ):
        self.ae_title = ae_title
        self.host = host
        self.requested_port = port
        self.allowed = parse_callers(allowed_callers)
        self._associations: dict[int, _Association] = {}
        self._lock = threading.Lock()
        self._server: Any = None
        # pynetdicom's own event logging ("standard": a line per DIMSE message, and
        # handlers bound to every PDU) is off: this SCP logs one line per association.
        _config.LOG_HANDLER_LEVEL = "none"
        self.ae = AE(ae_title=ae_title)
        # The largest P-DATA PDU this SCP receives (PS3.8 §9.3.1, A-ASSOCIATE-RQ/AC user
        # information): pynetdicom's default of 16 KiB cuts a 512 KiB CT slice into 32
        # PDUs, each decoded in Python; 1 MiB takes it in one while still bounding what
        # one PDU may make it buffer (measured: 16 to 13 CPU ms per CT slice, storescu).
        self.ae.maximum_pdu_size = MAX_PDU_BYTES
        for context in AllStoragePresentationContexts:
            assert context.abstract_syntax is not None
            self.ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        self.ae.add_supported_context(Verification, ALL_TRANSFER_SYNTAXES)
        self.handlers: list[Any] = [
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_ACCEPTED, self._on_accepted),
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_RELEASED, self._on_end),
            (evt.EVT_ABORTED, self._on_end),
        ]

    @property
    def port(self) -> int:
        if self._server is None:
            return self.requested_port
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._server = self.ae.start_server(
            (self.host, self.requested_port), block=False, evt_handlers=self.handlers
        )

    def serve_forever(self) -> None:
        """Listen until ``stop()`` (from a signal handler) or KeyboardInterrupt."""
        self.start()
        assert self._server is not None
        self._server.serve_forever()  # returns once shutdown() is called

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    # Handlers, each run in the association's own thread.

    def _on_requested(self, event: Any) -> None:
        requestor = event.assoc.requestor
        # The A-ASSOCIATE-RQ's calling AE title (the requestor's own is set after this).
        title = str(requestor.primitive.calling_ae_title).strip()
        address = str(requestor.address)
        if caller_allowed(self.allowed, title, address):
            return
        log.warning(
            "DIMSE association from %s at %s rejected: not an allowed caller", title, address
        )
        event.assoc.acse.send_reject(REJECTED_PERMANENT, SERVICE_USER, CALLING_AE_NOT_RECOGNISED)
        event.assoc.kill()  # as pynetdicom's own rejections: the A-ASSOCIATE-RJ goes out first

    def _on_accepted(self, event: Any) -> None:
        requestor = event.assoc.requestor
        with self._lock:
            self._associations[id(event.assoc)] = _Association(
                str(requestor.ae_title).strip(), str(requestor.address)
            )

    def _on_echo(self, event: Any) -> int:
        return statuses.SUCCESS

    def _on_store(self, event: Any) -> Dataset | int:
        with self._lock:
            association = self._associations.get(id(event.assoc))
        source = f"C-STORE from {association.ae_title if association else '?'}"
        close_old_connections()
        try:
            data = event.encoded_dataset(include_meta=True)
        except Exception as exc:  # a data set pynetdicom cannot frame: nothing to store
            return _failure(statuses.CANNOT_UNDERSTAND, f"cannot_understand: {type(exc).__name__}")
        result = ingest.ingest_bytes(data, source=source)
        requested = str(getattr(event.request, "AffectedSOPInstanceUID", "") or "")
        if result.ok and requested and result.sop_instance_uid != requested:
            log.warning("C-STORE: the data set's SOP Instance UID differs from the request's")
        if association is not None:
            association.results.append(result)
        if result.ok:
            return statuses.SUCCESS
        return _failure(statuses.failure_status(result), f"{result.code}: {result.reason}")

    def _on_end(self, event: Any) -> None:
        with self._lock:
            association = self._associations.pop(id(event.assoc), None)
        try:
            if association is not None and association.results:
                record(association)
        finally:
            connections.close_all()  # this thread's database connection ends with it


def _failure(status: int, comment: str) -> Dataset:
    answer = Dataset()
    answer.Status = status
    answer.ErrorComment = comment.encode("ascii", "replace").decode()[:ERROR_COMMENT_MAX]
    return answer


def record(association: _Association) -> None:
    """The association's audit record: the calling AE title as the user, the peer's
    address, its objects' counts per status (``audit.record_transfer``)."""
    request = HttpRequest()
    request.META["REMOTE_ADDR"] = association.address
    counts = ingest.summarize(association.results)
    try:
        audit.record_transfer(request, association.results, user=association.ae_title)
    except Exception:
        log.exception("DIMSE: the audit record of an association could not be written")
        raise
    log.info(
        "DIMSE association from %s at %s: %s",
        association.ae_title,
        association.address,
        ", ".join(f"{n} {status}" for status, n in counts.items() if n),
    )


def from_settings(
    *, port: int | None = None, ae_title: str | None = None, host: str = "127.0.0.1"
) -> StoreSCP:
    """The SCP as configured (LOUPE_DIMSE_*), with the command's overrides."""
    return StoreSCP(
        ae_title=ae_title or settings.LOUPE_DIMSE_AE_TITLE,
        host=host,
        port=settings.LOUPE_DIMSE_PORT if port is None else port,
        allowed_callers=settings.LOUPE_DIMSE_ALLOWED_CALLERS,
    )
