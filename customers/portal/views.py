"""The customer portal's pages (top layer: reads metering and billing too).

Every page starts from the signed-in person's own account
(:func:`customers.selectors.customer_for_user`); a person without one gets 403, and
records are looked up only within the account, so another account's request is not
found (404). Changes go through ``customers.services`` (audited, channel ``portal``
from the middleware). The money pages (bills, payments, receipts, statement, pay)
are billing's, in :mod:`billing.collections.portal`; these pages link to them.
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from billing import ledger
from billing.models import Invoice
from billing.payments.allocation import open_invoices
from customers import services
from customers.models import Customer, ServiceRequest
from customers.phones import display_phone
from customers.portal import forecast as forecasting
from customers.portal import inbox, usage
from customers.portal.forms import AgentMessageForm, ProfileForm, RequestForm
from customers.selectors import customer_for_user
from mcoms.core import audit, clock
from mcoms.core.models import AuditEvent, User
from mcoms.core.roles import Role
from mcoms.core.selectors import staff_of_site
from metering.selectors import meters_of_customer
from notifications import preferences

SIGN_IN = "selfservice:portal-sign-in"
ZERO = Decimal(0)

portal_login_required = login_required(login_url=SIGN_IN)


def _me(request: HttpRequest) -> Customer:
    customer = customer_for_user(request.user)
    if customer is None:
        raise PermissionDenied
    return customer


def _page(request: HttpRequest, template: str, customer: Customer, section: str, **context):
    return render(
        request,
        f"customers/portal/{template}",
        {"customer": customer, "section": section, "currency": customer.site.currency, **context},
    )


# --- home -------------------------------------------------------------------------------------


def money_summary(customer: Customer) -> dict:
    """What is owed, how much of it bills ask for, by when, and the latest bill."""
    owed = ledger.customer_balance(customer)
    bills = open_invoices(customer)
    due = min(sum((amount for _, amount in bills), ZERO), max(owed, ZERO))
    dates = [inv.due_on for inv, _ in bills if inv.due_on]
    latest = (
        Invoice.objects.filter(customer=customer, kind=Invoice.Kind.INVOICE)
        .order_by("-issued_on", "-id")
        .first()
    )
    return {
        "owed": owed,
        "credit": -owed if owed < 0 else ZERO,
        "due": due,
        "due_on": min(dates) if dates and due > 0 else None,
        "latest_bill": latest,
    }


@portal_login_required
def home(request: HttpRequest) -> HttpResponse:
    """The account at a glance: money, this month's usage and forecast, quick links."""
    customer = _me(request)
    now = clock.now()
    days = usage.by_day(customer, now=now)
    context = {
        **money_summary(customer),
        "days": days,
        "forecast": forecasting.forecast(customer, now=now),
        "meters": meters_of_customer(customer),
        "requests": customer.requests.all()[:3],
        "one_time_pin": request.session.pop("portal_one_time_pin", False),
        "no_pin": request.session.pop("portal_no_pin", False),
    }
    return _page(request, "home.html", customer, "home", **context)


# --- usage and forecast -------------------------------------------------------------------------


@portal_login_required
def usage_page(request: HttpRequest) -> HttpResponse:
    """Consumption by day (this month and the last) and by month (a year and the one before)."""
    customer = _me(request)
    now = clock.now()
    context = {
        "days": usage.by_day(customer, now=now),
        "months": usage.by_month(customer, now=now),
    }
    return _page(request, "usage.html", customer, "usage", **context)


@portal_login_required
def forecast_page(request: HttpRequest) -> HttpResponse:
    """This month's bill (or prepaid spend) forecast, its lines, and the method in words."""
    customer = _me(request)
    result = forecasting.forecast(customer, now=clock.now())
    context = {"f": result, "recent_days": forecasting.RECENT_DAYS}
    return _page(request, "forecast.html", customer, "forecast", **context)


# --- profile ------------------------------------------------------------------------------------


def _reminders_on(customer: Customer) -> bool:
    return not preferences.opted_out(customer.phone)


def set_reminders(customer: Customer, wanted: bool) -> bool:
    """Opt the customer's phone in or out of non-essential messages (audited); True if changed."""
    before = _reminders_on(customer)
    if wanted == before:
        return False
    if wanted:
        preferences.opt_in(customer.phone)
    else:
        preferences.opt_out(customer.phone, reason="customer portal")
    audit.record(
        AuditEvent.Action.UPDATE,
        customer,
        before={"sms_reminders": before},
        after={"sms_reminders": wanted},
        site=customer.site_id,
        note="message preference",
    )
    return True


