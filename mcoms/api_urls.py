"""The REST API under /api/v1/: each app registers its endpoints."""

from django.urls import include, path

urlpatterns = [
    path("", include("customers.api")),
    path("", include("metering.api")),
    path("", include("metering.edge_api")),
    path("", include("metering.plant.api")),
    path("", include("metering.consumption_api")),
]
