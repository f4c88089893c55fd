"""Routes of the DICOMweb QIDO-RS resources (PS3.18), included by viewer/dicomweb/urls.py."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
