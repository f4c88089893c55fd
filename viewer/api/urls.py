from django.urls import path

from viewer.api import files, measurements, patients, priors, reports, shares, views
from viewer.api.hanging import study_hanging_protocols

urlpatterns = [
    path("instances", views.instances, name="api-instances"),
    path("studies/<str:study>", views.study_metadata, name="api-study"),
    path(
        "studies/<str:study>/series/<str:series>/instances/<str:instance>",
        views.instance_metadata,
        name="api-instance",
    ),
    path(
        "studies/<str:study>/series/<str:series>/instances/<str:instance>/file",
        files.instance_file,
        name="api-instance-file",
    ),
    path("measurements", measurements.MeasurementsView.as_view(), name="api-measurements"),
    path(
        "measurements/<str:measurement>",
        measurements.MeasurementView.as_view(),
        name="api-measurement",
    ),
    path(
        "studies/<str:study>/measurements",
        measurements.StudyMeasurementsView.as_view(),
        name="api-study-measurements",
    ),
    path(
        "studies/<str:study>/hanging-protocols",
        study_hanging_protocols,
        name="api-study-hanging-protocols",
    ),
    path(
        "studies/<str:study>/measurements/sr",
        reports.measurement_report,
        name="api-study-measurement-report",
    ),
    path("studies/<str:study>/priors", priors.study_priors, name="api-study-priors"),
    path("shares", shares.SharesView.as_view(), name="api-shares"),
    path("shares/<str:share>", shares.ShareView.as_view(), name="api-share"),
    path("shares/<str:share>/live", shares.live, name="api-share-live"),
    path("shares/<str:share>/presenter", shares.presenter, name="api-share-presenter"),
    path("shares/<str:share>/following", shares.following, name="api-share-following"),
    path("patient-links", patients.PatientLinksView.as_view(), name="api-patient-links"),
    path("patient-links/<str:link>", patients.PatientLinkView.as_view(), name="api-patient-link"),
    # <path:> because a Patient ID (LO) may hold a slash.
    path(
        "audit/patients/<path:patient_id>",
        views.PatientAuditView.as_view(),
        name="api-audit-patient",
    ),
]
