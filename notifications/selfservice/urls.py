"""USSD and SMS self-service: the providers' callbacks (mounted at the site root).

With ``NOTIFICATIONS_CALLBACK_SECRET`` set, only the ``…/<secret>/…`` forms answer;
without it, only the plain ones do.
"""

from django.urls import include, path

from notifications.selfservice import views

app_name = "selfservice"

urlpatterns = [
    path("ussd/africastalking/", views.ussd_africastalking, name="ussd-africastalking"),
    path(
        "ussd/<str:secret>/africastalking/",
        views.ussd_africastalking,
        name="ussd-africastalking-secret",
    ),
    path("sms/africastalking/", views.sms_africastalking, name="sms-africastalking"),
    path(
        "sms/<str:secret>/africastalking/",
        views.sms_africastalking,
        name="sms-africastalking-secret",
    ),
    path("sms/twilio/", views.sms_twilio, name="sms-twilio"),
    path("sms/<str:secret>/twilio/", views.sms_twilio, name="sms-twilio-secret"),
    # The customer portal's sign-in (phone and PIN, or a code by SMS).
    path("", include("notifications.selfservice.portal_urls")),
]
