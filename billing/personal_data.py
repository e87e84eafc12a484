"""Billing's public face for personal data: one customer's bills, payments and ledger, for
an archive; and erasing the person's mentions while keeping every amount and reference.

The law requires the books (invoices, receipts, ledger) to be kept for years after an
account closes, so anonymising changes no amount, date, number or link: only free texts
that name the person and the payer's phone number of mobile-money requests.
See docs/personal-data.md.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction

from billing.collections.models import CollectionNotice
from billing.models import (
    BillingRunItem,
    Charge,
    Invoice,
    InvoiceLine,
    MoneyRequest,
    PostingLine,
    SupplyRequest,
)
from billing.payments.models import Allocation, Payment, PaymentRequest, Refund
from billing.prepaid.models import CreditAccount, CreditDraw, TokenPurchase
from customers.models import Customer
from mcoms.core import privacy


def _ledger_entries(customer: Customer) -> list[dict]:
    lines = PostingLine.objects.filter(account__customer=customer).select_related(
        "posting", "account"
    )
    return [
        {
            "posting": line.posting_id,
            "date": line.posting.date.isoformat(),
            "kind": line.posting.kind,
            "account": line.account.key,
            "amount": str(line.amount),
            "currency": line.posting.currency,
            "memo": line.posting.memo,
            "reference": line.posting.reference,
        }
        for line in lines.order_by("posting__date", "posting_id", "id")
    ]


def customer_data(customer: Customer) -> dict[str, list[dict]]:
    """Invoices, ledger entries, charges, payments, mobile-money requests, refunds,
    prepaid tokens and credit of one customer."""
    invoices = Invoice.objects.filter(customer=customer)
    payments = Payment.objects.filter(customer=customer)
    return {
        "invoices": privacy.rows(invoices),
        "invoice_lines": privacy.rows(InvoiceLine.objects.filter(invoice__in=invoices)),
        "ledger_entries": _ledger_entries(customer),
        "charges": privacy.rows(Charge.objects.filter(customer=customer)),
        "money_requests": privacy.rows(MoneyRequest.objects.filter(customer=customer)),
        "supply_requests": privacy.rows(SupplyRequest.objects.filter(customer=customer)),
        "collection_notices": privacy.rows(CollectionNotice.objects.filter(customer=customer)),
        "payments": privacy.rows(payments),
        "payment_allocations": privacy.rows(Allocation.objects.filter(payment__in=payments)),
        "refunds": privacy.rows(Refund.objects.filter(payment__in=payments)),
        "payment_requests": privacy.rows(PaymentRequest.objects.filter(customer=customer)),
        "prepaid_tokens": privacy.rows(TokenPurchase.objects.filter(customer=customer)),
        "prepaid_credit": privacy.rows(CreditAccount.objects.filter(customer=customer)),
        "prepaid_credit_draws": privacy.rows(CreditDraw.objects.filter(customer=customer)),
    }


@transaction.atomic
def anonymise_customer(*, customer: Customer, strings: Sequence[str], label: str) -> None:
    """Replace the person's names and numbers in this customer's billing texts; blank the
    payer's phone of their mobile-money requests. Amounts, dates, numbers, references and
    links stay as they are, so every balance and total is unchanged.

    Invoices and ledger postings are immutable books and are not touched: the texts the
    system writes on them name no one (the account is named by its number).
    """
    PaymentRequest.objects.filter(customer=customer).update(phone="")
    texts = [
        (PaymentRequest.objects.filter(customer=customer), ["detail", "redirect_url"]),
        (Payment.objects.filter(customer=customer), ["note", "reversed_reason"]),
        (Charge.objects.filter(customer=customer), ["description"]),
        (MoneyRequest.objects.filter(customer=customer), ["reason", "decision_note", "source"]),
        (SupplyRequest.objects.filter(customer=customer), ["reason", "detail", "outcome"]),
        (BillingRunItem.objects.filter(customer=customer), ["reason", "lines"]),
        (TokenPurchase.objects.filter(customer=customer), ["detail", "breakdown"]),
        (CreditAccount.objects.filter(customer=customer), ["alert", "last_error"]),
    ]
    for rows, fields in texts:
        privacy.scrub(rows, fields, strings, label)
        privacy.scrub_audit_of(rows, strings, label)
