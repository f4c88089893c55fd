"""Routes of the DICOMweb QIDO-RS resources (PS3.18 §10.6), included by viewer/dicomweb/urls.py.

``studies`` is also STOW-RS's route: its pattern comes first and passes GET and HEAD on
to the view here (``viewer.dicomweb.stow.by_method`` finds it by its route string)."""

from __future__ import annotations

from django.urls import URLPattern, path

from viewer.dicomweb import qido

S = "studies/<str:study>"

urlpatterns: list[URLPattern] = [
    path("studies", qido.search_studies, name="qido-studies"),
    path("series", qido.search_series, name="qido-series"),
    path("instances", qido.search_instances, name="qido-instances"),
    path(f"{S}/series", qido.search_study_series, name="qido-study-series"),
    path(f"{S}/instances", qido.search_study_instances, name="qido-study-instances"),
    path(
        f"{S}/series/<str:series>/instances",
        qido.search_series_instances,
        name="qido-series-instances",
    ),
]
