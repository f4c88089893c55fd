"""IHE Invoke Image Display (RAD-106): ``requestType=STUDY|PATIENT`` and its parameters,
parsed strictly (:func:`parse_iid`), and the HL7 v2 CX patient identifiers it and the
signed launch carry (:func:`parse_cx`).

An IID request only says *what to show*; it grants nothing, so the session's own role
and scope still decide what is visible. Every bad value is refused with a
:class:`~ehrlaunch.errors.LaunchRefused` naming the parameter.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ehrlaunch.errors import LaunchRefused
from viewer.dicom.patients import PatientRef
from viewer.dicom.uids import is_valid_uid


def parse_cx(value: str, *, parameter: str = "patientID") -> PatientRef:
    """Parse HL7 v2 CX (``123^^^&1.2.3&ISO`` or ``123^^^HOSP``) into a :class:`PatientRef`."""
    text = value.strip()
    if not text:
        raise LaunchRefused(f"{parameter} is empty", code="bad_patient_id")
    if len(text) > 512 or any(ord(c) < 32 for c in text):
        raise LaunchRefused(f"{parameter} is not an HL7 CX identifier", code="bad_patient_id")
    components = text.split("^")
    patient_id = components[0].replace("\\S\\", "^").replace("\\T\\", "&").strip()
    if not patient_id or len(patient_id) > 64:
        raise LaunchRefused(
            f"{parameter} has no usable ID (1-64 characters)", code="bad_patient_id"
        )
    issuers: list[str] = []
    if len(components) > 3 and components[3]:
        hd = components[3].split("&")
        for part in hd[:2]:
            if part.strip() and part.strip() not in issuers:
                issuers.append(part.strip()[:64])
    return PatientRef(patient_id, issuers[0] if issuers else "", tuple(issuers[1:]))


def _uid_list(value: str, parameter: str) -> tuple[str, ...]:
    uids = tuple(u.strip() for u in value.split(",") if u.strip())
    if not uids:
        raise LaunchRefused(f"{parameter} is empty", code="bad_parameter")
    for uid in uids:
        if not is_valid_uid(uid):
            raise LaunchRefused(f"{parameter} holds an invalid UID", code="bad_parameter")
    return uids


def _bool(value: str, parameter: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise LaunchRefused(f"{parameter} must be true or false", code="bad_parameter")


def _datetime(value: str, parameter: str) -> dt.datetime:
    """XML Schema dateTime (``2026-01-31T12:00:00Z``, offset optional) or a plain date."""
    text = value.strip()
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise LaunchRefused(
            f"{parameter} is not a dateTime (use YYYY-MM-DDThh:mm:ssZ)", code="bad_parameter"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class IidRequest:
    """An IHE RAD-106 Invoke Image Display request (IID Supplement, Table 4.106.4.1.2-1)."""

    request_type: str
    study_uids: tuple[str, ...] = ()
    accession_numbers: tuple[str, ...] = ()
    patient: PatientRef | None = None
    patient_name: str = ""
    patient_birth_date: dt.date | None = None
    lower_datetime: dt.datetime | None = None
    upper_datetime: dt.datetime | None = None
    most_recent_results: int | None = None
    modalities: tuple[str, ...] = ()
    viewer_type: str = ""
    diagnostic_quality: bool = False
    key_images_only: bool = False


IID_PARAMETERS = {
    "requestType",
    "studyUID",
    "accessionNumber",
    "patientID",
    "patientName",
    "patientBirthDate",
    "lowerDateTime",
    "upperDateTime",
    "mostRecentResults",
    "modalitiesInStudy",
    "viewerType",
    "diagnosticQuality",
    "keyImagesOnly",
}


def parse_iid(params: Mapping[str, str]) -> IidRequest:
    """Validate an IID query; every bad value is refused with a message naming it."""
    unknown = sorted(set(params) - IID_PARAMETERS)
    if unknown:
        raise LaunchRefused(
            f"unknown parameter {unknown[0]!r} (IHE RAD-106 names are case-sensitive)",
            code="bad_parameter",
        )
    for name, given in params.items():
        if "\x00" in given:
            # PostgreSQL text cannot hold NUL: the parameter could only fail the lookup.
            raise LaunchRefused(f"{name} holds a NUL character", code="bad_parameter")
    request_type = params.get("requestType", "")
    options: dict[str, Any] = {}
    if "viewerType" in params:
        viewer_type = params["viewerType"].strip()
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", viewer_type):
            raise LaunchRefused("viewerType is not a viewer type name", code="bad_parameter")
        options["viewer_type"] = viewer_type
    for name, key in (
        ("diagnosticQuality", "diagnostic_quality"),
        ("keyImagesOnly", "key_images_only"),
    ):
        if name in params:
            options[key] = _bool(params[name], name)
    if request_type == "STUDY":
        if "patientID" in params or "mostRecentResults" in params:
            raise LaunchRefused(
                "requestType=STUDY takes studyUID or accessionNumber, not patient parameters",
                code="bad_parameter",
            )
        has_uid, has_accession = "studyUID" in params, "accessionNumber" in params
        if has_uid == has_accession:
            raise LaunchRefused(
                "requestType=STUDY needs exactly one of studyUID or accessionNumber",
                code="bad_parameter",
            )
        if has_uid:
            return IidRequest(
                "STUDY", study_uids=_uid_list(params["studyUID"], "studyUID"), **options
            )
        accessions = tuple(a.strip() for a in params["accessionNumber"].split(",") if a.strip())
        if not accessions or any(len(a) > 16 or "\\" in a for a in accessions):
            raise LaunchRefused(
                "accessionNumber must be a list of 1-16 character values", code="bad_parameter"
            )
        return IidRequest("STUDY", accession_numbers=accessions, **options)
    if request_type == "PATIENT":
        if "studyUID" in params or "accessionNumber" in params:
            raise LaunchRefused(
                "requestType=PATIENT takes patientID, not studyUID or accessionNumber",
                code="bad_parameter",
            )
        if "patientID" not in params:
            raise LaunchRefused("requestType=PATIENT needs patientID", code="bad_parameter")
        patient = parse_cx(params["patientID"])
        fields: dict[str, Any] = {}
        if "patientName" in params:
            fields["patient_name"] = params["patientName"].strip()[: 64 * 5]
        if "patientBirthDate" in params:
            raw = params["patientBirthDate"].strip()
            try:
                fields["patient_birth_date"] = dt.date.fromisoformat(
                    f"{raw[:4]}-{raw[4:6]}-{raw[6:8]}" if re.fullmatch(r"\d{8}", raw) else raw
                )
            except ValueError:
                raise LaunchRefused(
                    "patientBirthDate is not a date (YYYYMMDD)", code="bad_parameter"
                ) from None
        for name, key in (("lowerDateTime", "lower_datetime"), ("upperDateTime", "upper_datetime")):
            if name in params:
                fields[key] = _datetime(params[name], name)
        if fields.get("lower_datetime") and fields.get("upper_datetime"):
            if fields["lower_datetime"] > fields["upper_datetime"]:
                raise LaunchRefused("lowerDateTime is after upperDateTime", code="bad_parameter")
        if "mostRecentResults" in params:
            raw = params["mostRecentResults"].strip()
            # ASCII digits only: str.isdigit() also takes '²', which int() refuses.
            if not re.fullmatch(r"[0-9]{1,4}", raw) or not 1 <= int(raw) <= 1000:
                raise LaunchRefused(
                    "mostRecentResults must be a whole number from 1 to 1000", code="bad_parameter"
                )
            fields["most_recent_results"] = int(raw)
        if "modalitiesInStudy" in params:
            modalities = tuple(
                m.strip().upper() for m in params["modalitiesInStudy"].split(",") if m.strip()
            )
            if not modalities or not all(re.fullmatch(r"[A-Z0-9_ ]{1,16}", m) for m in modalities):
                raise LaunchRefused(
                    "modalitiesInStudy must be a list of modality codes (CT,MR)",
                    code="bad_parameter",
                )
            fields["modalities"] = modalities
        return IidRequest("PATIENT", patient=patient, **fields, **options)
    raise LaunchRefused(
        "requestType must be STUDY or PATIENT" if request_type else "requestType is missing",
        code="bad_parameter",
    )
