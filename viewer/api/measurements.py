"""The measurements API: thin views over ``viewer.services.measurements``.

* ``POST /api/measurements`` ``{"study_instance_uid", "series_instance_uid",
  "sop_instance_uid", "frame" (1-based, default 1), "kind", "points": [[x, y], ...],
  "label"}`` → 201 with the saved measurement (:func:`measurement_json`);
* ``GET /api/studies/<study>/measurements`` → the study's measurements, newest first, as
  a JSON array; ``?format=json`` the same as a download, ``?format=csv`` one row per
  measurement (both ``Content-Disposition: attachment``, audited as an export);
* in a de-identified share (``viewer.services.deidentify``) every answer and export has
  its labels cleaned of the patient's identifiers and names no author;
* ``GET``, ``PATCH`` (any of ``kind``, ``points``, ``frame``, ``label``; recomputed; the
  fields the server sets are ignored, the UIDs may be sent only unchanged) and
  ``DELETE`` (204) ``/api/measurements/<id>``.

Authentication, CSRF and the 401 are DRF's, as for the rest of the API; a ViewerError is
answered by ``viewer.middleware``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from typing import Any

from django.http import HttpResponse
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import JSONParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from viewer import access
from viewer.dicom.measure import QUANTITIES
from viewer.errors import ViewerError
from viewer.models import Measurement, Study
from viewer.services import audit, deidentify, measurements

EXPORT_FORMATS = ("json", "csv")
PATCHABLE = ("kind", "points", "frame", "label")
UIDS = ("study_instance_uid", "series_instance_uid", "sop_instance_uid")
# What the server sets: a PATCH that sends the measurement back with them is not refused.
SERVER_FIELDS = ("id", "author", "created_at", "updated_at", "result")
# A spreadsheet reads a cell starting with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _time(value: Any) -> str:
    return str(value.isoformat().replace("+00:00", "Z"))


def measurement_json(measurement: Measurement) -> dict[str, Any]:
    """One measurement as the API answers it."""
    author = measurement.author
    return {
        "id": str(measurement.pk),
        "study_instance_uid": measurement.study.study_instance_uid,
        "series_instance_uid": measurement.series.series_instance_uid,
        "sop_instance_uid": measurement.instance.sop_instance_uid,
        "frame": measurement.frame,
        "kind": measurement.kind,
        "points": measurement.points,
        "label": measurement.label,
        "author": {
            "username": author.get_username(),
            "display": author.get_full_name() or author.get_username(),
        },
        "created_at": _time(measurement.created_at),
        "updated_at": _time(measurement.updated_at),
        "result": measurement.result,
    }


def shown(request: Request, study: Study, found: list[Measurement]) -> list[dict[str, Any]]:
    """The measurements as this session is answered: in a de-identified share their
    labels cleaned and their authors not named (``viewer.services.deidentify``), in the
    JSON, the JSON download and the CSV alike."""
    answer = [measurement_json(m) for m in found]
    if not access.deidentified(request._request):
        return answer
    ids = deidentify.identifiers_of(study)
    return [deidentify.measurement_json(m, ids) for m in answer]


class JsonAnswers(DefaultContentNegotiation):
    """JSON whatever is asked: ``?format=`` chooses an export here, not a DRF renderer."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, str(renderer.media_type)


class MeasurementApiView(APIView):
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JsonAnswers


def _object(request: Request) -> dict[str, Any]:
    body = request.data
    if not isinstance(body, dict):
        raise ViewerError("the request body must be a JSON object", code="invalid_body")
    return body


class MeasurementsView(MeasurementApiView):
    """``POST /api/measurements``: measure on one frame of an instance and save it (201)."""

    def post(self, request: Request) -> Response:
        body = _object(request)
        for name in (*UIDS, "kind", "points"):
            if name not in body:
                raise ViewerError(f"the field '{name}' is missing", code="missing_field")
        unknown = sorted(set(body) - {*UIDS, *PATCHABLE})
        if unknown:
            raise ViewerError(f"unknown field '{unknown[0][:40]}'", code="unknown_field")
        measurement = measurements.create(
            request._request,
            study_instance_uid=body["study_instance_uid"],
            series_instance_uid=body["series_instance_uid"],
            sop_instance_uid=body["sop_instance_uid"],
            kind=body["kind"],
            points=body["points"],
            frame=body.get("frame", 1),
            label=body.get("label", ""),
        )
        return Response(measurement_json(measurement), status=201)


