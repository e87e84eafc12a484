"""The field agent app's customer pages: search, the customer card, cash, registering, packages.

Pages are small server-rendered HTML for a 360 px phone on a slow connection. Every form
that changes something is marked ``data-offline`` in its template and wrapped in
:func:`fieldops.offline.offline_safe`, so a form sent twice (a lost answer, a queue replayed
after a day offline) is applied once. Views answer a redirect when the form was applied and
re-render it with its errors otherwise; that is how :mod:`fieldops.offline` tells the two
apart. Writes go through the owning app's services (payments, customers), which audit them.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from billing import ledger
from billing.models import ServicePackage
from billing.payments import receipts
from billing.payments import services as payments
from billing.payments.models import Payment
from billing.prepaid import credit
from billing.selectors import packages_on_offer
from customers import access
from customers import services as customer_services
from customers.models import Customer, ServiceRequest
from customers.phones import normalise_phone
from customers.selectors import customer_search, customers_visible_to, requests_visible_to
from fieldops import offline
from fieldops.forms import CashForm, PackageForm, RegisterForm
from mcoms.core import clock
from mcoms.core.charts import Series, chart
from mcoms.core.permissions import require
from mcoms.core.roles import Cap
from mcoms.core.selectors import can_on_site, sites_visible_to
from metering import commissioning, consumption, manual_reads
from metering.models import Meter
from metering.selectors import current_customer, meters_of_customer, meters_visible_to

USAGE_DAYS = 14


def _field_user(request: HttpRequest) -> None:
    if not request.user.can(Cap.CUSTOMERS_VIEW):
        raise PermissionDenied


def _errors(exc: ValidationError) -> str:
    return " ".join(exc.messages)


def find(user, query: str, limit: int = 20) -> list[Customer]:
    """Customers in the user's scope matching a name, phone, account or meter serial."""
    query = (query or "").strip()
    if not query:
        return []
    found = list(customer_search(user, query)[:limit])
    if len(query) >= 4:
        seen = {c.pk for c in found}
        visible = customers_visible_to(user)
        for meter in meters_visible_to(user).filter(serial__icontains=query)[:limit]:
            customer = current_customer(meter)
            if customer is None or customer.pk in seen:
                continue
            if visible.filter(pk=customer.pk).exists():
                found.append(customer)
                seen.add(customer.pk)
    return found[:limit]


@login_required
def search(request: HttpRequest) -> HttpResponse:
    _field_user(request)
    query = request.GET.get("q", "")
    results = find(request.user, query) if query.strip() else None
    if results is not None:
        access.record(
            request, access.Action.SEARCH, results, what="field app search", query=f"q={query}"
        )
    context = {"q": query, "results": results}
    template = "fieldops/app/search.html#results" if request.htmx else "fieldops/app/search.html"
    return render(request, template, context)


def _customer(request: HttpRequest, pk: int) -> Customer:
    _field_user(request)
    return get_object_or_404(customers_visible_to(request.user), pk=pk)


def _usage_chart(customer: Customer, now: dt.datetime):
    zone = customer.site.zone
    end = dt.datetime.combine(now.astimezone(zone).date() + dt.timedelta(days=1), dt.time(), zone)
    start = end - dt.timedelta(days=USAGE_DAYS)
    usage = consumption.customer_usage(customer, by=consumption.DAY, start=start, end=end)
    labels = [b.start.astimezone(zone).strftime("%d") for b in usage.buckets]
    values = [b.kwh for b in usage.buckets]
    graph = chart(
        labels,
        [Series("Used", values)],
        title=f"Last {USAGE_DAYS} days",
        unit="kWh",
        width=340,
        height=160,
        max_x_labels=7,
    )
    return graph, usage.kwh


