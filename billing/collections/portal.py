"""The customer portal's money pages: my bills, payments and receipts, statement, pay.

Every page starts from the signed-in person's own account
(:func:`customers.selectors.customer_for_user`) and looks records up only within it,
so another account's invoice or receipt is simply not found (404).
"""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from billing import invoice_pdf, ledger
from billing.collections import ageing
from billing.collections.forms import PayForm
from billing.collections.money import local_today
from billing.collections.views import statement_response
from billing.models import Invoice
from billing.payments import receipts
from billing.payments import services as payment_services
from billing.payments.models import Payment, PaymentRequest
from customers.models import Customer
from customers.selectors import customer_for_user


def _me(request: HttpRequest) -> Customer:
    customer = customer_for_user(request.user)
    if customer is None:
        raise PermissionDenied
    return customer


def _summary(customer: Customer) -> dict:
    today = local_today(customer.site)
    open_rows = ageing.customer_open_invoices(customer, today)
    balance = ledger.customer_balance(customer)
    return {
        "customer": customer,
        "currency": customer.site.currency,
        "balance": balance,
        "credit": -balance if balance < 0 else 0,
        "open_rows": open_rows,
        "overdue": sum((r["open"] for r in open_rows if r["days_past_due"] > 0), 0),
    }


@login_required
def my_bills(request: HttpRequest) -> HttpResponse:
    customer = _me(request)
    bills = Invoice.objects.filter(customer=customer).order_by("-issued_on", "-id")
    open_by_id = {r["id"]: r["open"] for r in _summary(customer)["open_rows"]}
    rows = [(b, open_by_id.get(b.pk, 0)) for b in bills[:60]]
    return render(request, "collections/my_bills.html", {**_summary(customer), "rows": rows})


@login_required
def my_bill(request: HttpRequest, pk: int) -> HttpResponse:
    customer = _me(request)
    invoice = get_object_or_404(Invoice.objects.filter(customer=customer), pk=pk)
    open_now = next(
        (r["open"] for r in _summary(customer)["open_rows"] if r["id"] == invoice.pk), 0
    )
    context = {
        **_summary(customer),
        "invoice": invoice,
        "lines": invoice.lines.all(),
        "period_last": invoice.period_end - dt.timedelta(days=1) if invoice.period_end else None,
        "open_now": open_now,
        "allocations": invoice.allocations.select_related("payment", "credit_note"),
    }
    return render(request, "collections/my_bill.html", context)


@login_required
def my_bill_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    customer = _me(request)
    invoice = get_object_or_404(Invoice.objects.filter(customer=customer), pk=pk)
    response = HttpResponse(invoice_pdf.render(invoice), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{invoice.number}.pdf"'
    return response


@login_required
def my_payments(request: HttpRequest) -> HttpResponse:
    customer = _me(request)
    payments = Payment.objects.filter(customer=customer).order_by("-received_at", "-id")[:60]
    waiting = PaymentRequest.objects.filter(
        customer=customer, status=PaymentRequest.Status.PENDING
    ).order_by("-created_at")[:10]
    context = {**_summary(customer), "payments": payments, "waiting": waiting}
    return render(request, "collections/my_payments.html", context)


@login_required
def my_receipt(request: HttpRequest, pk: int) -> HttpResponse:
    customer = _me(request)
    payment = get_object_or_404(Payment.objects.filter(customer=customer), pk=pk)
    context = {
        **_summary(customer),
        "payment": payment,
        "allocations": payment.allocations.select_related("invoice"),
    }
    return render(request, "collections/my_receipt.html", context)


@login_required
def my_receipt_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    customer = _me(request)
    payment = get_object_or_404(Payment.objects.filter(customer=customer), pk=pk)
    response = HttpResponse(receipts.pdf(payment), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="receipt-{payment.receipt_number}.pdf"'
    return response


@login_required
def my_statement(request: HttpRequest) -> HttpResponse:
    customer = _me(request)
    return statement_response(
        request, customer, "collections/statement.html", {**_summary(customer), "staff": False}
    )


@login_required
def my_pay(request: HttpRequest) -> HttpResponse:
    """Ask the customer's mobile-money provider to collect a payment (request to pay)."""
    customer = _me(request)
    summary = _summary(customer)
    owed = max(summary["balance"], 0)
    initial = {"phone": customer.phone, "amount": owed or None}
    form = PayForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        amount = ledger.round_money(form.cleaned_data["amount"], customer.site.currency)
        try:
            asked = payment_services.request_to_pay(
                customer=customer,
                amount=amount,
                phone=form.cleaned_data["phone"],
                provider=None,
                channel="portal",
                by=request.user,
            )
        except ValidationError as exc:
            form.add_error(None, exc.messages)
        else:
            if asked.status == "failed":
                form.add_error(None, f"The payment could not be requested: {asked.detail}")
            elif asked.redirect_url:
                return redirect(asked.redirect_url)
            else:
                if asked.status == "successful":
                    text = "Your payment has been received; thank you. Your receipt is below."
                else:
                    text = (
                        "We have asked your mobile-money provider for the payment. Approve it "
                        "on your phone; your receipt will follow by SMS."
                    )
                messages.success(request, text)
                return redirect("collections:my_payments")
    return render(request, "collections/my_pay.html", {**summary, "form": form})
