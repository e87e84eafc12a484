"""Routes of the alert pages, the usage chart and outage incidents (inside ``metering``)."""

from django.urls import path

from metering import alert_views

urlpatterns = [
    path("alerts/", alert_views.alert_list, name="alerts"),
    path("alerts/<int:pk>/", alert_views.alert_detail, name="alert"),
    path("alerts/<int:pk>/acknowledge/", alert_views.alert_acknowledge, name="alert_acknowledge"),
    path("alerts/<int:pk>/resolve/", alert_views.alert_resolve, name="alert_resolve"),
    path("meters/<int:pk>/usage-chart/", alert_views.meter_chart, name="meter_chart"),
    path("incidents/", alert_views.incident_list, name="incidents"),
    path("incidents/<int:pk>/", alert_views.incident_detail, name="incident"),
    path(
        "sites/<int:site_pk>/watch-settings/",
        alert_views.watch_settings_edit,
        name="watch_settings",
    ),
]
