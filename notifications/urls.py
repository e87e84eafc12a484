"""Callback endpoints of the SMS providers (mounted under ``notifications/``).

With ``NOTIFICATIONS_CALLBACK_SECRET`` set, only the ``dlr/<secret>/…`` forms
answer; without it, only the plain ones do.
"""

from django.urls import path

from notifications import broadcast_views, delivery_reports, template_views

app_name = "notifications"

urlpatterns = [
    path("dlr/africastalking/", delivery_reports.africastalking_view, name="dlr-africastalking"),
    path("dlr/twilio/", delivery_reports.twilio_view, name="dlr-twilio"),
    path(
        "dlr/<str:secret>/africastalking/",
        delivery_reports.africastalking_view,
        name="dlr-africastalking-secret",
    ),
    path("dlr/<str:secret>/twilio/", delivery_reports.twilio_view, name="dlr-twilio-secret"),
    path("templates/", template_views.template_list, name="templates"),
    path(
        "templates/<slug:key>/<str:language>/<str:channel>/",
        template_views.template_preview,
        name="template-preview",
    ),
    path(
        "templates/<slug:key>/<str:language>/<str:channel>/edit/",
        template_views.template_edit,
        name="template-edit",
    ),
    path("broadcasts/", broadcast_views.broadcast_list, name="broadcast-list"),
    path("broadcasts/new/", broadcast_views.broadcast_new, name="broadcast-new"),
    path("broadcasts/<int:pk>/", broadcast_views.broadcast_detail, name="broadcast-detail"),
    path("broadcasts/<int:pk>/cancel/", broadcast_views.broadcast_cancel, name="broadcast-cancel"),
]
