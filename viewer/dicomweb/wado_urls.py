"""Routes of the DICOMweb WADO-RS resources (PS3.18 §10.4), included by viewer/dicomweb/urls.py."""

from __future__ import annotations

from django.urls import URLPattern, path

from viewer.dicomweb import wado

S = "studies/<str:study>"
SE = f"{S}/series/<str:series>"
I = f"{SE}/instances/<str:instance>"  # noqa: E741

urlpatterns: list[URLPattern] = [
    path(S, wado.retrieve_study, name="wado-study"),
    path(f"{S}/metadata", wado.study_metadata, name="wado-study-metadata"),
    path(f"{S}/rendered", wado.study_rendered, name="wado-study-rendered"),
    path(f"{SE}/rendered", wado.series_rendered, name="wado-series-rendered"),
    path(SE, wado.retrieve_series, name="wado-series"),
    path(f"{SE}/metadata", wado.series_metadata, name="wado-series-metadata"),
    path(I, wado.retrieve_instance, name="wado-instance"),
    path(f"{I}/metadata", wado.instance_metadata, name="wado-instance-metadata"),
    path(f"{I}/frames/<str:frames>", wado.frames, name="wado-frames"),
    path(f"{I}/bulkdata/<path:path>", wado.bulkdata, name="wado-bulkdata"),
]
