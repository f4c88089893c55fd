"""Routes of the DICOMweb STOW-RS resources (PS3.18), included by viewer/dicomweb/urls.py.

STOW-RS shares its two URLs with QIDO-RS (``GET /studies``) and WADO-RS
(``GET /studies/{study}``): these patterns come first in viewer/dicomweb/urls.py and
pass GET and HEAD on to the view of the same route (``stow.by_method``)."""

from __future__ import annotations

from django.urls import URLPattern, path

from viewer.dicomweb import stow

urlpatterns: list[URLPattern] = [
    path("studies", stow.by_method("studies"), name="stow-studies"),
    path("studies/<str:study>", stow.by_method("studies/<str:study>"), name="stow-study"),
]
