"""``GET /dicom-web/``: what Loupe's DICOMweb server supports (its conformance statement).

The content is one data structure, :data:`STATEMENT`, rendered as JSON
(``Accept: application/json``, or ``?format=json``) or as an HTML page for a browser
(``Accept: text/html``); with neither, JSON. It describes the services of PS3.18 §10
(Studies Service: QIDO-RS search §10.6, WADO-RS retrieve §10.4, STOW-RS store §10.5) and
the rendered and thumbnail resources (§8.3.5, §10.4.1.1.3), the media types and transfer
syntaxes offered, how to authenticate and whether CORS is on.

The page is public, as an archive's conformance statement is: it holds no patient data,
no counts, no user or host names. The CORS origins themselves are listed only to a
signed-in user (or a bearer request); anyone else learns whether CORS is on.
"""

from __future__ import annotations

import copy
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

STUDY_KEYS = [
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "ModalitiesInStudy",
    "ReferringPhysicianName",
    "PatientName",
    "PatientID",
    "StudyInstanceUID",
    "StudyID",
]
SERIES_KEYS = [
    "Modality",
    "SeriesInstanceUID",
    "SeriesNumber",
    "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime",
    "RequestAttributesSequence.ScheduledProcedureStepID",
    "RequestAttributesSequence.RequestedProcedureID",
]
INSTANCE_KEYS = ["SOPClassUID", "SOPInstanceUID", "InstanceNumber"]

TRANSFER_SYNTAXES = [
    {"uid": "1.2.840.10008.1.2.1", "name": "Explicit VR Little Endian", "media_type": ""},
    {"uid": "1.2.840.10008.1.2", "name": "Implicit VR Little Endian", "media_type": ""},
    {
        "uid": "1.2.840.10008.1.2.4.50",
        "name": "JPEG Baseline (Process 1)",
        "media_type": "image/jpeg",
    },
    {
        "uid": "1.2.840.10008.1.2.4.51",
        "name": "JPEG Extended (Process 2 & 4)",
        "media_type": "image/jpeg",
    },
    {
        "uid": "1.2.840.10008.1.2.4.57",
        "name": "JPEG Lossless (Process 14)",
        "media_type": "image/jpeg",
    },
    {"uid": "1.2.840.10008.1.2.4.70", "name": "JPEG Lossless SV1", "media_type": "image/jpeg"},
    {"uid": "1.2.840.10008.1.2.4.80", "name": "JPEG-LS Lossless", "media_type": "image/jls"},
    {"uid": "1.2.840.10008.1.2.4.81", "name": "JPEG-LS Near-Lossless", "media_type": "image/jls"},
    {"uid": "1.2.840.10008.1.2.4.90", "name": "JPEG 2000 Lossless", "media_type": "image/jp2"},
    {"uid": "1.2.840.10008.1.2.4.91", "name": "JPEG 2000", "media_type": "image/jp2"},
    {"uid": "1.2.840.10008.1.2.4.201", "name": "HTJ2K Lossless", "media_type": "image/jphc"},
    {"uid": "1.2.840.10008.1.2.4.202", "name": "HTJ2K Lossless RPCL", "media_type": "image/jphc"},
    {"uid": "1.2.840.10008.1.2.4.203", "name": "HTJ2K", "media_type": "image/jphc"},
    {"uid": "1.2.840.10008.1.2.5", "name": "RLE Lossless", "media_type": "image/x-dicom-rle"},
]

S = "/studies/{study}"
SE = f"{S}/series/{{series}}"
I = f"{SE}/instances/{{instance}}"  # noqa: E741

