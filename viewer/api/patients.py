"""The cross-reference of patient identities over HTTP: thin views over
``viewer.services.identity``. Administrators only (401 without a session, 403 for anyone
else); CSRF and the 401 are DRF's session authentication, as for the rest of the API.

* ``POST /api/patient-links`` ``{"patient": {"patient_id", "issuer_of_patient_id"},
  "other_patient": {...}, "kind": "link" | "merge" (default link), "reference": "..."}``
  → 201 with the link (:func:`link_json`), 200 with the existing one if they were linked
  already;
* ``DELETE /api/patient-links`` with the same body, or ``DELETE /api/patient-links/<id>``
  → 204; 404 when there is no such link;
* ``GET /api/patient-links?patient_id=...&issuer_of_patient_id=...`` → the person of that
  identity: ``{"person_key", "identities": [{"patient_id", "issuer_of_patient_id"}],
  "links": [link, ...]}``.

A bad body is a 400 naming the field (``missing_field``, ``bad_patient_link``, DRF's
``parse_error`` for malformed JSON). Each link and unlink is recorded as a Patient Record
event (PS3.15 A.5.3.9) naming the administrator; each read as the identities' records
opened (A.5.3.6). No stored object ever changes.
"""

from __future__ import annotations

from typing import Any

from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from viewer import access, requester
from viewer.dicom.patients import PatientRef
from viewer.errors import NotFound, ViewerError
from viewer.models import PatientLink, Study
from viewer.services import audit, identity

FIELDS = ("patient", "other_patient")
OPTIONAL = ("kind", "reference")


class IsAdministrator(BasePermission):
    message = "only administrators may link or unlink patient identities"

    def has_permission(self, request: Request, view: Any) -> bool:
        return access.is_administrator(request._request)


def _time(value: Any) -> str:
    return str(value.isoformat().replace("+00:00", "Z"))


def identity_json(value: identity.Identity) -> dict[str, str]:
    return {"patient_id": value[0], "issuer_of_patient_id": value[1]}


def link_json(row: PatientLink) -> dict[str, Any]:
    """One link as the API answers it."""
    return {
        "id": row.pk,
        "patient": identity_json((row.patient_id, row.issuer_of_patient_id)),
        "other_patient": identity_json((row.other_patient_id, row.other_issuer_of_patient_id)),
        "kind": row.kind,
        "source": row.source,
        "created_by": row.created_by,
        "reference": row.reference,
        "created_at": _time(row.created_at),
    }


def _identity(body: dict[str, Any], name: str) -> identity.Identity:
    value = body.get(name)
    if value is None:
        raise ViewerError(f"the field '{name}' is missing", code="missing_field")
    if not isinstance(value, dict):
        raise ViewerError(
            f"'{name}' must be an object with patient_id and issuer_of_patient_id",
            code="bad_patient_link",
        )
    unknown = sorted(set(value) - {"patient_id", "issuer_of_patient_id"})
    if unknown:
        raise ViewerError(f"unknown field '{name}.{unknown[0][:40]}'", code="unknown_field")
    if "patient_id" not in value:
        raise ViewerError(f"the field '{name}.patient_id' is missing", code="missing_field")
    patient_id, issuer = value["patient_id"], value.get("issuer_of_patient_id", "")
    for field, text in (("patient_id", patient_id), ("issuer_of_patient_id", issuer)):
        if not isinstance(text, str):
            raise ViewerError(f"'{name}.{field}' must be a string", code="bad_patient_link")
    return (patient_id, issuer)


def _body(request: Request) -> dict[str, Any]:
    body = request.data
    if not isinstance(body, dict):
        raise ViewerError("the request body must be a JSON object", code="invalid_body")
    unknown = sorted(set(body) - {*FIELDS, *OPTIONAL})
    if unknown:
        raise ViewerError(f"unknown field '{unknown[0][:40]}'", code="unknown_field")
    return body


def _text(body: dict[str, Any], name: str, default: str) -> str:
    value = body.get(name, default)
    if not isinstance(value, str):
        raise ViewerError(f"'{name}' must be a string", code="bad_patient_link")
    if len(value) > 255:
        raise ViewerError(f"'{name}' is longer than 255 characters", code="bad_patient_link")
    return value


def _who(request: Request) -> dict[str, Any]:
    raw = request._request
    return {
        "source": PatientLink.Source.API,
        "user_id": requester.user_id(raw),
        "client_address": requester.client_address(raw),
        "channel": requester.channel(raw),
        "request": raw,
    }


def _record_read(request: Request, identities: Any, view: str) -> None:
    """Reading the cross-reference discloses a person's identities: one Instances
    Accessed record (PS3.15 A.5.3.6, R) per identity, with its stored studies."""
    for patient_id, issuer in sorted(identities):
        studies = Study.objects.filter(
            patient__patient_id=patient_id, patient__issuer_of_patient_id=issuer
        ).values_list("study_instance_uid", flat=True)
        audit.record_patient_opened(
            request._request, PatientRef(patient_id, issuer), list(studies), view=view
        )


class PatientApiView(APIView):
    permission_classes = [IsAuthenticated, IsAdministrator]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]


class PatientLinksView(PatientApiView):
    """``GET``, ``POST`` and ``DELETE`` ``/api/patient-links``."""

    def get(self, request: Request) -> Response:
        query = request.query_params
        wanted = _identity(
            {
                "patient": {
                    k: query[k] for k in ("patient_id", "issuer_of_patient_id") if k in query
                }
            },
            "patient",
        )
        wanted = identity.clean(wanted, "patient")
        person = identity.person(wanted)
        _record_read(request, person, "api:patient-links")
        return Response(
            {
                "person_key": identity.person_key(person),
                "identities": [identity_json(i) for i in sorted(person)],
                "links": [link_json(row) for row in identity.links_of(wanted)],
            }
        )

    def post(self, request: Request) -> Response:
        body = _body(request)
        a, b = _identity(body, "patient"), _identity(body, "other_patient")
        row, created = identity.link_or_existing(
            a,
            b,
            kind=_text(body, "kind", PatientLink.Kind.LINK),
            reference=_text(body, "reference", ""),
            **_who(request),
        )
        return Response(link_json(row), status=201 if created else 200)

    def delete(self, request: Request) -> Response:
        body = _body(request)
        a, b = _identity(body, "patient"), _identity(body, "other_patient")
        if not identity.unlink(a, b, reference=_text(body, "reference", ""), **_who(request)):
            raise NotFound("these identities are not linked", code="not_found")
        return Response(status=204)


class PatientLinkView(PatientApiView):
    """``GET`` and ``DELETE`` ``/api/patient-links/<id>``."""

    def _row(self, link: str) -> PatientLink:
        row = (
            PatientLink.objects.filter(pk=int(link)).first()
            if link.isdigit() and len(link) <= 18
            else None
        )
        if row is None:
            raise NotFound("no such patient link", code="not_found")
        return row

    def get(self, request: Request, link: str) -> Response:
        row = self._row(link)
        _record_read(
            request,
            [
                (row.patient_id, row.issuer_of_patient_id),
                (row.other_patient_id, row.other_issuer_of_patient_id),
            ],
            "api:patient-link",
        )
        return Response(link_json(row))

    def delete(self, request: Request, link: str) -> Response:
        row = self._row(link)
        identity.unlink(
            (row.patient_id, row.issuer_of_patient_id),
            (row.other_patient_id, row.other_issuer_of_patient_id),
            **_who(request),
        )
        return Response(status=204)
