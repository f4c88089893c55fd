"""HL7 v2 ADT link, unlink and merge messages -> typed actions on the identity cross-reference.

Loupe applies three ADT trigger events (HL7 v2.5 chapter 3), read with the ``hl7`` library:

- ``ADT^A24`` *link patient information*: two PID segments, one person -> :class:`Link`;
- ``ADT^A37`` *unlink patient information*: two PID segments, two people -> :class:`Unlink`;
- ``ADT^A40`` *merge patient - patient identifier list*: each PID (the surviving patient)
  followed by its MRG (MRG-1, the prior identifiers merged into it) -> :class:`Merge`.

An identity is (Patient ID, issuer) taken from a CX of PID-3 *Patient Identifier List* or
MRG-1 *Prior Patient Identifier List*: the ID is CX.1, the issuer CX.4 *Assigning
Authority*: its HD.1 *Namespace ID*, else its HD.2 *Universal ID*, else "" (none). Every
repetition of the field is an identity of that patient; a repetition without CX.1 is
refused. PID-2 and PID-4 (withdrawn in v2.5) and the name, PID-5, are never read: a name
never links anyone.

Which pairs a message names, for repetitions A1..An of the first list and B1..Bm of the
second (the two PIDs of A24/A37, the PID and its MRG of A40): every Ai with B1, and A1
with every other Bj. So every identity the message names ends up one person, with n+m-1
links; A37 removes exactly the pairs A24 of the same identifiers adds. A pair of an
identity with itself is skipped; a message left with no pair is refused.

What is refused, and the ACK code that says so (HL7 table 0008): AR for text that is not
an HL7 v2 message, a malformed MSH, another message type or trigger event, an empty
MSH-10; AE for an ADT message whose content is wrong (PID or MRG segments missing or in
the wrong number, an empty PID-3 or MRG-1, an identifier without ID, a link the
cross-reference refuses). ERR-3 carries the HL7 table 0357 code.

:func:`apply` makes the service calls, all of one message in one transaction: a message
is applied whole or not at all. It never deletes or rewrites a stored object.
"""

from __future__ import annotations

import logging
import string
from dataclasses import dataclass
from typing import Any

import hl7
import hl7.util
from django.db import transaction

from viewer.errors import ViewerError

Identity = tuple[str, str]  # (Patient ID, issuer); issuer "" = none

SUPPORTED_TRIGGERS = {
    "A24": "link patient information",
    "A37": "unlink patient information",
    "A40": "merge patient - patient identifier list",
}
# HL7 table 0008 (acknowledgment code) and table 0357 (message error condition codes).
ACCEPT, ERROR, REJECT = "AA", "AE", "AR"
SEGMENT_SEQUENCE_ERROR = "100"
REQUIRED_FIELD_MISSING = "101"
DATA_TYPE_ERROR = "102"
UNSUPPORTED_MESSAGE_TYPE = "200"
UNSUPPORTED_EVENT_CODE = "201"
APPLICATION_INTERNAL_ERROR = "207"

# The library logs the whole field (a patient identifier among them) when it meets an
# escape sequence it cannot read, under a logger named after its file; Loupe's refusals
# say what matters without the data.
logging.getLogger(hl7.util.__file__).setLevel(logging.CRITICAL)
logging.getLogger(hl7.containers.__file__).setLevel(logging.CRITICAL)

_HL7_NULL = '""'  # a field sent as explicitly null
_NOT_SEPARATORS = set(string.ascii_letters + string.digits + " \r\n")


class AdtRefused(ViewerError):
    """An HL7 v2 message Loupe does not apply, and why (the message names the field).

    ``ack_code`` is the answer for MSA-1: ``AR`` (reject: not a message Loupe takes, or a
    header fault) or ``AE`` (error in the message's content); ``hl7_error`` the HL7 table
    0357 code for ERR-3; ``location`` the (segment ID, its sequence among segments of
    that ID, field) for ERR-2 where one field is at fault.
    """

    status = 400
    code = "hl7_refused"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        ack_code: str = ERROR,
        hl7_error: str = APPLICATION_INTERNAL_ERROR,
        location: tuple[str, int, int] | None = None,
    ):
        super().__init__(message, code=code)
        self.ack_code = ack_code
        self.hl7_error = hl7_error
        self.location = location


@dataclass(frozen=True)
class Link:
    """ADT A24: ``a`` and ``b`` are identities of one person."""

    a: Identity
    b: Identity


@dataclass(frozen=True)
class Unlink:
    """ADT A37: ``a`` and ``b`` are not one person (the link of them is removed)."""

    a: Identity
    b: Identity


