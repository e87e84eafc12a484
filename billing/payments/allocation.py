"""Allocation: money received is set against open invoices, oldest first.

An invoice's open amount is its total less what has been allocated to it. Sources of
allocation are completed payments and credit notes; a credit note goes first to the
invoice it corrects, then like any credit. What cannot be allocated stays as credit
on the account (the receivable balance goes negative; a refund pays part of it back)
and is used by :func:`allocate` when the next invoice is issued. :func:`allocate` is
idempotent: run it after any payment, credit note or new invoice; it only allocates
what is still unallocated.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction
from django.db.models import DecimalField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from billing.models import Invoice
from billing.payments.models import Allocation, Payment
from customers.models import Customer
from mcoms.core import clock

ZERO = Decimal(0)


def _allocated(field: str):
    """A subquery: the sum of allocations whose ``field`` is the outer row."""
    total = (
        Allocation.objects.filter(**{field: OuterRef("pk")})
        .values(field)
        .annotate(s=Sum("amount"))
        .values("s")
    )
    return Coalesce(
        Subquery(total, output_field=DecimalField(max_digits=18, decimal_places=2)),
        Value(ZERO),
        output_field=DecimalField(max_digits=18, decimal_places=2),
    )


def invoices_with_open(customer: Customer):
    """The customer's invoices (not credit notes), oldest first, annotated ``open_amount``."""
    return (
        Invoice.objects.filter(customer=customer, kind=Invoice.Kind.INVOICE)
        .annotate(paid=_allocated("invoice"))
        .order_by("issued_on", "id")
    )


def open_amount(invoice: Invoice) -> Decimal:
    """What is still owed on ``invoice``."""
    paid = invoice.allocations.aggregate(s=Sum("amount"))["s"] or ZERO
    return invoice.total - paid


def open_invoices(customer: Customer) -> list[tuple[Invoice, Decimal]]:
    """``(invoice, open amount)`` for each invoice not fully paid, oldest first."""
    rows = invoices_with_open(customer)
    return [(inv, inv.total - inv.paid) for inv in rows if inv.total - inv.paid > 0]


def unallocated(customer: Customer) -> Decimal:
    """Money received (payments and credit notes) not yet set against an invoice."""
    pays = Payment.objects.filter(customer=customer, status=Payment.Status.COMPLETED).annotate(
        used=_allocated("payment")
    )
    notes = Invoice.objects.filter(customer=customer, kind=Invoice.Kind.CREDIT_NOTE).annotate(
        used=_allocated("credit_note")
    )
    return sum((p.amount - p.refunded - p.used for p in pays), ZERO) + sum(
        (n.total - n.used for n in notes), ZERO
    )


@transaction.atomic
def allocate(customer: Customer) -> list[Allocation]:
    """Set every unallocated payment and credit note against open invoices, oldest first."""
    Customer.objects.select_for_update().filter(pk=customer.pk).first()
    invoices = [[inv, amount] for inv, amount in open_invoices(customer)]
    if not invoices:
        return []
    notes = (
        Invoice.objects.filter(customer=customer, kind=Invoice.Kind.CREDIT_NOTE)
        .annotate(used=_allocated("credit_note"))
        .order_by("issued_on", "id")
    )
    pays = (
        Payment.objects.filter(customer=customer, status=Payment.Status.COMPLETED)
        .annotate(used=_allocated("payment"))
        .order_by("received_at", "id")
    )
    sources: list[tuple[dict, Decimal, Invoice | None]] = []
    for note in notes:
        if note.total - note.used > 0:
            sources.append(({"credit_note": note}, note.total - note.used, note.corrects))
    for pay in pays:
        left = pay.amount - pay.refunded - pay.used
        if left > 0:
            sources.append(({"payment": pay}, left, None))
    made: list[Allocation] = []
    at = clock.now()
    for source, left, first in sources:
        order = sorted(invoices, key=lambda row: row[0] != first) if first else invoices
        for row in order:
            if left <= 0:
                break
            take = min(left, row[1])
            if take <= 0:
                continue
            made.append(Allocation(invoice=row[0], amount=take, created_at=at, **source))
            row[1] -= take
            left -= take
    Allocation.objects.bulk_create(made)
    return made
