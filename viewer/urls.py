from django.urls import path

from viewer import views

urlpatterns = [
    path("", views.worklist, name="worklist"),
    path("upload/", views.upload, name="upload"),
    path("studies/<str:study_instance_uid>/", views.study, name="study"),
    path("viewer/<str:study_instance_uid>/", views.viewer, name="viewer"),
]
