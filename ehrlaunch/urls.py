from django.urls import path

from ehrlaunch import views

app_name = "ehrlaunch"

urlpatterns = [
    path("launch", views.launch, name="launch"),
    path("IHEInvokeImageDisplay", views.invoke_image_display, name="iid"),
    path("iid/continue", views.iid_continue, name="iid-continue"),
    path("popup/start", views.popup_start, name="popup-start"),
    path("popup/done", views.popup_done, name="popup-done"),
    path("handoff", views.handoff, name="handoff"),
]
