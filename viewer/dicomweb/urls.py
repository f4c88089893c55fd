from django.urls import path

from viewer.dicomweb import conformance, qido_urls, stow_urls, views, wado_urls

S = "studies/<str:study>"
SE = f"{S}/series/<str:series>"
I = f"{SE}/instances/<str:instance>"  # noqa: E741

urlpatterns = [
    path("", conformance.statement, name="dicomweb-conformance"),
    path(f"{S}/thumbnail", views.study_thumbnail, name="study-thumbnail"),
    path(f"{SE}/thumbnail", views.series_thumbnail, name="series-thumbnail"),
    path(f"{I}/thumbnail", views.instance_thumbnail, name="instance-thumbnail"),
    path(f"{I}/rendered", views.rendered, name="instance-rendered"),
    path(f"{I}/frames/<int:frame>/rendered", views.rendered, name="frame-rendered"),
    path(
        f"{I}/frames/<int:frame>/tiles/<int:level>/<int:column>/<int:row>",
        views.tile,
        name="frame-tile",
    ),
    # QIDO-RS search, WADO-RS retrieve, STOW-RS store: each module owns its routes.
    # STOW-RS first: its two routes take POST and pass GET on to QIDO-RS and WADO-RS.
    *stow_urls.urlpatterns,
    *qido_urls.urlpatterns,
    *wado_urls.urlpatterns,
]
