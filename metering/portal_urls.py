"""Routes of the commissioning portal (included by ``metering.urls`` under ``metering:``)."""

from django.urls import path

from metering import portal_views as views

urlpatterns = [
    path("gateways/register/", views.gateway_register, name="gateway_register"),
    path("gateways/<int:pk>/panel/", views.gateway_panel, name="gateway_panel"),
    path("gateways/<int:pk>/commands/", views.gateway_commands, name="gateway_commands"),
    path("gateways/<int:pk>/commands/new/", views.command_new, name="command_new"),
    path("gateways/<int:pk>/install/", views.bus_install, name="bus_install"),
    path(
        "gateways/<int:pk>/discoveries/<int:discovery_pk>/accept/",
        views.discovery_accept,
        name="discovery_accept",
    ),
    path(
        "gateways/<int:pk>/discoveries/<int:discovery_pk>/dismiss/",
        views.discovery_dismiss,
        name="discovery_dismiss",
    ),
    path("gateways/<int:pk>/token/rotate/", views.token_rotate, name="token_rotate"),
    path("gateways/<int:pk>/token/revoke/", views.token_revoke, name="token_revoke"),
    path("sites/<int:site_pk>/flagged/", views.flagged, name="flagged"),
    path(
        "readings/<int:meter_pk>/<int:epoch>/review/",
        views.reading_review,
        name="reading_review",
    ),
]