@dataclass(frozen=True)
class Merge:
    """ADT A40: ``merged`` (an MRG-1 identity) was merged into ``surviving`` (PID-3)."""

    surviving: Identity
    merged: Identity


Action = Link | Unlink | Merge


@dataclass(frozen=True)
class Header:
    """What the MSH says about a message: who sent it, its control ID and its type."""

    sending_application: str  # MSH-3 (HD.1, else HD.2)
    sending_facility: str  # MSH-4 (HD.1, else HD.2)
    receiving_application: str  # MSH-5 (HD.1, else HD.2)
    control_id: str  # MSH-10
    message_type: str  # MSH-9.1, e.g. ADT
    trigger: str  # MSH-9.2, e.g. A24

    @property
    def user_id(self) -> str:
        """Who linked, in the audit trail and on the link: ``hl7:<application>^<facility>``."""
        return f"hl7:{self.sending_application}^{self.sending_facility}"

    @property
    def label(self) -> str:
        kind = f"{self.message_type}^{self.trigger}".strip("^") or "(no MSH-9)"
        return f"{kind} {self.control_id or '(no MSH-10)'}"


@dataclass(frozen=True)
class AdtMessage:
    """A message Loupe applies: its header and its actions, in the message's order."""

    header: Header
    actions: tuple[Action, ...]


@dataclass(frozen=True)
class Applied:
    """One action as applied: ``changed`` is False where it changed nothing (already
    linked; an unlink of identities that were not linked)."""

    action: Action
    changed: bool


def format_identity(identity: Identity) -> str:
    """An identity as people read a CX: ``ID^^^issuer`` (``ID`` without an issuer)."""
    patient_id, issuer = identity
    return f"{patient_id}^^^{issuer}" if issuer else patient_id


def describe(action: Action) -> str:
    match action:
        case Link(a, b):
            return f"link {format_identity(a)} with {format_identity(b)}"
        case Unlink(a, b):
            return f"unlink {format_identity(a)} from {format_identity(b)}"
        case Merge(surviving, merged):
            return f"merge {format_identity(merged)} into {format_identity(surviving)}"


def describe_applied(applied: Applied) -> str:
    text = describe(applied.action)
    if applied.changed:
        return text
    if isinstance(applied.action, Unlink):
        return f"{text} (they were not linked)"
    return f"{text} (already linked)"


# --- reading -------------------------------------------------------------------------------


def read(text: str) -> Any:
    """ER7 text -> an ``hl7.Message`` with one MSH segment.

    Segments may end with CR (the standard), LF or CR LF; blank segments and whitespace
    around the message are ignored. Refused (AR) unless it begins with an MSH segment whose field separator and
    encoding characters (MSH-1, MSH-2) are usable, and holds only one MSH."""
    lines = text.replace("\r\n", "\r").replace("\n", "\r").split("\r")
    # Blank segments are dropped: the library cannot index a message that has one.
    normalised = "\r".join(line for line in lines if line.strip()).strip()
    if not normalised.startswith("MSH"):
        raise _reject("not an HL7 v2 message: it does not begin with an MSH segment")
    _check_separators(normalised)
    try:
        message = hl7.parse(normalised)
    except (hl7.HL7Exception, ValueError, IndexError, KeyError, TypeError, AssertionError) as exc:
        raise _reject(f"not an HL7 v2 message the hl7 library can read ({exc})") from None
    if sum(1 for segment in message if _segment_id(segment) == "MSH") != 1:
        raise _reject(
            "more than one MSH segment: send one message at a time",
            code="hl7_unreadable",
        )
    return message


def _check_separators(text: str) -> None:
    """MSH-1 (field separator) and MSH-2 (encoding characters: component, repetition,
    escape, subcomponent, and v2.7's truncation) must be distinct punctuation, as the
    parser relies on them."""
    field_separator = text[3:4]
    end = text.find(field_separator, 4) if field_separator else -1
    encoding = text[4:end] if end > 4 else ""
    characters = field_separator + encoding
    if (
        not field_separator
        or not 4 <= len(encoding) <= 5
        or len(set(characters)) != len(characters)
        or set(characters) & _NOT_SEPARATORS
    ):
        raise _reject(
            "MSH-1 and MSH-2 (the field separator and the encoding characters, e.g. |^~\\&) "
            "are missing or malformed"
        )


def _reject(message: str, *, code: str = "hl7_unreadable") -> AdtRefused:
    return AdtRefused(message, code=code, ack_code=REJECT, hl7_error=SEGMENT_SEQUENCE_ERROR)


def _segment_id(segment: Any) -> str:
    return str(segment[0]) if len(segment) else ""


