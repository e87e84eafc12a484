"""Property test: any sequence of money movements keeps the books straight.

Random invoices, payments, fees, refunds, reversals, adjustments, write-offs, month closes
and inexact amounts are applied to three customers (two on a UGX site, one on a KES
site) and, side by side, to a plain model that keeps each customer's balance in minor
units. After every sequence: each posting balances, the trial balance is zero, each
customer's ledger balance equals the sum of their lines and the model's figure, and no
UGX line has cents.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from billing import ledger
from billing.ledger import Source
from billing.models import LedgerAccount, Posting, PostingLine
from tests import factories

MONTHS = [dt.date(2026, m, 10) for m in (1, 2, 3, 4)]
CHANNELS = ["cash", "mtn", "airtel", "bank"]

customer_ix = st.integers(0, 2)
month_ix = st.integers(0, len(MONTHS) - 1)
minor = st.integers(1, 5_000_000)
channel = st.sampled_from(CHANNELS)

OPS = st.one_of(
    st.tuples(st.just("invoice"), customer_ix, month_ix, minor, st.integers(0, 50_000)),
    st.tuples(st.just("payment"), customer_ix, month_ix, minor, channel),
    st.tuples(st.just("fee"), customer_ix, month_ix, st.integers(1, 5_000), channel),
    st.tuples(st.just("refund"), customer_ix, month_ix, minor, channel),
    st.tuples(st.just("reverse"), st.integers(0, 50), month_ix),
    st.tuples(st.just("adjust"), customer_ix, month_ix, st.integers(-500_000, 500_000)),
    st.tuples(st.just("write_off"), customer_ix, month_ix, minor),
    st.tuples(st.just("close"), customer_ix, month_ix),
    st.tuples(st.just("inexact"), customer_ix, month_ix, minor),
)


@pytest.fixture
def people(org):
    org.jinja_town.currency = "KES"
    org.jinja_town.save()
    customers = [
        factories.customer(org.block_a),
        factories.customer(org.block_a),
        factories.customer(org.jinja_town),
    ]
    return org, customers


def money(units: int, currency: str) -> D:
    return D(units).scaleb(-ledger.MINOR_UNITS[currency])


def source(org, name: str) -> Source:
    if name == "cash":
        return Source("cash", agent=org.agent)
    if name == "bank":
        return Source("bank")
    return Source("mobile_money", provider=name)


class Model:
    """Each customer's balance in minor units, and what each posting did to it."""

    def __init__(self, customers):
        self.customers = customers
        self.owed = {c.pk: 0 for c in customers}
        self.effects: list[tuple[Posting, int, int]] = []  # posting, customer pk, delta
        self.reversed: set[int] = set()
        self.closed: set[tuple[int, int]] = set()  # site pk, month index

    def is_closed(self, customer, month: int) -> bool:
        return (customer.site_id, month) in self.closed

    def record(self, posting, customer, delta: int) -> None:
        self.owed[customer.pk] += delta
        self.effects.append((posting, customer.pk, delta))


