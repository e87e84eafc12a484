"""Staff pages for prepaid accounts: the list, one customer's page and the kWh quote."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from billing import ledger
from billing.models import BillingPolicy, ServicePackage, SupplyRequest
from billing.prepaid import tokens
from billing.prepaid.credit import due_until
from billing.prepaid.models import CreditAccount, CreditDraw, TokenPurchase
from customers.models import Customer
from mcoms.core import clock
from mcoms.core.permissions import require
from mcoms.core.roles import Cap
from mcoms.core.selectors import sites_visible_to

Mode = ServicePackage.PaymentMode
PREPAID = (Mode.PREPAID_CREDIT, Mode.PREPAID_TOKEN)


def _prepaid_customers(request: HttpRequest) -> QuerySet[Customer]:
    require(request.user, Cap.BILLING_VIEW)
    return Customer.objects.filter(
        site__in=sites_visible_to(request.user), package__payment_mode__in=PREPAID
    ).select_related("site", "package__tariff")


def _customer(request: HttpRequest, pk: int) -> Customer:
    customer = get_object_or_404(_prepaid_customers(request), pk=pk)
    require(request.user, Cap.BILLING_VIEW, customer.site_id)
    return customer


@login_required
def customer_list(request: HttpRequest) -> HttpResponse:
    customers = _prepaid_customers(request).order_by("site__name", "account_number")
    if request.GET.get("mode") in PREPAID:
        customers = customers.filter(package__payment_mode=request.GET["mode"])
    if request.GET.get("site"):
        customers = customers.filter(site_id=request.GET["site"])
    q = request.GET.get("q", "").strip()
    if q:
        customers = customers.filter(account_number__icontains=q) | customers.filter(
            last_name__icontains=q
        )
    page = Paginator(customers, 25).get_page(request.GET.get("page"))
    alerts = dict(
        CreditAccount.objects.filter(customer__in=list(page.object_list)).values_list(
            "customer_id", "alert"
        )
    )
    rows = [
        {
            "customer": c,
            "credit": -ledger.customer_balance(c),
            "alert": alerts.get(c.pk, ""),
        }
        for c in page.object_list
    ]
    context = {
        "page": page,
        "rows": rows,
        "q": q,
        "modes": [(m, Mode(m).label) for m in PREPAID],
        "sites": sites_visible_to(request.user),
        "params": request.GET,
    }
    return render(request, "prepaid/list.html", context)


@login_required
def customer_detail(request: HttpRequest, pk: int) -> HttpResponse:
    customer = _customer(request, pk)
    account = CreditAccount.objects.filter(customer=customer).first()
    context = {
        "customer": customer,
        "mode": customer.package.payment_mode,
        "credit": -ledger.customer_balance(customer),
        "currency": customer.site.currency,
        "low_line": BillingPolicy.for_site(customer.site).low_balance,
        "account": account,
        "due_until": due_until(clock.now()),
        "draws": CreditDraw.objects.filter(customer=customer).select_related("posting")[:30],
        "purchases": TokenPurchase.objects.filter(customer=customer).select_related("payment")[:30],
        "requests": SupplyRequest.objects.filter(customer=customer)[:10],
        "open_requests": SupplyRequest.objects.filter(
            customer=customer, status=SupplyRequest.Status.REQUESTED
        ),
        "quote_amount": "",
    }
    return render(request, "prepaid/customer.html", context)


@login_required
def quote(request: HttpRequest, pk: int) -> HttpResponse:
    """How many kWh an amount would buy now: the breakdown, or why it buys none."""
    customer = _customer(request, pk)
    amount = request.GET.get("amount", "").strip()
    context = {"customer": customer, "quote_amount": amount, "currency": customer.site.currency}
    if amount:
        try:
            context["quote"] = tokens.quote(customer, amount)
        except tokens.QuoteError as exc:
            context["quote_error"] = str(exc)
    template = "prepaid/_quote_result.html" if request.htmx else "prepaid/quote.html"
    return render(request, template, context)