@portal_login_required
def profile(request: HttpRequest) -> HttpResponse:
    """The details a customer may change themselves."""
    customer = _me(request)
    initial = {
        "alt_phone": customer.alt_phone,
        "language": customer.language,
        "location": customer.location,
        "reminders": _reminders_on(customer),
    }
    form = ProfileForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                services.customer_update(
                    customer=customer,
                    alt_phone=data["alt_phone"].strip(),
                    language=data["language"],
                    location=data["location"].strip(),
                )
                set_reminders(customer, data["reminders"])
        except ValidationError as exc:
            _errors_to_form(form, exc)
        else:
            messages.success(request, "Your details are saved.")
            return redirect("customers:portal-profile")
        customer.refresh_from_db()
    context = {"form": form, "phone_display": display_phone(customer.phone)}
    return _page(request, "profile.html", customer, "profile", **context)


def _errors_to_form(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for name, errors in exc.message_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


# --- requests -----------------------------------------------------------------------------------


@portal_login_required
def requests_page(request: HttpRequest) -> HttpResponse:
    """The customer's requests with their status, and a form for a new one."""
    customer = _me(request)
    form = RequestForm(request.POST or None, customer=customer)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            created = services.service_request_create(
                customer=customer,
                kind=data["kind"],
                description=data["description"].strip(),
                requested_package=data["requested_package"],
                channel="portal",
            )
        except ValidationError as exc:
            _errors_to_form(form, exc)
        else:
            messages.success(
                request, f"Request {services.request_reference(created)} is sent. We will reply."
            )
            return redirect("customers:portal-request", pk=created.pk)
    rows = list(
        customer.requests.select_related("requested_package").prefetch_related("events")[:50]
    )
    for row in rows:
        events = list(row.events.all())
        row.last_change = events[-1].at if events else row.updated_at
    context = {"form": form, "rows": rows}
    return _page(request, "requests.html", customer, "requests", **context)


@portal_login_required
def request_page(request: HttpRequest, pk: int) -> HttpResponse:
    """One of the customer's requests and its history."""
    customer = _me(request)
    found = get_object_or_404(
        ServiceRequest.objects.filter(customer=customer).select_related("requested_package"), pk=pk
    )
    context = {
        "r": found,
        "reference": services.request_reference(found),
        "events": [
            (e, _status_label(e.from_status), _status_label(e.to_status))
            for e in found.events.all()
        ],
    }
    return _page(request, "request.html", customer, "requests", **context)


def _status_label(status: str) -> str:
    return ServiceRequest.Status(status).label if status in ServiceRequest.Status.values else ""


# --- the field agent ----------------------------------------------------------------------------


def field_agent_of(customer: Customer) -> User | None:
    """The field agent who last handled one of the customer's requests, else the site's first."""
    agents = staff_of_site(customer.site, {Role.FIELD_AGENT})
    last = (
        customer.requests.filter(assigned_to__in=agents)
        .order_by("-updated_at", "-id")
        .values_list("assigned_to", flat=True)
        .first()
    )
    if last is not None:
        return agents.get(pk=last)
    return agents.order_by("first_name", "last_name", "pk").first()


@portal_login_required
def contact(request: HttpRequest) -> HttpResponse:
    """The field agent's name and phone, and a message to them kept as a service request."""
    customer = _me(request)
    agent = field_agent_of(customer)
    form = AgentMessageForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        with transaction.atomic():
            created = services.service_request_create(
                customer=customer,
                kind=data["kind"],
                description=f"Message to the field agent: {data['message'].strip()}",
                channel="portal",
            )
            if agent is not None:
                services.service_request_assign(request=created, to=agent)
        who = agent.get_full_name() if agent else "our staff"
        messages.success(
            request,
            f"Your message is sent to {who} as request {services.request_reference(created)}.",
        )
        return redirect("customers:portal-request", pk=created.pk)
    context = {
        "agent": agent,
        "agent_phone": display_phone(agent.phone) if agent and agent.phone else "",
        "form": form,
    }
    return _page(request, "contact.html", customer, "contact", **context)


# --- messages -----------------------------------------------------------------------------------


@portal_login_required
def notifications_page(request: HttpRequest) -> HttpResponse:
    """The messages we sent the customer, newest first, with what became of each."""
    customer = _me(request)
    rows = inbox.messages_for(customer)[: inbox.SHOWN]
    context = {"rows": [inbox.shown(m, customer.site.zone) for m in rows]}
    return _page(request, "notifications.html", customer, "notifications", **context)
