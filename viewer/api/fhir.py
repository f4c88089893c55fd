"""Audit records as FHIR R4 AuditEvent resources, in a searchset Bundle.

The mapping follows the DICOM-to-FHIR table of the R4 AuditEvent page and IHE BALP
(PatientRead): ``type`` is the PS3.15 EventID (system DCM), ``subtype`` its
EventTypeCode, ``action`` and ``outcome`` as recorded; one requesting agent (the user,
``altId`` the alternative user, network type 2 = IP address); ``source`` is Loupe, an
application server (security-source-type 4); the patient is an entity of type 1
(Person) role 1 (Patient), each study one of type 2 (System Object) role 3 (Report)
identified as ``urn:dicom:uid`` / ``urn:oid:<uid>``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from django.conf import settings

from viewer.models import AuditEvent

DCM = "http://dicom.nema.org/resources/ontology/DCM"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
ROLE_TYPE = "http://terminology.hl7.org/CodeSystem/extra-security-role-type"


def _dcm(code: str, display: str) -> dict[str, str]:
    return {"system": DCM, "code": code, "display": display}


def _requestor(event: AuditEvent) -> dict[str, Any]:
    agent: dict[str, Any] = {
        "type": {"coding": [{"system": ROLE_TYPE, "code": "humanuser", "display": "human user"}]},
        "who": {"identifier": {"value": event.user_id}}
        if event.user_id
        else {"display": "unauthenticated"},
        "requestor": True,
    }
    if event.alternative_user_id:
        agent["altId"] = event.alternative_user_id
    if event.client_address:
        agent["network"] = {"address": event.client_address, "type": "2"}
    return agent


def _entities(event: AuditEvent) -> list[dict[str, Any]]:
    entities: list[dict[str, Any]] = []
    if event.patient_id:
        identifier: dict[str, Any] = {"value": event.patient_id}
        if event.issuer_of_patient_id:
            identifier["assigner"] = {"display": event.issuer_of_patient_id}
        entities.append(
            {
                "what": {"identifier": identifier},
                "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
                "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
            }
        )
    for uid in event.study_uids:
        entities.append(
            {
                "what": {"identifier": {"system": "urn:dicom:uid", "value": f"urn:oid:{uid}"}},
                "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                "role": {"system": OBJECT_ROLE, "code": "3", "display": "Report"},
            }
        )
    if event.event_id == AuditEvent.EventId.QUERY:
        query = json.dumps(event.detail.get("filters", [])).encode()
        entities.append(
            {
                "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                "role": {"system": OBJECT_ROLE, "code": "24", "display": "Query"},
                "query": base64.b64encode(query).decode(),
            }
        )
    return entities


def audit_event(event: AuditEvent) -> dict[str, Any]:
    """One FHIR R4 AuditEvent resource for one audit record."""
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(event.id),
        "type": _dcm(event.event_id, event.get_event_id_display()),
        "action": event.action,
        "recorded": event.recorded_at.isoformat().replace("+00:00", "Z"),
        "outcome": str(event.outcome),
        "agent": [_requestor(event)],
        "source": {
            "site": settings.LOUPE_AUDIT_SOURCE_ID,
            "observer": {"display": settings.LOUPE_AUDIT_SOURCE_ID},
            "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
        },
    }
    if event.event_type:
        resource["subtype"] = [_dcm(event.event_type, event.get_event_type_display())]
    entities = _entities(event)
    if entities:
        resource["entity"] = entities
    return resource


def searchset(
    events: list[AuditEvent], *, total: int, self_url: str, next_url: str | None
) -> dict[str, Any]:
    """A FHIR R4 Bundle of type searchset: one page of AuditEvent resources."""
    links = [{"relation": "self", "url": self_url}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": [
            {
                "fullUrl": f"urn:uuid:{event.id}",
                "resource": audit_event(event),
                "search": {"mode": "match"},
            }
            for event in events
        ],
    }
