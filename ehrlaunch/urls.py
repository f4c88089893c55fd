from django.urls import path

from ehrlaunch import views

app_name = "ehrlaunch"

urlpatterns = [
    path("launch", views.launch, name="launch"),
    path("smart", views.smart_launch, name="smart-launch"),
    path("smart/callback", views.smart_callback, name="smart-callback"),
    path("IHEInvokeImageDisplay", views.invoke_image_display, name="iid"),
    path("iid/continue", views.iid_continue, name="iid-continue"),
    path("popup/start", views.popup_start, name="popup-start"),
    path("popup/done", views.popup_done, name="popup-done"),
    path("handoff", views.handoff, name="handoff"),
]
