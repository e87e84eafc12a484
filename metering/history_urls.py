"""Routes of the history import: upload on a gateway, then the result."""

from django.urls import path

from metering import history_views

urlpatterns = [
    path("gateways/<int:pk>/history/", history_views.history_import, name="history_import"),
    path(
        "gateways/<int:pk>/history/<str:token>/",
        history_views.history_result,
        name="history_result",
    ),
]
