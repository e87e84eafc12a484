"""Receipts: the ``payment_received`` SMS and a PDF for every payment.

Both show the amount credited, the fee the customer paid on top, the method, the
receipt number, how the money was set against invoices and the balance right after
the payment (what is still owed; negative is credit in hand).
"""

from __future__ import annotations

import logging
from decimal import Decimal

from django.db.models import Sum
from fpdf import FPDF

from billing import ledger
from billing.models import PostingLine
from billing.payments.models import Payment
from notifications.services import TemplateMissing, send_message

log = logging.getLogger("billing.payments")


def format_money(amount: Decimal, currency: str) -> str:
    """``20,000`` for UGX, ``1,234.50`` for KES and NGN; a minus sign for credit."""
    places = ledger.MINOR_UNITS.get(currency, 2)
    return f"{amount:,.{places}f}"


def balance_after(payment: Payment) -> Decimal:
    """The customer's balance right after this payment was posted."""
    acct = ledger.receivable(payment.customer)
    total = PostingLine.objects.filter(account=acct, posting_id__lte=payment.posting_id).aggregate(
        s=Sum("amount")
    )["s"] or Decimal(0)
    return total.quantize(ledger.minor_unit(payment.currency))


def context(payment: Payment) -> dict:
    """Everything a receipt shows."""
    allocations = list(payment.allocations.select_related("invoice").order_by("invoice__issued_on"))
    allocated = sum((a.amount for a in allocations), Decimal(0))
    return {
        "payment": payment,
        "customer": payment.customer,
        "site": payment.site,
        "method": payment.get_method_display(),
        "amount": payment.amount,
        "fee": payment.fee,
        "total_paid": payment.amount + payment.fee,
        "allocations": allocations,
        "credit_left": payment.amount - payment.refunded - allocated,
        "balance": balance_after(payment),
        "currency": payment.currency,
    }


def send_sms(payment: Payment) -> None:
    """Text the customer their receipt (the ``payment_received`` event)."""
    customer = payment.customer
    if not customer.phone:
        return
    cur = payment.currency
    try:
        send_message(
            to=customer.phone,
            template="payment_received",
            context={
                "name": customer.first_name,
                "account": customer.account_number,
                "currency": cur,
                "amount": format_money(payment.amount, cur)
                + (f" + fee {format_money(payment.fee, cur)}" if payment.fee else ""),
                "reference": payment.receipt_number,
                "balance": format_money(balance_after(payment), cur),
            },
            language=customer.language,
            about=f"payments.payment:{payment.pk}",
            site_id=payment.site_id,
        )
    except TemplateMissing:
        log.warning("no payment_received template; receipt %s not texted", payment.receipt_number)


def _text(value: object) -> str:
    """Text the PDF's core font can draw (Latin-1); anything else becomes '?'."""
    return str(value).encode("latin-1", "replace").decode("latin-1")


def pdf(payment: Payment) -> bytes:
    """The receipt as a one-page PDF."""
    data = context(payment)
    cur = data["currency"]
    doc = FPDF(format=(148, 210))  # A5, in millimetres
    doc.set_auto_page_break(True, margin=12)
    doc.add_page()
    doc.set_font("helvetica", "B", 15)
    doc.cell(0, 9, _text(f"Receipt {payment.receipt_number}"), new_x="LMARGIN", new_y="NEXT")
    doc.set_font("helvetica", "", 10)
    local = payment.received_at.astimezone(payment.site.zone)
    rows = [
        ("Site", payment.site.name),
        ("Customer", f"{data['customer'].full_name} ({data['customer'].account_number})"),
        ("Date", f"{local:%d %b %Y %H:%M}"),
        ("Method", data["method"]),
    ]
    if payment.provider_txn_id:
        rows.append(("Transaction", payment.provider_txn_id))
    if payment.agent_id:
        rows.append(("Received by", payment.agent.get_full_name() or payment.agent.get_username()))
    rows += [
        ("Amount credited", f"{cur} {format_money(payment.amount, cur)}"),
        ("Fee paid", f"{cur} {format_money(payment.fee, cur)}"),
        ("Total paid", f"{cur} {format_money(data['total_paid'], cur)}"),
    ]
    for label, value in rows:
        doc.set_font("helvetica", "B", 10)
        doc.cell(38, 6, _text(label))
        doc.set_font("helvetica", "", 10)
        doc.cell(0, 6, _text(value), new_x="LMARGIN", new_y="NEXT")
    doc.ln(3)
    doc.set_font("helvetica", "B", 11)
    doc.cell(0, 7, "Allocated to invoices", new_x="LMARGIN", new_y="NEXT")
    doc.set_font("helvetica", "", 10)
    for alloc in data["allocations"]:
        invoice = alloc.invoice
        doc.cell(
            0,
            6,
            _text(
                f"Invoice {invoice.number} of {invoice.issued_on:%d %b %Y}: "
                f"{cur} {format_money(alloc.amount, cur)}"
            ),
            new_x="LMARGIN",
            new_y="NEXT",
        )
    if data["credit_left"] > 0:
        doc.cell(
            0,
            6,
            _text(f"Kept as credit on the account: {cur} {format_money(data['credit_left'], cur)}"),
            new_x="LMARGIN",
            new_y="NEXT",
        )
    if payment.status != Payment.Status.COMPLETED:
        doc.set_font("helvetica", "B", 10)
        doc.cell(
            0, 7, _text(f"Status: {payment.get_status_display()}"), new_x="LMARGIN", new_y="NEXT"
        )
    doc.ln(3)
    doc.set_font("helvetica", "B", 11)
    balance = data["balance"]
    label = "New balance owed" if balance >= 0 else "New balance (credit)"
    doc.cell(
        0, 7, _text(f"{label}: {cur} {format_money(balance, cur)}"), new_x="LMARGIN", new_y="NEXT"
    )
    return bytes(doc.output())
