"""``GET /api/studies/<study>/hanging-protocols[?compare=<uid>[,<uid>]]``: every enabled
hanging protocol applied to the study (``viewer.services.hanging.hang``), the chosen one
first, so that the viewer can apply it and switch to any other.

The study passes ``access.study_for`` (the same 404 for an unknown study and one this
session may not see); so does each compared study, which fills the "prior" slots first,
in order; the study's own priors come from the studies this session may see. A malformed
or excess ``compare`` is a 400 naming it (as for the viewer page). The answer::

    {"chosen": "CT chest with prior" | null,
     "protocols": [{"name", "description", "matches", "score", "layout",
                    "sync": {"scroll", "window", "zoom"},
                    "viewports": [{"index", "study_instance_uid", "series_instance_uid",
                                   "preset", "cine", "role"}]}]}

``study_instance_uid`` is null for a prior slot with no study, ``series_instance_uid``
null for a viewport no series fits.
"""

from __future__ import annotations

from typing import Any

from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from viewer import access
from viewer.services import hanging
from viewer.views import compared_study_uids


def viewport_json(viewport: hanging.HungViewport) -> dict[str, Any]:
    return {
        "index": viewport.index,
        "study_instance_uid": viewport.study.study_instance_uid if viewport.study else None,
        "series_instance_uid": viewport.series.series_instance_uid if viewport.series else None,
        "preset": viewport.preset,
        "cine": viewport.cine,
        "role": viewport.role,
    }


def protocol_json(hung: hanging.HungProtocol) -> dict[str, Any]:
    return {
        "name": hung.protocol.name,
        "description": hung.protocol.description,
        "matches": hung.matches,
        "score": hung.score,
        "layout": hung.protocol.layout,
        "sync": hung.sync(),
        "viewports": [viewport_json(v) for v in hung.viewports],
    }


@api_view(["GET"])
def study_hanging_protocols(request: Request, study: str) -> Response:
    compare = compared_study_uids(request._request, study)
    current = access.study_for(request._request, study)
    compared = [access.study_for(request._request, uid) for uid in compare]
    result = hanging.hang(current, access.visible_studies(request._request), compared)
    return Response(
        {
            "chosen": result.chosen.protocol.name if result.chosen else None,
            "protocols": [protocol_json(p) for p in result.protocols],
        }
    )
