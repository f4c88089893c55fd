"""``GET /api/studies/<study>/priors``: the earlier studies of the study's person that this
session may see, newest first (``viewer.services.priors``), the one to compare with marked
``"relevant": true``.

The study passes ``access.study_for`` (the same 404 for an unknown study and one this
session may not see; its access recorded); the priors come from ``access.visible_studies``,
so a launched clinician sees the priors of the launched person only, and the listing is
recorded as a Query (PS3.15 A.5.3.10). The answer is a JSON array of::

    {"study_instance_uid", "study_date": "YYYY-MM-DD", "study_time": "HH:MM:SS" | null,
     "modalities": ["CT", ...], "body_part": "CHEST" | "", "body_parts": ["CHEST", ...],
     "description", "number_of_instances", "relevant": bool, "linked": bool,
     "patient": {"patient_id", "issuer_of_patient_id"}}

``modalities`` are (0008,0061) Modalities in Study; ``body_part`` the most common
(0018,0015) Body Part Examined of the study's image series ("" where none records one);
``linked``: the prior is stored under another identity of the person than the study's own.
In a de-identified share the ``patient`` is a placeholder and the description cleaned
(``viewer.services.deidentify``).

``?remote=1`` adds the earlier studies of the same (0010,0020) Patient ID and issuer that
only an upstream archive holds (``viewer.services.upstream.remote_priors``, scoped and
audited there), after the local ones, each as::

    {"study_instance_uid", "study_date", "study_time", "modalities", "description",
     "number_of_instances", "relevant": false, "linked": false,
     "remote": "<archive name>", "open_url": "/remote/<archive>/<uid>/"}

An archive that does not answer is named in a ``Warning: 299`` header (RFC 7234 §5.5),
the local priors still answered. A share session never asks upstream.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from viewer import access
from viewer.services import audit, deidentify, identity, priors, upstream
from viewer.upstream.client import RemoteStudy


def prior_json(prior: priors.Prior) -> dict[str, Any]:
    study = prior.study
    patient_id, issuer = identity.identity_of(study.patient)
    return {
        "study_instance_uid": study.study_instance_uid,
        "study_date": study.study_date.isoformat() if study.study_date else None,
        "study_time": study.study_time.strftime("%H:%M:%S") if study.study_time else None,
        "modalities": [m for m in study.modalities_in_study.split("\\") if m],
        "body_part": prior.body_parts[0] if prior.body_parts else "",
        "body_parts": list(prior.body_parts),
        "description": study.study_description,
        "number_of_instances": study.number_of_study_related_instances,
        "relevant": prior.relevant,
        "linked": prior.linked,
        "patient": {"patient_id": patient_id, "issuer_of_patient_id": issuer},
    }


@api_view(["GET"])
def study_priors(request: Request, study: str) -> Response:
    current = access.study_for(request._request, study)
    found = priors.priors_of(current, access.visible_studies(request._request))
    audit.record_query(request._request, filters=["priors"], count=len(found))
    answer = [prior_json(p) for p in found]
    if access.deidentified(request._request):
        answer = [
            deidentify.prior_json(body, deidentify.identifiers_of(p.study))
            for body, p in zip(answer, found, strict=True)
        ]
    if request.query_params.get("remote") == "1" and not access.deidentified(request._request):
        remote = upstream.remote_priors(request._request, current)
        answer += [remote_prior_json(study) for study in remote.studies]
        response = Response(answer)
        if remote.errors:
            response["Warning"] = ", ".join(
                '299 loupe "{}"'.format(e.replace('"', "'")) for e in remote.errors
            )
        return response
    return Response(answer)


def remote_prior_json(study: RemoteStudy) -> dict[str, Any]:
    """A prior held upstream only (to open: its ``open_url`` fetches it)."""
    return {
        "study_instance_uid": study.study_instance_uid,
        "study_date": study.study_date.isoformat() if study.study_date else None,
        "study_time": study.study_time.strftime("%H:%M:%S") if study.study_time else None,
        "modalities": [m for m in study.modalities_in_study.split("\\") if m],
        "description": study.study_description,
        "number_of_instances": study.number_of_study_related_instances,
        "relevant": False,
        "linked": False,
        "remote": study.upstream,
        "open_url": reverse("remote-study", args=[study.upstream, study.study_instance_uid]),
    }
