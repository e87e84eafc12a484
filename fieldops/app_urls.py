"""The field agent app's forms and customer pages (mounted under ``/field/``)."""

from django.urls import path

from fieldops import app_meters, app_pwa, app_views

urlpatterns = [
    path("search/", app_views.search, name="search"),
    path("customers/new/", app_views.register, name="register"),
    path("customers/<int:pk>/", app_views.customer_card, name="customer"),
    path("customers/<int:pk>/pay/", app_views.pay, name="pay"),
    path("customers/<int:pk>/package/", app_views.package, name="package"),
    path("receipts/<int:pk>/", app_views.receipt, name="receipt"),
    path("meters/<int:pk>/read/", app_meters.read, name="read"),
    path("meters/<int:pk>/install/", app_meters.install, name="install"),
    path("install/", app_meters.installs, name="installs"),
    path("queue/", app_pwa.queue, name="queue"),
    path("offline/", app_pwa.offline_page, name="offline"),
    path("sw.js", app_pwa.service_worker, name="sw"),
    path("manifest.webmanifest", app_pwa.manifest, name="manifest"),
    path("icon-<int:size>.png", app_pwa.icon, name="icon"),
]