def _value(segment: Any, field: int, repetition: int = 1, component: int = 1, sub: int = 1) -> str:
    """One value of a segment, unescaped and stripped; "" where the message has none
    (the library raises IndexError where a value is shallower than the path asked)."""
    try:
        value = segment.extract_field(1, field, repetition, component, sub)
    except IndexError:
        return ""
    text = str(value).strip()
    return "" if text == _HL7_NULL else text


def _hd(segment: Any, field: int) -> str:
    """An HD field (MSH-3, MSH-4) as one name: its namespace ID, else its universal ID."""
    return _value(segment, field, 1, 1) or _value(segment, field, 1, 2)


def header(message: Any) -> Header:
    """The header of a message :func:`read` accepted; values the MSH lacks are ""."""
    msh = message.segment("MSH")
    return Header(
        sending_application=_hd(msh, 3),
        sending_facility=_hd(msh, 4),
        receiving_application=_hd(msh, 5),
        control_id=_value(msh, 10),
        message_type=_value(msh, 9, 1, 1).upper(),
        trigger=_value(msh, 9, 1, 2).upper(),
    )


def actions_of(message: Any) -> AdtMessage:
    """The actions of an ADT A24, A37 or A40 message :func:`read` accepted; anything else
    is refused with an :class:`AdtRefused` that names the reason."""
    head = header(message)
    if head.message_type != "ADT" or head.trigger not in SUPPORTED_TRIGGERS:
        named = f"{head.message_type}^{head.trigger}".strip("^") or "a message without MSH-9"
        raise AdtRefused(
            f"{named} is not a message Loupe applies: it takes ADT^A24 (link), "
            "ADT^A37 (unlink) and ADT^A40 (merge)",
            code="hl7_unsupported_message",
            ack_code=REJECT,
            hl7_error=(
                UNSUPPORTED_MESSAGE_TYPE if head.message_type != "ADT" else UNSUPPORTED_EVENT_CODE
            ),
            location=("MSH", 1, 9),
        )
    if not head.control_id:
        raise AdtRefused(
            "MSH-10 (message control ID) is empty",
            code="hl7_missing_field",
            ack_code=REJECT,
            hl7_error=REQUIRED_FIELD_MISSING,
            location=("MSH", 1, 10),
        )
    if head.trigger == "A40":
        actions: list[Action] = [
            Merge(surviving, merged) for surviving, merged in _merge_pairs(message)
        ]
    else:
        pairs = _two_patients(message, head.trigger)
        actions = [Link(a, b) if head.trigger == "A24" else Unlink(a, b) for a, b in pairs]
    return AdtMessage(header=head, actions=tuple(actions))


def parse_adt(text: str) -> AdtMessage:
    """ER7 text -> the message's actions (:func:`read`, then :func:`actions_of`)."""
    return actions_of(read(text))


def _content_error(
    message: str, hl7_error: str, location: tuple[str, int, int] | None = None
) -> AdtRefused:
    code = "hl7_missing_field" if hl7_error == REQUIRED_FIELD_MISSING else "hl7_bad_structure"
    return AdtRefused(message, code=code, ack_code=ERROR, hl7_error=hl7_error, location=location)


def _identities(segment: Any, field: int, sequence: int, label: str) -> list[Identity]:
    """Every repetition of a CX field (PID-3, MRG-1) as an identity."""
    segment_id = _segment_id(segment)
    location = (segment_id, sequence, field)
    repetitions = len(segment(field)) if len(segment) > field else 0
    if not repetitions or not str(segment(field)).strip():
        raise _content_error(
            f"{label} is empty: no patient identifier", REQUIRED_FIELD_MISSING, location
        )
    found: list[Identity] = []
    for repetition in range(1, repetitions + 1):
        patient_id = _value(segment, field, repetition, 1)
        if not patient_id:
            raise _content_error(
                f"{label} repetition {repetition} has no ID (CX.1)",
                REQUIRED_FIELD_MISSING,
                location,
            )
        issuer = _value(segment, field, repetition, 4, 1) or _value(
            segment, field, repetition, 4, 2
        )
        if (patient_id, issuer) not in found:
            found.append((patient_id, issuer))
    return found


def _pairs(first: list[Identity], second: list[Identity]) -> list[tuple[Identity, Identity]]:
    """Every identity of ``first`` with the first of ``second``, and the first of
    ``first`` with every other of ``second``; no identity with itself, no pair twice."""
    candidates = [(a, second[0]) for a in first] + [(first[0], b) for b in second[1:]]
    pairs: list[tuple[Identity, Identity]] = []
    for a, b in candidates:
        if a != b and (a, b) not in pairs and (b, a) not in pairs:
            pairs.append((a, b))
    return pairs


