"""``POST /api/studies/{study}/measurements/sr``: the study's measurements as a DICOM SR
(TID 1500 Measurement Report), stored as a new series of the study
(``viewer.services.reports``). Answers 201 with the report's UIDs; 400
``no_measurements`` for a study without measurements; 404 for a study this session may
not see (the same as an unknown one); 403 for a session that may not store.
"""

from __future__ import annotations

from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from viewer.services import reports


@api_view(["POST"])
def measurement_report(request: Request, study: str) -> Response:
    exported = reports.export_measurements(request._request, study)
    return Response(exported.as_dict(), status=201)