# The conformance statement. Paths are relative to /dicom-web. Adjust here (and only
# here) when a service changes.
STATEMENT: dict[str, Any] = {
    "title": "Loupe DICOMweb conformance",
    "standard": "DICOM PS3.18 Web Services",
    "base_path": "/dicom-web",
    "services": [
        {
            "name": "QIDO-RS",
            "transaction": "Search (PS3.18 §10.6)",
            "resources": [
                {"method": "GET", "path": "/studies"},
                {"method": "GET", "path": "/series"},
                {"method": "GET", "path": "/instances"},
                {"method": "GET", "path": f"{S}/series"},
                {"method": "GET", "path": f"{S}/instances"},
                {"method": "GET", "path": f"{SE}/instances"},
            ],
            "matching_keys": {
                "study": STUDY_KEYS,
                "series": SERIES_KEYS,
                "instance": INSTANCE_KEYS,
            },
            "matching": [
                "single value",
                "list of UIDs",
                "wildcards * and ? (PS3.4 C.2.2.2.4)",
                "date and time ranges (each on its own; not combined date-time)",
                "sequence matching on (0040,0275) Request Attributes Sequence items only "
                "(RequestAttributesSequence.ScheduledProcedureStepID or 00400275.00400009, "
                "RequestAttributesSequence.RequestedProcedureID): a series matches if any "
                "item does; any other sequence path is refused (400 "
                "unsupported_matching_key), never ignored",
                "case-insensitive person names; fuzzymatching=true: each word begins a "
                "name component",
                "attributes of another level narrow the search",
            ],
            "answers": "200 with [] when nothing matches; limit at most 1000, Warning 299 "
            "when more remain",
            "query_parameters": ["{attribute}={value}", "includefield", "limit", "offset"],
            "includefield": "an attribute keyword or tag, or all",
            "media_types": ["application/dicom+json"],
        },
        {
            "name": "WADO-RS",
            "transaction": "Retrieve (PS3.18 §10.4)",
            "resources": [
                {"method": "GET", "path": S, "returns": "instances"},
                {"method": "GET", "path": SE, "returns": "instances"},
                {"method": "GET", "path": I, "returns": "instance"},
                {"method": "GET", "path": f"{S}/metadata", "returns": "metadata"},
                {"method": "GET", "path": f"{SE}/metadata", "returns": "metadata"},
                {"method": "GET", "path": f"{I}/metadata", "returns": "metadata"},
                {"method": "GET", "path": f"{I}/frames/{{frames}}", "returns": "frames"},
                {"method": "GET", "path": f"{I}/bulkdata/{{attribute}}", "returns": "bulk data"},
                {"method": "GET", "path": f"{S}/rendered", "returns": "rendered"},
                {"method": "GET", "path": f"{SE}/rendered", "returns": "rendered"},
            ],
            "media_types": {
                "instances": ['multipart/related; type="application/dicom"'],
                "metadata": ["application/dicom+json"],
                "frames": [
                    'multipart/related; type="application/octet-stream"',
                    'multipart/related; type="image/jpeg"',
                    'multipart/related; type="image/jls"',
                    'multipart/related; type="image/jp2"',
                    'multipart/related; type="image/jphc"',
                    'multipart/related; type="image/x-dicom-rle"',
                ],
                "bulk data": ['multipart/related; type="application/octet-stream"'],
                "rendered": ['multipart/related; type="image/jpeg"', "image/png", "image/webp"],
            },
            "transfer_syntax_parameter": (
                "instances: as stored (the default, and transfer-syntax=*), or "
                "1.2.840.10008.1.2.1 Explicit VR Little Endian (decompressed); any other is "
                "406. Frames: native little endian by default, as stored (in the transfer "
                "syntaxes below) with transfer-syntax=* or their media type"
            ),
            "bulk_data": "large values in metadata are BulkDataURIs",
        },
        {
            "name": "Rendered and thumbnail",
            "transaction": "Retrieve rendered (PS3.18 §8.3.5, §10.4.1.1.3)",
            "resources": [
                {"method": "GET", "path": f"{I}/rendered"},
                {"method": "GET", "path": f"{I}/frames/{{frame}}/rendered"},
                {"method": "GET", "path": f"{S}/thumbnail"},
                {"method": "GET", "path": f"{SE}/thumbnail"},
                {"method": "GET", "path": f"{I}/thumbnail"},
            ],
            "query_parameters": ["accept", "quality", "viewport", "window", "annotation"],
            "annotation": ["patient", "technique"],
            "media_types": ["image/jpeg", "image/png", "image/webp"],
        },
        {
            "name": "STOW-RS",
            "transaction": "Store (PS3.18 §10.5)",
            "resources": [
                {"method": "POST", "path": "/studies"},
                {"method": "POST", "path": S},
            ],
            "media_types": ['multipart/related; type="application/dicom"'],
            "response": (
                "application/dicom+json with ReferencedSOPSequence and FailedSOPSequence "
                "(failure reasons of PS3.18 Table 10.5.3-1); 200 all stored, 202 some "
                "failed, 409 none stored"
            ),
            "roles": ["radiologist", "administrator"],
        },
    ],
    "transfer_syntaxes": TRANSFER_SYNTAXES,
    "authentication": [
        {
            "scheme": "session cookie",
            "for": "Loupe's own viewer (same origin)",
        },
        {
            "scheme": "Bearer API token",
            "for": "machine clients and viewers on another origin",
            "how": "Authorization: Bearer <token>; a token of a service account, issued in "
            "Loupe's admin or by manage.py issue_api_token",
        },
        {
            "scheme": "Bearer OIDC access token",
            "for": "viewers signed in at the configured OpenID provider",
            "how": "Authorization: Bearer <JWT access token, RFC 9068>, signed by the "
            "provider (RS256)",
        },
    ],
    "access": (
        "every request sees only what its account's role allows; an unknown study and one "
        "the requester may not see both answer 404; every access is audited (PS3.15 A.5.3)"
    ),
}


def statement_for(request: HttpRequest) -> dict[str, Any]:
    """The statement as this request may read it (settings-dependent parts filled in)."""
    content = copy.deepcopy(STATEMENT)
    oidc = bool(settings.LOUPE_OIDC_ENABLED)
    for method in content["authentication"]:
        method["enabled"] = oidc if method["scheme"] == "Bearer OIDC access token" else True
    origins = list(settings.LOUPE_DICOMWEB_CORS_ORIGINS)
    cors: dict[str, Any] = {"enabled": bool(origins), "credentials": False}
    if origins and request.user.is_authenticated:
        cors["origins"] = origins
    content["cors"] = cors
    return content


def _wants_html(request: HttpRequest) -> bool:
    if request.GET.get("format") == "json":
        return False
    accept = request.headers.get("Accept", "")
    html_at = accept.find("text/html")
    json_at = accept.find("application/json")
    return html_at != -1 and (json_at == -1 or html_at < json_at)


@require_safe
def statement(request: HttpRequest) -> HttpResponse:
    content = statement_for(request)
    if _wants_html(request):
        sections = [
            {
                "service": service,
                "details": [
                    (key.replace("_", " ").capitalize(), value)
                    for key, value in service.items()
                    if key not in ("name", "transaction", "resources")
                ],
            }
            for service in content["services"]
        ]
        response = render(
            request,
            "viewer/dicomweb_conformance.html",
            {"statement": content, "sections": sections},
        )
    else:
        response = JsonResponse(content, json_dumps_params={"indent": 2})
    response["Vary"] = "Accept, Cookie, Authorization"
    return response
