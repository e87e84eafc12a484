"""The customer portal's pages under ``/portal/`` (names in the ``customers`` namespace).

The portal's home is ``customers:portal`` (``/portal/``, in ``customers.urls``); the
sign-in pages are ``selfservice:portal-sign-in`` and ``selfservice:portal-sign-in-code``.
"""

from django.urls import path

from customers.portal import views

urlpatterns = [
    path("usage/", views.usage_page, name="portal-usage"),
    path("forecast/", views.forecast_page, name="portal-forecast"),
    path("profile/", views.profile, name="portal-profile"),
    path("requests/", views.requests_page, name="portal-requests"),
    path("requests/<int:pk>/", views.request_page, name="portal-request"),
    path("agent/", views.contact, name="portal-agent"),
    path("messages/", views.notifications_page, name="portal-messages"),
]
