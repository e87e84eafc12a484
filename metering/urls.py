from django.urls import include, path

from metering import inventory_views, views

app_name = "metering"
urlpatterns = [
    path("", include("metering.portal_urls")),
    path("", include("metering.history_urls")),
    path("", include("metering.alert_urls")),
    path("meters/", views.meter_list, name="meters"),
    path("meters/new/", views.meter_create, name="meter_create"),
    path("meters/import/", inventory_views.import_upload, name="import"),
    path("meters/import/<str:token>/", inventory_views.import_preview, name="import_preview"),
    path("meters/export.<str:fmt>", inventory_views.export, name="export"),
    path("meters/<int:pk>/", views.meter_detail, name="meter"),
    path("meters/<int:pk>/assign/", views.meter_assign, name="meter_assign"),
    path("meters/<int:pk>/step/", views.meter_step, name="meter_step"),
    path("meters/<int:pk>/serve/", views.meter_serve, name="meter_serve"),
    path("customers/<int:customer_pk>/meters/", views.customer_meters, name="customer_meters"),
    path("gateways/", views.gateway_list, name="gateways"),
    path("gateways/<int:pk>/", views.gateway_detail, name="gateway"),
]
