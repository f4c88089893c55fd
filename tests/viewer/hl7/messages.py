"""HL7 v2 ADT messages as an interface engine sends them, for the HL7 tests (ER7 text,
segments ended by CR)."""

from __future__ import annotations

MSH = "MSH|^~\\&|{app}|{facility}|LOUPE|RADIOLOGY|20250301120000||ADT^{trigger}^{structure}|{control}|P|2.5"
EVN = "EVN|{trigger}|20250301120000"


def adt(
    trigger: str,
    *segments: str,
    control: str = "MSG0001",
    app: str = "EPIC",
    facility: str = "NORTH",
) -> str:
    """An ADT message of ``trigger`` with ``segments`` after its MSH and EVN."""
    structure = {"A24": "ADT_A24", "A37": "ADT_A37", "A40": "ADT_A39"}.get(trigger, "ADT_A01")
    head = MSH.format(
        app=app, facility=facility, trigger=trigger, structure=structure, control=control
    )
    return "\r".join([head, EVN.format(trigger=trigger), *segments]) + "\r"


def pid(identifiers: str, name: str = "DOE^JANE") -> str:
    """A PID segment with PID-3 ``identifiers`` (CX repetitions) and PID-5 ``name``."""
    return f"PID|1||{identifiers}||{name}||19700101|F"


def mrg(identifiers: str) -> str:
    return f"MRG|{identifiers}"


def a24(first: str, second: str, **kwargs: str) -> str:
    """Link the patient of PID-3 ``first`` with that of ``second``."""
    return adt("A24", pid(first), "PV1|1|N", pid(second, name="DOE^J"), **kwargs)


def a37(first: str, second: str, **kwargs: str) -> str:
    return adt("A37", pid(first), pid(second), **kwargs)


def a40(surviving: str, merged: str, **kwargs: str) -> str:
    """Merge the patient of MRG-1 ``merged`` into the one of PID-3 ``surviving``."""
    return adt("A40", pid(surviving), "PD1|||", mrg(merged), "PV1|1|N", **kwargs)
