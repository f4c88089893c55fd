from django.urls import path, re_path

from viewer.fhir import views

urlpatterns = [
    path("metadata", views.metadata, name="fhir-metadata"),
    path("ImagingStudy", views.imaging_study_search, name="fhir-imagingstudy-search"),
    path("ImagingStudy/<str:study>", views.imaging_study_read, name="fhir-imagingstudy"),
    path("Endpoint/<str:endpoint>", views.endpoint_read, name="fhir-endpoint"),
    re_path(r"^(?P<rest>.*)$", views.unknown, name="fhir-unknown"),
]