def _meter_rows(customer: Customer, now: dt.datetime) -> list[dict]:
    rows = []
    meters = meters_of_customer(customer).select_related("gateway", "comms", "steering_state")
    for meter in meters:
        comms = getattr(meter, "comms", None)
        relay = getattr(meter, "steering_state", None)  # what steering last knew, if anything
        online = commissioning.is_online(comms, meter.gateway, now) if meter.gateway_id else False
        rows.append(
            {
                "meter": meter,
                "online": online,
                "last_ts": comms.last_reading_ts if comms else None,
                "values": commissioning.describe_values(comms.last_values if comms else None)[:2],
                "relay": relay if relay is not None and relay.relay != "unknown" else None,
                "hand": (hand := next(iter(manual_reads.manual_readings_of(meter, 1)), None)),
                "hand_waiting": hand is not None and manual_reads.is_waiting(hand),
                "can_read": meter.status in ("installed", "commissioned"),
                "can_install": meter.status == "shipped",
            }
        )
    return rows


def balance_facts(customer: Customer) -> dict:
    """What the customer owes or holds, and whether their supply is off (prepaid)."""
    balance = ledger.customer_balance(customer)
    package = customer.package
    prepaid = package is not None and package.payment_mode != ServicePackage.PaymentMode.POSTPAID
    return {
        "balance": balance,
        "due": balance if balance > 0 else 0,
        "credit": -balance if balance < 0 else 0,
        "currency": customer.site.currency,
        "prepaid": prepaid,
        "supply_off": credit.supply_off(customer),
    }


@login_required
def customer_card(request: HttpRequest, pk: int) -> HttpResponse:
    customer = _customer(request, pk)
    access.record(request, access.Action.VIEW, [customer], what="field app customer card")
    now = clock.now()
    usage_chart, used = _usage_chart(customer, now)
    context = {
        "customer": customer,
        "money": balance_facts(customer),
        "chart": usage_chart,
        "used": used,
        "meters": _meter_rows(customer, now),
        "payments": customer.payments.order_by("-received_at")[:3],
        "can_pay": can_on_site(request.user, Cap.PAYMENTS_RECORD, customer.site_id),
        "can_edit": can_on_site(request.user, Cap.CUSTOMERS_EDIT, customer.site_id),
        "can_field": can_on_site(request.user, Cap.METERS_FIELD, customer.site_id),
    }
    return render(request, "fieldops/app/customer.html", context)


@login_required
@offline.offline_safe("cash_payment")
def pay(request: HttpRequest, pk: int) -> HttpResponse:
    customer = _customer(request, pk)
    require(request.user, Cap.PAYMENTS_RECORD, customer.site_id)
    form = CashForm(request.POST or None)
    form.fields["amount"].label = f"Amount received ({customer.site.currency})"
    if request.method == "POST":
        if form.is_valid():
            try:
                payment = payments.record_cash(
                    customer=customer,
                    amount=form.cleaned_data["amount"],
                    agent=request.user,
                    note=form.cleaned_data["note"],
                )
            except ValidationError as exc:
                form.add_error("amount", _errors(exc))
            else:
                offline.applied(request, f"payment:{payment.pk}")
                messages.success(
                    request,
                    f"Receipt {payment.receipt_number}: "
                    f"{receipts.format_money(payment.amount, payment.currency)} {payment.currency} "
                    "received. The customer gets an SMS receipt.",
                )
                return redirect("fieldops:receipt", pk=payment.pk)
        offline.rejected(request, offline.form_errors(form))
    context = {"customer": customer, "form": form, "money": balance_facts(customer)}
    return render(request, "fieldops/app/pay.html", context)


@login_required
def receipt(request: HttpRequest, pk: int) -> HttpResponse:
    payment = get_object_or_404(Payment.objects.select_related("customer", "site", "agent"), pk=pk)
    own = payment.agent_id == request.user.pk
    if not (own or can_on_site(request.user, Cap.BILLING_VIEW, payment.site_id)):
        raise PermissionDenied
    return render(request, "fieldops/app/receipt.html", receipts.context(payment))


def _register_sites(user):
    """The sites where the person may register customers (all of theirs, for field roles)."""
    return sites_visible_to(user) if user.can(Cap.CUSTOMERS_EDIT) else sites_visible_to(user).none()


