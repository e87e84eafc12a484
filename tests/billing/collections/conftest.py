"""Collections test helpers: bills, payments and allocations made the way billing makes them.

Bills are posted to the ledger (``ledger.invoice_post``) and recorded as an
:class:`~billing.models.Invoice` with one energy line; payments are posted
(``ledger.payment_post``), recorded as a :class:`~billing.payments.models.Payment` and
allocated oldest invoice first (``allocation.allocate``).
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal as D

import pytest

from billing import ledger
from billing.ledger import Source
from billing.models import Invoice, InvoiceLine, Posting
from billing.payments import allocation
from billing.payments.models import Payment
from mcoms.core.audit import acting_as
from tests import factories
from tests.billing.payments.conftest import (  # noqa: F401 - the fake providers, wired in
    airtel,
    live,
    mtn,
    pesapal,
)

_numbers = itertools.count(1)


def bill(customer, total, *, issued: dt.date, due: dt.date | None = None, kwh=D("10")):
    """A posted bill of ``total`` for the month of ``issued`` (energy only)."""
    total = D(total)
    n = next(_numbers)
    number = f"INV-{customer.site.code.upper()}-{n:05d}"
    with acting_as(label="test billing"):
        posting = ledger.invoice_post(
            customer=customer, date=issued, energy=total, reference=number, memo=f"Bill {number}"
        )
        invoice = Invoice.objects.create(
            number=number,
            customer=customer,
            site=customer.site,
            period_start=issued.replace(day=1) - dt.timedelta(days=n),  # unique per customer
            period_end=issued.replace(day=1),
            issued_on=issued,
            due_on=due if due is not None else issued + dt.timedelta(days=14),
            currency=customer.site.currency,
            kwh=kwh,
            subtotal=total,
            total=total,
            amount_due=total,
            posting=posting,
            created_at=dt.datetime.combine(issued, dt.time(8), tzinfo=dt.UTC),
        )
        InvoiceLine.objects.create(
            invoice=invoice,
            position=1,
            kind="energy",
            description="Energy",
            quantity=kwh,
            unit="kWh",
            rate=(total / kwh).quantize(D("0.0001")),
            amount=total,
        )
        allocation.allocate(customer)
    return invoice


def credit_note(invoice, total, *, issued: dt.date, reason="Meter misread"):
    total = D(total)
    number = f"CN-{next(_numbers):05d}"
    customer = invoice.customer
    with acting_as(label="test billing"):
        lines = [
            ledger.Line(ledger.account(customer.site, "revenue_energy"), total),
            ledger.Line(ledger.receivable(customer), -total),
        ]
        posting = ledger.post(
            site=customer.site,
            kind=Posting.Kind.CREDIT_NOTE,
            date=issued,
            lines=lines,
            reference=number,
        )
        note = Invoice.objects.create(
            number=number,
            kind=Invoice.Kind.CREDIT_NOTE,
            customer=customer,
            site=customer.site,
            issued_on=issued,
            currency=customer.site.currency,
            subtotal=total,
            total=total,
            amount_due=-total,
            corrects=invoice,
            reason=reason,
            posting=posting,
            created_at=dt.datetime.combine(issued, dt.time(9), tzinfo=dt.UTC),
        )
        allocation.allocate(customer)
    return note


def pay(customer, amount, *, on: dt.date, method="mtn"):
    """A completed mobile-money payment, posted and allocated."""
    amount = D(amount)
    receipt = f"R{next(_numbers):06d}"
    txn = f"MP{receipt}"
    with acting_as(label="test payments"):
        posting = ledger.payment_post(
            customer=customer,
            amount=amount,
            date=on,
            source=Source("mobile_money", provider=method),
            reference=f"{method}:{txn}",
        )
        payment = Payment.objects.create(
            receipt_number=receipt,
            customer=customer,
            site=customer.site,
            method=method,
            amount=amount,
            currency=customer.site.currency,
            provider_txn_id=txn,
            received_at=dt.datetime.combine(on, dt.time(10), tzinfo=dt.UTC),
            posting=posting,
        )
        allocation.allocate(customer)
    return payment


@pytest.fixture
def templates(db):
    from notifications import catalog

    catalog.install_defaults()


@pytest.fixture
def me(org):
    """The portal customer's own account on Block A (owned by ``org.customer``)."""
    return factories.customer(
        org.block_a, first_name="Amina", last_name="Nakato", status="active", user=org.customer
    )