class MeasurementView(MeasurementApiView):
    """``GET``, ``PATCH`` (recomputed) and ``DELETE`` (204) ``/api/measurements/<id>``."""

    def get(self, request: Request, measurement: str) -> Response:
        found = measurements.get(request._request, measurement)
        return Response(shown(request, found.study, [found])[0])

    def patch(self, request: Request, measurement: str) -> Response:
        body = _object(request)
        for name in body:
            if name not in PATCHABLE and name not in SERVER_FIELDS and name not in UIDS:
                raise ViewerError(f"unknown field '{str(name)[:40]}'", code="unknown_field")
        sent = {name: body[name] for name in UIDS if name in body}
        if sent:  # the same image may be sent back; another may not
            current = measurement_json(measurements.get(request._request, measurement))
            for name, given in sent.items():
                if given != current[name]:
                    raise ViewerError(
                        f"'{name}' cannot change: a measurement stays on its image",
                        code="read_only_field",
                    )
        for name in PATCHABLE:
            if name in body and body[name] is None:
                raise ViewerError(
                    f"'{name}' cannot be null; leave it out to keep it", code="null_field"
                )
        change = measurements.Change(**{name: body[name] for name in PATCHABLE if name in body})
        changed = measurements.update(request._request, measurement, change)
        return Response(measurement_json(changed))

    def delete(self, request: Request, measurement: str) -> Response:
        measurements.delete(request._request, measurement)
        return Response(status=204)


CSV_COLUMNS = (
    "id",
    "created_at",
    "updated_at",
    "author",
    "study_instance_uid",
    "series_instance_uid",
    "sop_instance_uid",
    "frame",
    "kind",
    "label",
    "points",
    *(f"{name}{part}" for name in QUANTITIES for part in ("", "_unit")),
    "spacing_attribute",
    "values",
)


class StudyMeasurementsView(MeasurementApiView):
    """``GET /api/studies/<study>/measurements[?format=json|csv]``."""

    def get(self, request: Request, study: str) -> HttpResponse:
        export = request.query_params.get("format")
        if export is not None and export not in EXPORT_FORMATS:
            raise ViewerError(
                f"format must be json or csv, not '{export[:16]}'", code="unsupported_format"
            )
        found_study, found = measurements.list_for_study(request._request, study)
        answer = shown(request, found_study, found)
        if export is None:
            return Response(answer)
        audit.record_export(
            request._request,
            found_study,
            outcome=audit.Outcome.SUCCESS,
            kind=f"measurements-{export}",
            count=len({m.instance_id for m in found}),
        )
        filename = f"measurements-{study}.{export}"
        if export == "csv":
            response = HttpResponse(_csv(answer), content_type="text/csv; charset=utf-8")
        else:
            response = HttpResponse(
                json.dumps(answer, ensure_ascii=False).encode(), content_type="application/json"
            )
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


def _csv(found: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for m in found:
        result = m["result"]
        quantities: list[Any] = []
        for name in QUANTITIES:
            quantity = result.get(name) or {}
            quantities += [quantity.get("value", ""), quantity.get("unit", "")]
        writer.writerow(
            [
                m["id"],
                m["created_at"],
                m["updated_at"],
                _cell(m["author"]["username"]),
                m["study_instance_uid"],
                m["series_instance_uid"],
                m["sop_instance_uid"],
                m["frame"],
                m["kind"],
                _cell(m["label"]),
                json.dumps(m["points"]),
                *quantities,
                result.get("spacing_attribute") or "",
                result.get("values") or "",
            ]
        )
    return out.getvalue()


def _cell(text: str) -> str:
    """Text a spreadsheet would read as a formula, quoted with a leading apostrophe."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text
