"""Arrears ageing: what customers still owe on their invoices, by how long it is overdue.

An invoice's open amount is its total less what has been allocated to it (payments
and credit notes, oldest invoice first: :mod:`billing.payments.allocation`). Each open
amount falls in one bucket by the days between its due date and the report day:
not yet due, 0–30 (a bill due today counts as 0 days), 31–60, 61–90 and over 90.

No one is shown owing more than their ledger balance: money received but not yet
allocated, write-offs and adjustments down come off their oldest open invoices first.

The report is built from one query over all the invoices of the sites asked for (open
amounts and the balance cap computed in the database, :func:`_open_sql`) and one for the
customers who owe: never one query per customer. The dashboards ask the same query for
its sums by bucket (:func:`ageing_by_site`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection
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


CENT = Decimal("0.01")


def _ids(values: Iterable[int]) -> tuple[str, list[int]]:
    values = list(values)
    return ", ".join(["%s"] * len(values)), values


def _open_sql(site_ids: list[int], customer_ids: list[int] | None) -> tuple[str, list]:
    """SQL (a ``WITH`` prefix) defining ``kept``: each invoice with something still open on
    it after the ledger-balance cap, with ``site_id``, ``customer_id``, ``due`` and ``open``.

    - ``balance``: the receivable balance of each customer who owes anything (above zero;
      nobody else can have anything open);
    - ``unpaid``: their invoices (not credit notes) with total less allocations above
      zero, what was allocated summed over a join grouped by invoice — not a subquery per
      invoice, which PostgreSQL ran twice a row and whose estimated cost, for a site where
      most customers owe (the weeks after bills go out), set off JIT compilation;
    - ``placed``: per invoice, the customer's *excess* (all their open amounts less their
      balance) and what their older invoices leave open (a running sum, oldest first);
    - ``kept``: the open amount less the part of the excess that falls on this invoice,
      the oldest taking it first — as allocation would place money not yet allocated, a
      write-off or an adjustment down.

    Written in SQL that PostgreSQL and SQLite both run (window functions, ``CASE``, no
    ``GREATEST``); amounts rounded to the cent so SQLite's floating sums compare exactly.
    """
    lines, accounts = PostingLine._meta.db_table, LedgerAccount._meta.db_table
    invoices = Invoice._meta.db_table
    allocations = Invoice._meta.get_field("allocations").related_model._meta.db_table
    sites_in, site_params = _ids(site_ids)
    by_customer, customer_params = "", []
    if customer_ids is not None:
        customers_in, customer_params = _ids(customer_ids)
        by_customer = f"AND a.customer_id IN ({customers_in})"
    sql = f"""
    WITH balance AS (
      SELECT a.customer_id AS customer_id, SUM(l.amount) AS balance
      FROM {lines} l JOIN {accounts} a ON a.id = l.account_id
      WHERE a.kind = %s AND a.site_id IN ({sites_in}) {by_customer}
      GROUP BY a.customer_id
      HAVING SUM(l.amount) > 0
    ), unpaid AS (
      SELECT i.id AS id, i.number AS number, i.site_id AS site_id,
             i.customer_id AS customer_id, i.issued_on AS issued_on, i.due_on AS due_on,
             COALESCE(i.due_on, i.issued_on) AS due, i.total AS total,
             i.currency AS currency, ROUND(i.total - COALESCE(SUM(al.amount), 0), 2) AS open
      FROM {invoices} i
      JOIN balance b ON b.customer_id = i.customer_id
      LEFT JOIN {allocations} al ON al.invoice_id = i.id
      WHERE i.kind = %s AND i.site_id IN ({sites_in})
      GROUP BY i.id, i.number, i.site_id, i.customer_id, i.issued_on, i.due_on, i.total,
               i.currency
      HAVING ROUND(i.total - COALESCE(SUM(al.amount), 0), 2) > 0
    ), placed AS (
      SELECT u.*,
             SUM(u.open) OVER (PARTITION BY u.customer_id) - b.balance AS excess,
             SUM(u.open) OVER (
               PARTITION BY u.customer_id ORDER BY u.issued_on, u.id
               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
             ) - u.open AS older
      FROM unpaid u JOIN balance b ON b.customer_id = u.customer_id
    ), kept AS (
      SELECT id, number, site_id, customer_id, issued_on, due_on, due, total, currency,
             ROUND(open - CASE
               WHEN excess - older <= 0 THEN 0
               WHEN excess - older >= open THEN open
               ELSE excess - older
             END, 2) AS open
      FROM placed
    )
    """
    params = [
        LedgerAccount.Kind.RECEIVABLE.value,
        *site_params,
        *customer_params,
        Invoice.Kind.INVOICE.value,
        *site_params,
    ]
    return sql, params


def _money(value) -> Decimal:
    """An amount from a raw query (a float on SQLite) as a Decimal to the cent."""
    if not isinstance(value, Decimal):
        value = Decimal(str(value))
    return value.quantize(CENT)


def _date(value) -> dt.date | None:
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


def open_invoice_rows(site_ids: Iterable[int], customer_ids: Iterable[int] | None = None):
    """Every invoice (not credit note) with something still open on it, oldest first.

    Dicts with ``id``, ``number``, ``site_id``, ``customer_id``, ``issued_on``, ``due_on``,
    ``total``, ``currency`` and ``open``. One query (:func:`_open_sql`): where a customer's
    balance is below what their invoices leave open (money not yet allocated, a
    write-off, an adjustment down), the difference comes off their oldest invoices first,
    as allocation would set it: nobody is shown owing more than their account says.
    """
    site_ids = list(site_ids)
    customer_ids = list(customer_ids) if customer_ids is not None else None
    if not site_ids or customer_ids == []:
        return []
    sql, params = _open_sql(site_ids, customer_ids)
    sql += """
    SELECT id, number, site_id, customer_id, issued_on, due_on, total, currency, open
    FROM kept WHERE open > 0
    ORDER BY site_id, customer_id, issued_on, id
    """
    names = ("id", "number", "site_id", "customer_id", "issued_on", "due_on", "total")
    found = []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for *head, currency, open_ in cursor.fetchall():
            row = dict(zip(names, head, strict=True))
            row["issued_on"], row["due_on"] = _date(row["issued_on"]), _date(row["due_on"])
            row["total"] = _money(row["total"])
            row["currency"], row["open"] = currency, _money(open_)
            found.append(row)
    return found


def ageing_by_site(site_ids: Iterable[int], as_of: dt.date) -> dict[int, Buckets]:
    """Per site id: the open amounts of :func:`open_invoice_rows` summed by bucket on
    ``as_of``, and ``owing``: how many customers have an overdue open amount.

    The same query, summed in the database: one row per site instead of one per open
    invoice (what the dashboards need; ``site_arrears`` keeps the rows).
    """
    site_ids = list(site_ids)
    if not site_ids:
        return {}
    sql, params = _open_sql(site_ids, None)
    day = connection.ops.adapt_datefield_value

    def before(days: int):  # the due date ``days`` days before ``as_of``
        return day(as_of - dt.timedelta(days=days))

    sums = []
    for _key, _label, low, high in BUCKETS:
        # days past due = as_of - due: days >= low means due <= as_of - low.
        conditions, values = [], []
        if low is not None:
            conditions.append("due <= %s")
            values.append(before(low))
        if high is not None:
            conditions.append("due >= %s")
            values.append(before(high))
        sums.append(f"SUM(CASE WHEN {' AND '.join(conditions)} THEN open ELSE 0 END)")
        params += values
    sql += f"""
    SELECT site_id, {", ".join(sums)},
           COUNT(DISTINCT CASE WHEN due <= %s THEN customer_id END)
    FROM kept WHERE open > 0
    GROUP BY site_id
    """
    params.append(before(0))
    found: dict[int, Buckets] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for site_id, *amounts, owing in cursor.fetchall():
            buckets = Buckets()
            for key, amount in zip(BUCKET_KEYS, amounts, strict=True):
                buckets.amounts[key] = _money(amount or 0)
            buckets.owing = owing
            found[site_id] = buckets
    return found


def not_fully_allocated(site_ids: list[int], customer_ids: list[int] | None = None):
    """Invoices whose allocations do not cover their total, annotated ``open`` (a queryset).

    What was allocated is summed over a join, grouped by invoice (see :func:`_open_sql`).
    """
    rows = Invoice.objects.filter(site_id__in=site_ids, kind=Invoice.Kind.INVOICE)
    if customer_ids is not None:
        rows = rows.filter(customer_id__in=customer_ids)
    paid = Coalesce(Sum("allocations__amount"), Value(ZERO), output_field=MONEY)
    return rows.annotate(paid=paid).annotate(open=F("total") - F("paid")).filter(open__gt=0)


@dataclass
class Buckets:
    """Amounts per bucket; ``overdue`` is everything past its due date."""

    amounts: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(BUCKET_KEYS, ZERO))
    owing: int = 0  # customers with something overdue (:func:`ageing_by_site`)

    def add(self, key: str, amount: Decimal) -> None:
        self.amounts[key] += amount

    def merge(self, other: Buckets) -> None:
        for key, amount in other.amounts.items():
            self.amounts[key] += amount
        self.owing += other.owing

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
