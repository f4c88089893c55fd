from django.urls import path

from viewer.api import views

urlpatterns = [
    path("instances", views.InstancesView.as_view(), name="api-instances"),
]
