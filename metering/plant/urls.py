"""Plant pages (mounted at /plant/ by the root URL map)."""

from django.urls import path

from metering.plant import views

app_name = "plant"

urlpatterns = [
    path("", views.site_list, name="sites"),
    path("site/<int:pk>/", views.site_page, name="site"),
    path("site/<int:pk>/balance.<str:fmt>", views.balance_export, name="balance_export"),
    path("site/<int:pk>/assets/new/", views.asset_new, name="asset_new"),
    path("site/<int:pk>/thresholds/", views.settings_edit, name="settings"),
    path("log/", views.log_new, name="log_new"),
    path("log/<int:pk>/photo", views.log_photo, name="log_photo"),
    path("alerts/<int:pk>/resolve", views.alert_resolve, name="alert_resolve"),
]
