from django.urls import path

from viewer import views

urlpatterns = [
    path("", views.worklist, name="worklist"),
    path("upload/", views.upload, name="upload"),
    path("shares/", views.shares_page, name="shares"),
    path("shares/<str:share_id>/revoke", views.share_revoke, name="share-revoke"),
    path("s/continue/", views.share_continue, name="share-continue"),
    path("s/<str:token>", views.share_link, name="share-link"),
    path("studies/<str:study_instance_uid>/", views.study, name="study"),
    path("viewer/<str:study_instance_uid>/", views.viewer, name="viewer"),
    path(
        "remote/<str:upstream_name>/<str:study_instance_uid>/",
        views.remote_study,
        name="remote-study",
    ),
    path(
        "remote/<str:upstream_name>/<str:study_instance_uid>/status",
        views.remote_status,
        name="remote-status",
    ),
]
