"""Navigation by role: each person sees the menu entries their role can use."""

from __future__ import annotations

from django.http import HttpRequest
from django.urls import reverse

from mcoms.core.roles import FIELD, TWO_FACTOR, Cap, Role

# (label, url name, capability or role test)
_ENTRIES = [
    ("Dashboard", "dashboard:home", lambda u: u.role not in (Role.CUSTOMER,)),
    ("Field app", "fieldops:home", lambda u: u.role in FIELD),
    ("My tasks", "fieldops:tasks", lambda u: u.role in FIELD),
    ("Team", "fieldops:team", lambda u: u.can(Cap.REQUESTS_HANDLE)),
    ("Customers", "customers:list", lambda u: u.can(Cap.CUSTOMERS_VIEW)),
    ("Requests", "customers:requests", lambda u: u.can(Cap.CUSTOMERS_VIEW)),
    ("Meters", "metering:meters", lambda u: u.can(Cap.METERS_VIEW)),
    ("Gateways", "metering:gateways", lambda u: u.can(Cap.METERS_VIEW)),
    ("Alerts", "metering:alerts", lambda u: u.can(Cap.METERS_VIEW)),
    ("Plant", "plant:sites", lambda u: u.can(Cap.METERS_VIEW)),
    ("Plant log", "plant:log_new", lambda u: u.can(Cap.METERS_FIELD)),
    ("Relay commands", "steering:commands", lambda u: u.can(Cap.METERS_EDIT)),
    ("Field jobs", "steering:field_jobs", lambda u: u.can(Cap.METERS_FIELD)),
    # Invoices, agents' cash and settlements are reached from billing runs and payments.
    ("Billing runs", "billing:run-list", lambda u: u.can(Cap.BILLING_VIEW)),
    ("Payments", "payments:list", lambda u: u.can(Cap.BILLING_VIEW)),
    ("Take a payment", "payments:field", lambda u: u.can(Cap.PAYMENTS_RECORD) and u.role in FIELD),
    ("Prepaid", "prepaid:list", lambda u: u.can(Cap.BILLING_VIEW)),
    ("Arrears", "collections:arrears", lambda u: u.can(Cap.BILLING_VIEW)),
    ("Ledger", "collections:ledger", lambda u: u.can(Cap.LEDGER_CLOSE)),
    (
        "Tariffs",
        "billing:tariff-list",
        lambda u: u.can(Cap.BILLING_VIEW) or u.can(Cap.PACKAGES_MANAGE),
    ),
    ("Broadcasts", "notifications:broadcast-list", lambda u: u.can(Cap.MESSAGES_SEND)),
    ("Messages", "notifications:templates", lambda u: u.can(Cap.MESSAGES_VIEW)),
    ("Audit", "core:audit", lambda u: u.can(Cap.AUDIT_VIEW)),
    ("Data access", "customers:access_log", lambda u: u.can(Cap.AUDIT_VIEW)),
    ("Operations", "ops:home", lambda u: u.role == Role.ADMIN),
    ("Two-factor", "two-factor-setup", lambda u: u.is_superuser or u.role in TWO_FACTOR),
    ("My account", "customers:portal", lambda u: u.role == Role.CUSTOMER),
    ("Usage", "customers:portal-usage", lambda u: u.role == Role.CUSTOMER),
    ("My bills", "collections:my_bills", lambda u: u.role == Role.CUSTOMER),
    ("Pay", "collections:my_pay", lambda u: u.role == Role.CUSTOMER),
    ("My requests", "customers:portal-requests", lambda u: u.role == Role.CUSTOMER),
    ("My messages", "customers:portal-messages", lambda u: u.role == Role.CUSTOMER),
    ("Profile", "customers:portal-profile", lambda u: u.role == Role.CUSTOMER),
]


def navigation(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav": []}
    nav = [
        {"label": label, "url": reverse(name), "active": request.path.startswith(reverse(name))}
        for label, name, allowed in _ENTRIES
        if allowed(user)
    ]
    if user.is_staff:
        nav.append({"label": "Admin", "url": reverse("admin:index"), "active": False})
    return {"nav": nav}
