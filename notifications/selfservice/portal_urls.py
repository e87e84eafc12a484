"""The customer portal's sign-in pages (included by ``notifications.selfservice.urls``)."""

from django.urls import path

from notifications.selfservice import portal_auth

urlpatterns = [
    path("portal/sign-in/", portal_auth.sign_in_pin, name="portal-sign-in"),
    path("portal/sign-in/code/", portal_auth.sign_in_code, name="portal-sign-in-code"),
    path("portal/sign-in/account/", portal_auth.choose_account, name="portal-choose"),
]
