"""Loupe's index as FHIR R4 (4.0.1) resources: ImagingStudy, Endpoint, CapabilityStatement,
OperationOutcome and the searchset Bundle (hl7.org/fhir/R4/imagingstudy.html,
endpoint.html, capabilitystatement.html, bundle.html, operationoutcome.html).

Pure mapping from index rows (``viewer.models``) to JSON-ready dicts; the views decide
what a session may see.

Identifiers (hl7.org/fhir/R4/imagingstudy.html "DICOM mapping"):

* the study: ``{"system": "urn:dicom:uid", "value": "urn:oid:<Study Instance UID>"}``;
  the resource's logical id is the UID itself (digits and dots fit the FHIR id grammar);
* the accession: type ``ACSN`` (v2-0203), its system from (0008,0051) Issuer of Accession
  Number Sequence, as :func:`issuer_system` maps it;
* the patient, in ``subject``: (0010,0020) Patient ID with a system from its issuer: the
  (0040,0032) Universal Entity ID of (0010,0024) Issuer of Patient ID Qualifiers as
  ``urn:oid:<UID>`` where its type is ISO (``urn:uuid:`` for UUID, the URI itself for
  URI), else (0010,0021) Issuer of Patient ID as ``urn:loupe:issuer:<issuer,
  percent-encoded>``; no system where neither was sent. ``subject.reference`` is
  ``Patient/<n>``, Loupe's logical id of the patient (its index row), which the
  ``patient`` search parameter takes. No name or birth date is ever written here.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote
from zoneinfo import ZoneInfo

from django.conf import settings
from pydicom.uid import UID

from viewer.models import Instance, Patient, Series, Study

FHIR_VERSION = "4.0.1"
FHIR_JSON = "application/fhir+json"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
SCT = "http://snomed.info/sct"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
CONNECTION_TYPE = "http://terminology.hl7.org/CodeSystem/endpoint-connection-type"
PAYLOAD_TYPE = "http://terminology.hl7.org/CodeSystem/endpoint-payload-type"
RFC_3986 = "urn:ietf:rfc:3986"
DICOM_UID = "urn:dicom:uid"
OID = "urn:oid:"
UUID_URN = "urn:uuid:"
LOUPE_ISSUER = "urn:loupe:issuer:"

FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")

ENDPOINT_WADO = "dicomweb-wado-rs"
ENDPOINT_IID = "ihe-iid"

# (0018,0015) Body Part Examined to SNOMED CT, after DICOM PS3.16 Annex L (Correspondence
# of Anatomic Region Codes and Body Part Examined Defined Terms); a term not listed here
# gives no bodySite.
BODY_PARTS: dict[str, tuple[str, str]] = {
    "ABDOMEN": ("818981001", "Abdomen"),
    "BRAIN": ("12738006", "Brain"),
    "BREAST": ("76752008", "Breast"),
    "CHEST": ("43799004", "Chest"),
    "CSPINE": ("122494005", "Cervical spine"),
    "HEAD": ("69536005", "Head"),
    "HEADNECK": ("774007", "Head and Neck"),
    "HEART": ("80891009", "Heart"),
    "KIDNEY": ("64033007", "Kidney"),
    "LIVER": ("10200004", "Liver"),
    "LSPINE": ("122496007", "Lumbar spine"),
    "NECK": ("45048000", "Neck"),
    "SHOULDER": ("16982005", "Shoulder"),
    "TSPINE": ("122495006", "Thoracic spine"),
    "WHOLEBODY": ("38266002", "Entire body"),
}


def issuer_system(issuer: str, kind: str = "") -> str:
    """The FHIR ``Identifier.system`` of an identifier issued by ``issuer``: an ISO
    Universal Entity ID (``kind`` "ISO", or any value shaped as an OID) as ``urn:oid:``,
    a UUID as ``urn:uuid:``, an absolute URI as itself, any other issuer (a local
    namespace such as (0010,0021)) as ``urn:loupe:issuer:<percent-encoded>``; "" for none."""
    if not issuer:
        return ""
    if kind == "ISO" or (not kind and _OID.fullmatch(issuer)):
        return f"{OID}{issuer}"
    if kind == "UUID":
        return f"{UUID_URN}{issuer.lower()}"
    if kind == "URI" and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]*:\S+", issuer):
        return issuer
    return f"{LOUPE_ISSUER}{quote(issuer, safe='')}"


def issuer_of_system(system: str) -> str:
    """The issuer an ``Identifier.system`` names (the inverse of :func:`issuer_system`)."""
    for prefix in (OID, UUID_URN):
        if system.startswith(prefix):
            return system[len(prefix) :]
    if system.startswith(LOUPE_ISSUER):
        return unquote(system[len(LOUPE_ISSUER) :])
    return system


def patient_system(patient: Patient) -> str:
    """The system of a stored patient's Patient ID (see the module's docstring)."""
    universal, _, kind = (patient.issuer_of_patient_id_qualifiers or "").partition("&")
    if universal and kind in ("ISO", "UUID", "URI"):
        system = issuer_system(universal, kind)
        if not system.startswith(LOUPE_ISSUER):
            return system
    if patient.issuer_of_patient_id:
        return f"{LOUPE_ISSUER}{quote(patient.issuer_of_patient_id, safe='')}"
    return issuer_system(universal, "X") if universal else ""


def dcm(code: str) -> dict[str, str]:
    return {"system": DCM, "code": code}


def sop_class(uid: str) -> dict[str, str]:
    """(0008,0016) SOP Class UID as a Coding of system urn:ietf:rfc:3986."""
    coding = {"system": RFC_3986, "code": f"{OID}{uid}"}
    name = UID(uid).name
    if name and name != uid:
        coding["display"] = name
    return coding


def started(study: Study) -> str | None:
    """(0008,0020) Study Date and (0008,0030) Study Time as a FHIR dateTime. DICOM gives
    them without a zone; they are read as the deployment's time zone (TIME_ZONE), the zone
    the ``started`` search compares in. A date alone stays a date."""
    if study.study_date is None:
        return None
    if study.study_time is None:
        return study.study_date.isoformat()
    moment = datetime.combine(study.study_date, study.study_time.replace(microsecond=0))
    return moment.replace(tzinfo=ZoneInfo(settings.TIME_ZONE)).isoformat()


def reference(resource: str, logical_id: str) -> dict[str, str]:
    return {"reference": f"{resource}/{logical_id}"}


def subject(patient: Patient) -> dict[str, Any]:
    """``ImagingStudy.subject``: Loupe's Patient reference and the patient's identifier
    (type MR, medical record number); never a name."""
    identifier: dict[str, Any] = {
        "type": {"coding": [{"system": V2_0203, "code": "MR"}]},
        "value": patient.patient_id,
    }
    system = patient_system(patient)
    if system:
        identifier["system"] = system
    value: dict[str, Any] = {"reference": f"Patient/{patient.pk}", "type": "Patient"}
    if patient.patient_id:
        value["identifier"] = identifier
    return value


def study_identifiers(study: Study) -> list[dict[str, Any]]:
    identifiers: list[dict[str, Any]] = [
        {"use": "official", "system": DICOM_UID, "value": f"{OID}{study.study_instance_uid}"}
    ]
    if study.accession_number:
        accession: dict[str, Any] = {
            "use": "usual",
            "type": {"coding": [{"system": V2_0203, "code": "ACSN"}]},
            "value": study.accession_number,
        }
        system = issuer_system(study.issuer_of_accession_number)
        if system:
            accession["system"] = system
        identifiers.append(accession)
    return identifiers


def instance_json(instance: Instance) -> dict[str, Any]:
    value: dict[str, Any] = {
        "uid": instance.sop_instance_uid,
        "sopClass": sop_class(instance.sop_class_uid),
    }
    if instance.instance_number is not None and instance.instance_number >= 0:
        value["number"] = instance.instance_number
    return value


def series_json(series: Series, instances: list[Instance]) -> dict[str, Any]:
    value: dict[str, Any] = {
        "uid": series.series_instance_uid,
        # 1..1 in R4: a series that named none is "OT" (Other), PS3.3 C.7.3.1.1.1.
        "modality": dcm(series.modality or "OT"),
        "numberOfInstances": series.number_of_series_related_instances,
    }
    if series.series_number is not None and series.series_number >= 0:
        value["number"] = series.series_number
    if series.series_description:
        value["description"] = series.series_description
    body = BODY_PARTS.get(series.body_part_examined.upper())
    if body:
        value["bodySite"] = {"system": SCT, "code": body[0], "display": body[1]}
    if series.series_date is not None:
        value["started"] = series.series_date.isoformat()
    if instances:
        value["instance"] = [instance_json(i) for i in instances]
    return value


def imaging_study(study: Study) -> dict[str, Any]:
    """One study, with its series and instances (prefetched as ``series`` and
    ``series__instances``, or queried here)."""
    all_series = sorted(
        study.series.all(),
        key=lambda s: (s.series_number is None, s.series_number or 0, s.pk),
    )
    modalities = sorted({s.modality for s in all_series if s.modality})
    value: dict[str, Any] = {
        "resourceType": "ImagingStudy",
        "id": study.study_instance_uid,
        "identifier": study_identifiers(study),
        "status": "available",
    }
    if modalities:
        value["modality"] = [dcm(m) for m in modalities]
    value["subject"] = subject(study.patient)
    when = started(study)
    if when:
        value["started"] = when
    value["endpoint"] = [reference("Endpoint", ENDPOINT_WADO), reference("Endpoint", ENDPOINT_IID)]
    value["numberOfSeries"] = study.number_of_study_related_series
    value["numberOfInstances"] = study.number_of_study_related_instances
    if study.study_description:
        value["description"] = study.study_description
    if all_series:
        value["series"] = [
            series_json(
                s,
                sorted(
                    s.instances.all(),
                    key=lambda i: (i.instance_number is None, i.instance_number or 0, i.pk),
                ),
            )
            for s in all_series
        ]
    return value


def endpoint(name: str, base_url: str) -> dict[str, Any] | None:
    """The Endpoint resource ``name`` (dicomweb-wado-rs or ihe-iid); ``base_url`` is the
    absolute root of this server, ending in "/"."""
    if name == ENDPOINT_WADO:
        return {
            "resourceType": "Endpoint",
            "id": ENDPOINT_WADO,
            "status": "active",
            "connectionType": {"system": CONNECTION_TYPE, "code": "dicom-wado-rs"},
            "name": "Loupe DICOMweb (WADO-RS, PS3.18)",
            "payloadType": [
                {
                    "coding": [{"system": PAYLOAD_TYPE, "code": "any", "display": "Any"}],
                    "text": "DICOM WADO-RS",
                }
            ],
            "payloadMimeType": ["application/dicom", "application/dicom+json"],
            "address": f"{base_url}dicom-web/",
        }
    if name == ENDPOINT_IID:
        return {
            "resourceType": "Endpoint",
            "id": ENDPOINT_IID,
            "status": "active",
            "connectionType": {"system": CONNECTION_TYPE, "code": "ihe-iid"},
            "name": "Loupe viewer (IHE Invoke Image Display)",
            "payloadType": [
                {
                    "coding": [{"system": PAYLOAD_TYPE, "code": "none", "display": "None"}],
                    "text": "IHE IID",
                }
            ],
            "payloadMimeType": ["text/html"],
            "address": f"{base_url}ehrlaunch/IHEInvokeImageDisplay",
        }
    return None


SEARCH_PARAMETERS: list[dict[str, str]] = [
    {
        "name": "patient",
        "definition": "http://hl7.org/fhir/SearchParameter/clinical-patient",
        "type": "reference",
        "documentation": "Loupe's Patient id (Patient/<n>, as in ImagingStudy.subject).",
    },
    {
        "name": "subject",
        "definition": "http://hl7.org/fhir/SearchParameter/ImagingStudy-subject",
        "type": "reference",
        "documentation": "Only with the :identifier modifier: system|value of the Patient ID.",
    },
    {
        "name": "identifier",
        "definition": "http://hl7.org/fhir/SearchParameter/clinical-identifier",
        "type": "token",
        "documentation": "urn:oid:<Study Instance UID> (system urn:dicom:uid), or the "
        "accession number (system|value, system from its issuer); the :of-type modifier "
        "with http://terminology.hl7.org/CodeSystem/v2-0203|ACSN|<accession>.",
    },
    {
        "name": "started",
        "definition": "http://hl7.org/fhir/SearchParameter/ImagingStudy-started",
        "type": "date",
        "documentation": "Prefixes eq, ne, gt, lt, ge, le; partial dates; study date and "
        "time in the server's time zone.",
    },
    {
        "name": "modality",
        "definition": "http://hl7.org/fhir/SearchParameter/ImagingStudy-modality",
        "type": "token",
        "documentation": "A DICOM modality code, system "
        "http://dicom.nema.org/resources/ontology/DCM (a study with a series of it).",
    },
    {
        "name": "_id",
        "definition": "http://hl7.org/fhir/SearchParameter/Resource-id",
        "type": "token",
        "documentation": "The Study Instance UID.",
    },
    {
        "name": "_count",
        "definition": "http://hl7.org/fhir/SearchParameter/Resource-count",
        "type": "number",
        "documentation": "Page size (default 20, at most 100; 0 answers the total only).",
    },
    {
        "name": "_offset",
        "definition": "http://loupe.invalid/fhir/SearchParameter/offset",
        "type": "number",
        "documentation": "How many matches to skip (the paging links carry it).",
    },
]


def capability_statement(base_url: str, date: str) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "publisher": "Loupe",
        "kind": "instance",
        "software": {"name": "Loupe"},
        "implementation": {
            "description": "Loupe's imaging studies as FHIR R4 ImagingStudy",
            "url": f"{base_url}fhir",
        },
        "fhirVersion": FHIR_VERSION,
        "format": ["json", FHIR_JSON],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "cors": bool(settings.LOUPE_DICOMWEB_CORS_ORIGINS),
                    "description": "A Loupe session (cookie) or an Authorization: Bearer "
                    "token (a Loupe API token or an access token of the configured OpenID "
                    "provider); answers are scoped to what the session may see. Sessions "
                    "of de-identified share links are refused (403).",
                },
                "resource": [
                    {
                        "type": "ImagingStudy",
                        "profile": "http://hl7.org/fhir/StructureDefinition/ImagingStudy",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": SEARCH_PARAMETERS,
                    },
                    {
                        "type": "Endpoint",
                        "profile": "http://hl7.org/fhir/StructureDefinition/Endpoint",
                        "interaction": [{"code": "read"}],
                    },
                ],
            }
        ],
    }


# OperationOutcome issue types (hl7.org/fhir/R4/valueset-issue-type.html) per status.
ISSUE_TYPES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    503: "transient",
}


def operation_outcome(status: int, code: str, message: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": ISSUE_TYPES.get(status, "processing"),
                "details": {"text": code},
                "diagnostics": message,
            }
        ],
    }