def _two_patients(message: Any, trigger: str) -> list[tuple[Identity, Identity]]:
    pids = [segment for segment in message if _segment_id(segment) == "PID"]
    if len(pids) != 2:
        raise _content_error(
            f"ADT^{trigger} needs two PID segments (one for each patient); it has {len(pids)}",
            SEGMENT_SEQUENCE_ERROR,
        )
    first = _identities(pids[0], 3, 1, "PID-3 (patient identifier list) of the first PID")
    second = _identities(pids[1], 3, 2, "PID-3 (patient identifier list) of the second PID")
    pairs = _pairs(first, second)
    if not pairs:
        raise _content_error(
            f"the two PID segments of ADT^{trigger} name the same patient identity",
            DATA_TYPE_ERROR,
            ("PID", 2, 3),
        )
    return pairs


def _merge_pairs(message: Any) -> list[tuple[Identity, Identity]]:
    """Each PID of an A40 with the MRG that follows it (the PATIENT group: PID, PD1, MRG,
    PV1), as (surviving, merged) pairs."""
    groups: list[tuple[Any, list[Any]]] = []
    for segment in message:
        name = _segment_id(segment)
        if name == "PID":
            groups.append((segment, []))
        elif name == "MRG":
            if not groups:
                raise _content_error(
                    "an MRG segment comes before any PID segment: ADT^A40 sends each PID "
                    "(the surviving patient) before its MRG (the merged one)",
                    SEGMENT_SEQUENCE_ERROR,
                )
            groups[-1][1].append(segment)
    if not groups:
        raise _content_error(
            "ADT^A40 needs a PID segment (the surviving patient) and its MRG segment "
            "(the merged one); it has no PID",
            SEGMENT_SEQUENCE_ERROR,
        )
    pairs: list[tuple[Identity, Identity]] = []
    for number, (pid, mrgs) in enumerate(groups, start=1):
        if len(mrgs) != 1:
            raise _content_error(
                f"PID segment {number} of ADT^A40 is followed by {len(mrgs)} MRG segments; "
                "it needs one (MRG-1: the identifiers merged into it)",
                SEGMENT_SEQUENCE_ERROR,
            )
        surviving = _identities(pid, 3, number, f"PID-3 (patient identifier list) of PID {number}")
        merged = _identities(
            mrgs[0], 1, number, f"MRG-1 (prior patient identifier list) of MRG {number}"
        )
        group_pairs = _pairs(surviving, merged)
        if not group_pairs:
            raise _content_error(
                f"PID {number} and its MRG name the same patient identity: nothing to merge",
                DATA_TYPE_ERROR,
                ("MRG", number, 1),
            )
        pairs.extend(p for p in group_pairs if p not in pairs)
    return pairs


# --- applying ------------------------------------------------------------------------------


def apply(adt: AdtMessage, *, client_address: str = "") -> list[Applied]:
    """Make the identity service calls of ``adt``, in one transaction (all or none), as
    ``hl7:<application>^<facility>`` with the message control ID as reference.

    A link the cross-reference refuses (a ``ViewerError``: too long an ID, a backslash,
    a person grown too large) refuses the whole message as an AE :class:`AdtRefused`
    naming the action; database errors are left to the caller."""
    from viewer.models import PatientLink
    from viewer.services import identity

    head = adt.header
    source = PatientLink.Source.HL7.value
    done: list[Applied] = []
    with transaction.atomic():
        for action in adt.actions:
            try:
                match action:
                    case Link(a, b) | Merge(a, b):
                        _, changed = identity.link_or_existing(
                            a,
                            b,
                            kind=(
                                PatientLink.Kind.MERGE.value
                                if isinstance(action, Merge)
                                else PatientLink.Kind.LINK.value
                            ),
                            source=source,
                            user_id=head.user_id,
                            client_address=client_address,
                            reference=head.control_id,
                        )
                    case Unlink(a, b):
                        changed = identity.unlink(
                            a,
                            b,
                            source=source,
                            user_id=head.user_id,
                            client_address=client_address,
                            reference=head.control_id,
                        )
            except ViewerError as exc:
                raise AdtRefused(
                    f"{describe(action)}: {exc.message}",
                    code=exc.code,
                    ack_code=ERROR,
                    hl7_error=(
                        DATA_TYPE_ERROR
                        if exc.code == "bad_patient_link"
                        else APPLICATION_INTERNAL_ERROR
                    ),
                ) from None
            done.append(Applied(action, changed))
    return done