def apply(op, org, customers, model: Model) -> None:  # noqa: C901, PLR0912
    name = op[0]
    if name == "reverse":
        _, k, month = op
        if not model.effects:
            return
        original, pk, delta = model.effects[k % len(model.effects)]
        site_id = original.site_id
        if original.pk in model.reversed or (site_id, month) in model.closed:
            with pytest.raises(ledger.LedgerError):
                ledger.reversal_post(original=original, date=MONTHS[month], reason="prop")
            return
        posting = ledger.reversal_post(original=original, date=MONTHS[month], reason="prop")
        model.reversed.add(original.pk)
        model.owed[pk] -= delta
        model.effects.append((posting, pk, -delta))
        return

    cust = customers[op[1]]
    month = op[2]
    date, cur = MONTHS[month], cust.site.currency
    if name == "close":
        if model.is_closed(cust, month):
            with pytest.raises(ledger.LedgerError):
                ledger.period_close(site=cust.site, month=date, by=org.billing)
        else:
            ledger.period_close(site=cust.site, month=date, by=org.billing)
            model.closed.add((cust.site_id, month))
        return
    if name == "inexact":
        before = Posting.objects.count()
        half = money(op[3], cur) + minor_half(cur)
        with pytest.raises(ledger.LedgerError):
            ledger.invoice_post(customer=cust, date=date, energy=half)
        assert Posting.objects.count() == before
        return

    if model.is_closed(cust, month):
        with pytest.raises(ledger.PeriodClosedError):
            ledger.invoice_post(customer=cust, date=date, energy=money(1, cur))
        return

    if name == "invoice":
        energy, vat = money(op[3], cur), money(op[4], cur)
        posting = ledger.invoice_post(customer=cust, date=date, energy=energy, vat=vat)
        model.record(posting, cust, op[3] + op[4])
    elif name == "payment":
        amount = money(op[3], cur)
        posting = ledger.payment_post(
            customer=cust, amount=amount, date=date, source=source(org, op[4])
        )
        model.record(posting, cust, -op[3])
    elif name == "fee":
        posting = ledger.fee_post(
            site=cust.site, amount=money(op[3], cur), date=date, source=source(org, op[4])
        )
        model.record(posting, cust, 0)
    elif name == "refund":
        request = ledger.refund_request(
            customer=cust,
            amount=money(op[3], cur),
            source=source(org, op[4]),
            reason="prop",
            by=org.billing,
        )
        request = ledger.money_request_approve(request=request, by=org.admin, date=date)
        model.record(request.posting, cust, op[3])
    elif name == "adjust":
        if op[3] == 0:
            return
        posting = ledger.adjustment_post(
            customer=cust, amount=money(op[3], cur), date=date, reason="prop"
        )
        model.record(posting, cust, op[3])
    elif name == "write_off":
        request = ledger.write_off_request(
            customer=cust, amount=money(op[3], cur), reason="prop", by=org.billing
        )
        if op[3] > model.owed[cust.pk]:
            with pytest.raises(ledger.LedgerError, match="is owed"):
                ledger.money_request_approve(request=request, by=org.admin, date=date)
            return
        request = ledger.money_request_approve(request=request, by=org.admin, date=date)
        model.record(request.posting, cust, -op[3])


def minor_half(currency: str) -> D:
    return ledger.minor_unit(currency) / 2


def check_books(customers, model: Model) -> None:
    lines = list(PostingLine.objects.select_related("posting", "account"))
    assert sum((line.amount for line in lines), D(0)) == 0  # trial balance
    by_posting: dict[int, D] = {}
    for line in lines:
        by_posting[line.posting_id] = by_posting.get(line.posting_id, D(0)) + line.amount
        assert line.account.currency == line.posting.currency
        if line.posting.currency == "UGX":
            assert line.amount == line.amount.to_integral_value()
    assert all(total == 0 for total in by_posting.values())
    assert all(len(p.lines.all()) >= 2 for p in Posting.objects.prefetch_related("lines"))
    for cust in customers:
        acct = ledger.receivable(cust)
        of_account = sum((ln.amount for ln in lines if ln.account_id == acct.pk), D(0))
        expected = money(model.owed[cust.pk], cust.site.currency)
        assert ledger.customer_balance(cust) == of_account == expected
    for site in {c.site for c in customers}:
        assert sum(ledger.trial_balance(site).values(), D(0)) == 0
    for acct in LedgerAccount.objects.all():
        assert ledger.balance(acct) == sum(
            (ln.amount for ln in lines if ln.account_id == acct.pk), D(0)
        )


@hypothesis_settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(OPS, max_size=25))
def test_any_sequence_of_movements_keeps_the_books_balanced(people, ops):
    org, customers = people
    with transaction.atomic():
        model = Model(customers)
        for op in ops:
            apply(op, org, customers, model)
        check_books(customers, model)
        transaction.set_rollback(True)  # each example starts from empty books
