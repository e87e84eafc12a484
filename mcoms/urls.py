"""URL map: each app brings its own urls module."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from mcoms.core import views as core_views
from mcoms.ops import metrics as ops_metrics
from mcoms.security import views as security_views

urlpatterns = [
    path("", core_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    # Sign-in counts failures and locks (mcoms.security.signin), then asks for the second
    # factor of whoever has one; the admin site signs in through the same page.
    path("accounts/login/", security_views.StaffLoginView.as_view(), name="login"),
    path("accounts/login/code/", security_views.second_step, name="two-factor-sign-in"),
    path("accounts/two-factor/", security_views.setup, name="two-factor-setup"),
    path("admin/login/", RedirectView.as_view(pattern_name="login", query_string=True)),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password-reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "accounts/password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("audit/", include("mcoms.core.urls")),
    path("dashboard/", include("mcoms.dashboard.urls")),
    path("ops/", include("mcoms.ops.urls")),
    path("privacy/", include("mcoms.privacy.urls")),
    path("metrics", ops_metrics.metrics_view, name="metrics"),
    path("", include("customers.urls")),
    path("", include("metering.urls")),
    path("steering/", include("metering.steering.urls")),
    path("plant/", include("metering.plant.urls")),
    path("billing/", include("billing.urls")),
    path("payments/", include("billing.payments.urls")),
    path("prepaid/", include("billing.prepaid.urls")),
    path("collections/", include("billing.collections.urls")),
    path("", include("notifications.selfservice.urls")),
    path("field/", include("fieldops.urls")),
    path("notifications/", include("notifications.urls")),
    path("api/v1/", include("mcoms.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("admin/", admin.site.urls),
]
