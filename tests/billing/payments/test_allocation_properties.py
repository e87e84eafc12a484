"""Property test: allocation keeps invoices, credit and the ledger in agreement.

Random sequences of invoices, payments, credit notes, reversals and refunds for one
customer, with :func:`allocate` run at random points and always at the end. Then the
open amounts of the invoices less the unallocated credit equal the customer's
receivable balance in the ledger, no invoice is allocated more than its total, no
payment or credit note gives more than it has, and allocating again changes nothing.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from billing import ledger
from billing.models import Invoice
from billing.payments import allocation, services
from billing.payments.models import Allocation, Payment
from tests.billing.payments.conftest import make_invoice

amount = st.integers(1, 200_000)
OPS = st.one_of(
    st.tuples(st.just("invoice"), amount),
    st.tuples(st.just("payment"), amount),
    st.tuples(st.just("credit_note"), amount, st.integers(0, 20)),
    st.tuples(st.just("allocate")),
    st.tuples(st.just("reverse"), st.integers(0, 20)),
    st.tuples(st.just("refund"), st.integers(0, 20), st.integers(1, 100)),
)


def _apply(org, customer, ops) -> None:
    day = dt.date(2026, 1, 1)
    invoices: list[Invoice] = []
    payments: list[Payment] = []
    for op in ops:
        day += dt.timedelta(days=1)
        kind = op[0]
        if kind == "invoice":
            invoices.append(make_invoice(customer, op[1], day))
        elif kind == "payment":
            payments.append(services.record_payment(customer=customer, amount=op[1], method="bank"))
        elif kind == "credit_note" and invoices:
            target = invoices[op[2] % len(invoices)]
            make_invoice(
                customer,
                min(op[1], int(target.total)),
                day,
                kind=Invoice.Kind.CREDIT_NOTE,
                corrects=target,
            )
        elif kind == "allocate":
            allocation.allocate(customer)
        elif kind == "reverse" and payments:
            payment = payments[op[1] % len(payments)]
            payment.refresh_from_db()
            if payment.status == Payment.Status.COMPLETED and not payment.refunded:
                services.reverse_payment(payment=payment, reason="property test", by=org.billing)
        elif kind == "refund" and payments:
            payment = payments[op[1] % len(payments)]
            payment.refresh_from_db()
            available = services.refundable(payment)
            if payment.status == Payment.Status.COMPLETED and available > 0:
                part = max(Decimal(1), (available * op[2] / 100).to_integral_value())
                refund = services.refund_request(
                    payment=payment, amount=min(part, available), reason="overpaid", by=org.billing
                )
                services.refund_approve(refund=refund, by=org.admin)
    allocation.allocate(customer)


def _check(customer) -> None:
    open_total = sum((left for _, left in allocation.open_invoices(customer)), Decimal(0))
    credit = allocation.unallocated(customer)
    assert credit >= 0
    assert open_total - credit == ledger.customer_balance(customer)
    # Either nothing is open or nothing is left to allocate: allocation never stops early.
    assert open_total == 0 or credit == 0
    for invoice in Invoice.objects.filter(customer=customer, kind=Invoice.Kind.INVOICE):
        given = invoice.allocations.aggregate(s=Sum("amount"))["s"] or Decimal(0)
        assert 0 <= given <= invoice.total
    for payment in Payment.objects.filter(customer=customer):
        used = payment.allocations.aggregate(s=Sum("amount"))["s"] or Decimal(0)
        assert used + payment.refunded <= payment.amount
        if payment.status == Payment.Status.REVERSED:
            assert used == 0
    for note in Invoice.objects.filter(customer=customer, kind=Invoice.Kind.CREDIT_NOTE):
        used = note.allocated_from.aggregate(s=Sum("amount"))["s"] or Decimal(0)
        assert used <= note.total
    before = Allocation.objects.count()
    assert allocation.allocate(customer) == []
    assert Allocation.objects.count() == before


@pytest.mark.django_db
@hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(OPS, max_size=18))
def test_allocation_agrees_with_the_ledger(org, customer, ops):
    with transaction.atomic():
        _apply(org, customer, ops)
        _check(customer)
        transaction.set_rollback(True)  # each example starts from an empty account
