"""Arrears ageing: what customers still owe on their invoices, by how long it is overdue.

An invoice's open amount is its total less what has been allocated to it (payments
and credit notes, oldest invoice first: :mod:`billing.payments.allocation`). Each open
amount falls in one bucket by the days between its due date and the report day:
not yet due, 0–30 (a bill due today counts as 0 days), 31–60, 61–90 and over 90.

No one is shown owing more than their ledger balance: money received but not yet
allocated, write-offs and adjustments down come off their oldest open invoices first.

The report is built from one query over all the invoices of the sites asked for (the
open amount is computed in the database), one for the balances of the customers who
owe and one for those customers: never one query per customer.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import DecimalField, F, Sum, Value
from django.db.models.functions import Coalesce

from billing.models import Invoice, LedgerAccount, PostingLine
from customers.models import Customer
from mcoms.core.models import Site

ZERO = Decimal(0)
MONEY = DecimalField(max_digits=18, decimal_places=2)

# (key, label, lowest days past due, highest days past due or None)
BUCKETS: tuple[tuple[str, str, int | None, int | None], ...] = (
    ("current", "Not yet due", None, -1),
    ("d0_30", "0–30 days", 0, 30),
    ("d31_60", "31–60 days", 31, 60),
    ("d61_90", "61–90 days", 61, 90),
    ("d90_plus", "Over 90 days", 91, None),
)
BUCKET_KEYS = tuple(b[0] for b in BUCKETS)
OVERDUE_KEYS = BUCKET_KEYS[1:]


def bucket_for(days_past_due: int) -> str:
    """The bucket key for an amount ``days_past_due`` days after its due date."""
    for key, _label, low, high in BUCKETS:
        if (low is None or days_past_due >= low) and (high is None or days_past_due <= high):
            return key
    raise AssertionError(days_past_due)  # the buckets cover every integer


def due_date(invoice_due: dt.date | None, issued: dt.date) -> dt.date:
    """An invoice without a due date is due on the day it was issued."""
    return invoice_due or issued


def open_invoice_rows(site_ids: Iterable[int], customer_ids: Iterable[int] | None = None):
    """Every invoice (not credit note) with something still open on it, oldest first.

    Dicts with ``id``, ``number``, ``site_id``, ``customer_id``, ``issued_on``, ``due_on``,
    ``total``, ``currency`` and ``open``. Two queries: the invoices with what has been
    allocated to them, and the customers' ledger balances. Where a customer's balance
    is below what their invoices leave open (money not yet allocated, a write-off, an
    adjustment down), the difference comes off their oldest invoices first, as
    allocation would set it: nobody is shown owing more than their account says.
    """
    site_ids = list(site_ids)
    customer_ids = list(customer_ids) if customer_ids is not None else None
    rows = list(_allocated_rows(site_ids, customer_ids))
    owing = {row["customer_id"] for row in rows}
    lines = PostingLine.objects.filter(
        account__kind=LedgerAccount.Kind.RECEIVABLE, account__site_id__in=site_ids
    )
    if customer_ids is not None:
        lines = lines.filter(account__customer_id__in=customer_ids)
    balances = {}
    if owing:
        totals = lines.values_list("account__customer_id").annotate(total=Sum("amount"))
        balances = dict(totals.order_by())
    open_total: dict[int, Decimal] = defaultdict(Decimal)
    for row in rows:
        open_total[row["customer_id"]] += row["open"]
    excess = {
        cid: total - max(ZERO, balances.get(cid) or ZERO) for cid, total in open_total.items()
    }
    found = []
    for row in rows:  # oldest first within each customer
        cut = min(row["open"], max(ZERO, excess[row["customer_id"]]))
        if cut:
            excess[row["customer_id"]] -= cut
            row = {**row, "open": row["open"] - cut}
        if row["open"] > 0:
            found.append(row)
    return found


def not_fully_allocated(site_ids: list[int], customer_ids: list[int] | None = None):
    """Invoices whose allocations do not cover their total, annotated ``open`` (a queryset).

    What was allocated is summed over a join, grouped by invoice — not a subquery per
    invoice, which PostgreSQL ran twice a row (for ``open`` and for the filter) and whose
    estimated cost, for a site where most customers owe (the weeks after bills go out),
    passed ``jit_above_cost``: JIT compilation then tripled the query's time.
    """
    rows = Invoice.objects.filter(site_id__in=site_ids, kind=Invoice.Kind.INVOICE)
    if customer_ids is not None:
        rows = rows.filter(customer_id__in=customer_ids)
    paid = Coalesce(Sum("allocations__amount"), Value(ZERO), output_field=MONEY)
    return rows.annotate(paid=paid).annotate(open=F("total") - F("paid")).filter(open__gt=0)


def _allocated_rows(site_ids: list[int], customer_ids: list[int] | None):
    """One query: invoices with their total less what has been allocated to them."""
    return (
        not_fully_allocated(site_ids, customer_ids)
        .order_by("site_id", "customer_id", "issued_on", "id")
        .values(
            "id",
            "number",
            "site_id",
            "customer_id",
            "issued_on",
            "due_on",
            "total",
            "currency",
            "open",
        )
    )


@dataclass
class Buckets:
    """Amounts per bucket; ``overdue`` is everything past its due date."""

    amounts: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(BUCKET_KEYS, ZERO))

    def add(self, key: str, amount: Decimal) -> None:
        self.amounts[key] += amount

    def merge(self, other: Buckets) -> None:
        for key, amount in other.amounts.items():
            self.amounts[key] += amount

    @property
    def total(self) -> Decimal:
        return sum(self.amounts.values(), ZERO)

    @property
    def overdue(self) -> Decimal:
        return sum((self.amounts[k] for k in OVERDUE_KEYS), ZERO)

    def in_order(self) -> list[Decimal]:
        return [self.amounts[k] for k in BUCKET_KEYS]


@dataclass
class CustomerArrears:
    customer: Customer
    buckets: Buckets
    invoices: int
    oldest_due: dt.date


@dataclass
class SiteArrears:
    site: Site
    as_of: dt.date
    customers: list[CustomerArrears]
    totals: Buckets

    @property
    def currency(self) -> str:
        return self.site.currency


def site_arrears(sites: Iterable[Site], as_of: dt.date) -> list[SiteArrears]:
    """The ageing of each of ``sites`` on ``as_of``, customers owing most overdue first."""
    sites = list(sites)
    per_customer: dict[int, Buckets] = defaultdict(Buckets)
    counts: dict[int, int] = defaultdict(int)
    oldest: dict[int, dt.date] = {}
    site_of: dict[int, int] = {}
    for row in open_invoice_rows([s.pk for s in sites]):
        due = due_date(row["due_on"], row["issued_on"])
        cid = row["customer_id"]
        per_customer[cid].add(bucket_for((as_of - due).days), row["open"])
        counts[cid] += 1
        oldest[cid] = min(oldest.get(cid, due), due)
        site_of[cid] = row["site_id"]
    customers = Customer.objects.in_bulk(list(per_customer))
    reports = []
    for site in sites:
        rows = [
            CustomerArrears(customers[cid], per_customer[cid], counts[cid], oldest[cid])
            for cid, sid in site_of.items()
            if sid == site.pk
        ]
        rows.sort(key=lambda r: (-r.buckets.overdue, -r.buckets.total, r.customer.account_number))
        totals = Buckets()
        for r in rows:
            totals.merge(r.buckets)
        reports.append(SiteArrears(site=site, as_of=as_of, customers=rows, totals=totals))
    return reports


def customer_open_invoices(customer: Customer, as_of: dt.date) -> list[dict]:
    """The customer's open invoices with their bucket and days past due (oldest first)."""
    found = []
    for row in open_invoice_rows([customer.site_id], [customer.pk]):
        due = due_date(row["due_on"], row["issued_on"])
        days = (as_of - due).days
        found.append({**row, "due": due, "days_past_due": days, "bucket": bucket_for(days)})
    return found