@login_required
@offline.offline_safe("customer_register")
def register(request: HttpRequest) -> HttpResponse:
    require(request.user, Cap.CUSTOMERS_EDIT)
    sites = _register_sites(request.user)
    form = RegisterForm(request.POST or None, sites=sites, packages=packages_on_offer())
    warnings: list[str] = []
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            warnings = customer_services.duplicate_phone_warnings(_normal_phone(data))
            if warnings and not data["phone_ok"]:
                form.add_error(
                    "phone", " ".join(warnings) + " If that is right, tick the box below."
                )
            else:
                try:
                    saved = customer_services.customer_create(
                        site=data["site"],
                        first_name=data["first_name"],
                        last_name=data["last_name"],
                        phone=data["phone"],
                        location=data["location"],
                        id_number=data["id_number"],
                        package=data["package"],
                    )
                except ValidationError as exc:
                    _add_errors(form, exc)
                else:
                    customer = saved.customer
                    offline.applied(request, f"customer:{customer.pk}")
                    for warning in saved.warnings:
                        messages.warning(request, warning)
                    messages.success(
                        request,
                        f"{customer.full_name} registered as account {customer.account_number}.",
                    )
                    return redirect("fieldops:customer", pk=customer.pk)
        offline.rejected(request, offline.form_errors(form))
    return render(request, "fieldops/app/register.html", {"form": form, "warnings": warnings})


def _normal_phone(data: dict) -> str:
    try:
        return normalise_phone(data["phone"], default_region=data["site"].country)
    except ValidationError:
        return data["phone"]


def _add_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


def _open_package_request(user, customer: Customer, package) -> ServiceRequest | None:
    return (
        requests_visible_to(user)
        .filter(
            customer=customer,
            kind=ServiceRequest.Kind.PACKAGE_CHANGE,
            requested_package=package,
            status__in=[ServiceRequest.Status.OPEN, ServiceRequest.Status.IN_PROGRESS],
        )
        .first()
    )


def change_package(user, customer: Customer, package, note: str = "") -> str:
    """Put ``customer`` on ``package``; returns what was done, for the agent.

    When the customer asked for this package (an open package-change request), resolving
    the request applies it, so the customer hears their request was done. Otherwise the
    account is updated directly, as the staff edit page does. Both are audited.
    """
    request = _open_package_request(user, customer, package)
    if request is not None:
        customer_services.service_request_transition(
            request=request,
            status=ServiceRequest.Status.RESOLVED,
            note=note or f"package changed to {package.name} by the field agent",
        )
        return f"Request {customer_services.request_reference(request)} resolved: "
    customer_services.customer_update(customer=customer, package=package)
    return ""


@login_required
@offline.offline_safe("package_change")
def package(request: HttpRequest, pk: int) -> HttpResponse:
    customer = _customer(request, pk)
    require(request.user, Cap.CUSTOMERS_EDIT, customer.site_id)
    form = PackageForm(
        request.POST or None,
        packages=packages_on_offer(),
        initial={"package": customer.package_id},
    )
    if request.method == "POST":
        if form.is_valid():
            chosen = form.cleaned_data["package"]
            if chosen.pk == customer.package_id:
                form.add_error("package", f"{customer.full_name} is already on {chosen.name}.")
            else:
                try:
                    done = change_package(request.user, customer, chosen, form.cleaned_data["note"])
                except ValidationError as exc:
                    _add_errors(form, exc)
                else:
                    offline.applied(request, f"customer:{customer.pk}")
                    messages.success(
                        request, f"{done}{customer.full_name} is now on {chosen.name}."
                    )
                    return redirect("fieldops:customer", pk=customer.pk)
        offline.rejected(request, offline.form_errors(form))
    context = {"customer": customer, "form": form}
    return render(request, "fieldops/app/package.html", context)


def meter_for_field(request: HttpRequest, pk: int) -> Meter:
    """A meter on one of the person's sites on which they may do field work."""
    meter = get_object_or_404(meters_visible_to(request.user), pk=pk)
    require(request.user, Cap.METERS_FIELD, meter.site_id)
    return meter
