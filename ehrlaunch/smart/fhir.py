"""FHIR R4 -> DICOM for the SMART launch: the patient and the studies a launch names.

The patient is the FHIR Patient's identifier: an identifier whose system is listed in
``EhrSystem.patient_identifier_systems`` maps to that DICOM (0010,0021) Issuer of Patient
ID, else ``urn:oid:X`` maps to issuer X; one typed MR (medical record number) is
preferred. The study is the ImagingStudy's ``identifier`` with system ``urn:dicom:uid``
(value ``urn:oid:<Study Instance UID>``, FHIR R4 ImagingStudy).
"""

from __future__ import annotations

import re
from typing import Any

from ehrlaunch.errors import LaunchRefused
from ehrlaunch.models import EhrSystem
from ehrlaunch.smart.client import ASK_ADMIN
from viewer.dicom.patients import PatientRef
from viewer.dicom.uids import is_valid_uid

FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def imaging_study_ids(fhir_context: Any, ehr: EhrSystem) -> list[str]:
    """ImagingStudy IDs from the token's ``fhirContext`` (``[{"reference": "ImagingStudy/1"}]``)."""
    if fhir_context is None:
        return []
    if not isinstance(fhir_context, list):
        raise LaunchRefused("the launch's fhirContext is not a list", code="smart_bad_context")
    found: list[str] = []
    for item in fhir_context[:20]:
        reference = item.get("reference") if isinstance(item, dict) else None
        if not isinstance(reference, str):
            continue
        if reference.startswith(f"{ehr.fhir_base_url}/"):
            reference = reference[len(ehr.fhir_base_url) + 1 :]
        resource_type, _, resource_id = reference.partition("/")
        if resource_type != "ImagingStudy":
            continue
        if not FHIR_ID.fullmatch(resource_id):
            raise LaunchRefused(
                "the launch's fhirContext names a malformed ImagingStudy", code="smart_bad_context"
            )
        if resource_id not in found:
            found.append(resource_id)
    return found


def study_uid_from_fhir(study: dict[str, Any]) -> str:
    """(0020,000D) Study Instance UID from ImagingStudy.identifier (system urn:dicom:uid)."""
    for identifier in study.get("identifier") or []:
        if not isinstance(identifier, dict) or identifier.get("system") != "urn:dicom:uid":
            continue
        value = str(identifier.get("value", "")).strip()
        uid = value[len("urn:oid:") :] if value.startswith("urn:oid:") else value
        if is_valid_uid(uid):
            return uid
    raise LaunchRefused(
        "the launch's ImagingStudy has no Study Instance UID (identifier system urn:dicom:uid)",
        code="smart_no_study_uid",
    )


def _is_mrn(identifier: dict[str, Any]) -> bool:
    coding = (identifier.get("type") or {}).get("coding") or []
    return any(isinstance(c, dict) and c.get("code") == "MR" for c in coding)


def patient_ref_from_fhir(patient: dict[str, Any], ehr: EhrSystem) -> PatientRef:
    """Patient ID and Issuer of Patient ID (DICOM PS3.3 C.7.1.1) from Patient.identifier."""
    systems: dict[str, str] = ehr.patient_identifier_systems or {}
    candidates: list[tuple[bool, str, str]] = []
    for identifier in patient.get("identifier") or []:
        if not isinstance(identifier, dict):
            continue
        value = identifier.get("value")
        system = identifier.get("system")
        if not isinstance(value, str) or not 0 < len(value.strip()) <= 64:
            continue
        if not isinstance(system, str):
            continue
        if system in systems:
            issuer = systems[system]
        elif system.startswith("urn:oid:") and is_valid_uid(system[len("urn:oid:") :]):
            issuer = system[len("urn:oid:") :]
        else:
            continue
        candidates.append((_is_mrn(identifier), value.strip(), issuer))
    if not candidates:
        raise LaunchRefused(
            "the launch's Patient has no identifier Loupe can match to a DICOM Patient ID "
            "(system urn:oid:..., or one registered for this EHR)",
            code="smart_no_patient_identifier",
            status=422,
            advice=ASK_ADMIN,
        )
    candidates.sort(key=lambda c: not c[0])  # a medical record number first
    _, patient_id, issuer = candidates[0]
    return PatientRef(patient_id, issuer)
