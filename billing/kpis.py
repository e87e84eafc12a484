"""Money figures for the management dashboards: read-only aggregates over the ledger.

Everything is read from the customers' receivable accounts in the ledger (each posting has
its site, currency and accounting date — the local day it belongs to), so every channel
counts the same way and the figures agree with statements and the trial balance:

- *billed*: what was charged to customers — invoices, prepaid consumption and fee charges
  (postings ``invoice``, ``charge``, ``token_sale``) less credit notes, and less any
  reversal of those;
- *collected*: money received from customers (``payment`` postings) less payments
  reversed and refunds paid back;
- *balance*: the receivable balance (positive: the customer owes; negative: credit held).

Amounts are kept per currency: a site has one currency, and nothing adds two currencies.
Arrears and their ageing reuse :func:`billing.collections.ageing.open_invoice_rows` (open
amounts of invoices, computed in the database, capped by the ledger balance).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

from django.db.models import DecimalField, F, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncMonth

from billing.collections.ageing import Buckets, bucket_for, due_date, open_invoice_rows
from billing.models import LedgerAccount, Posting, PostingLine

ZERO = Decimal(0)
MONEY = DecimalField(max_digits=18, decimal_places=2)
K = Posting.Kind
BILLED_KINDS = (K.INVOICE, K.CHARGE, K.TOKEN_SALE, K.CREDIT_NOTE)
COLLECTED_KINDS = (K.PAYMENT, K.REFUND)

BILLED = Q(posting__kind__in=BILLED_KINDS) | Q(
    posting__kind=K.REVERSAL, posting__reverses__kind__in=BILLED_KINDS
)
COLLECTED = Q(posting__kind__in=COLLECTED_KINDS) | Q(
    posting__kind=K.REVERSAL, posting__reverses__kind=K.PAYMENT
)


def _receivable_lines():
    return PostingLine.objects.filter(account__kind=LedgerAccount.Kind.RECEIVABLE)


def flows(site_ids: Iterable[int], first: dt.date, last: dt.date, *, by: str = "day"):
    """Rows ``(site_id, currency, period, billed, collected)`` per local day (or month).

    One query: the receivable lines of the sites' postings dated in the period.
    """
    period = TruncMonth("posting__date") if by == "month" else F("posting__date")
    rows = (
        _receivable_lines()
        .filter(
            posting__site_id__in=list(site_ids),
            posting__date__gte=first,
            posting__date__lte=last,
        )
        .annotate(period=period)
        .values("posting__site_id", "posting__currency", "period")
        .order_by()
        .annotate(
            billed=Sum("amount", filter=BILLED),
            collected=Sum("amount", filter=COLLECTED),
        )
    )
    found = []
    for r in rows:
        day = r["period"].date() if isinstance(r["period"], dt.datetime) else r["period"]
        found.append(
            (
                r["posting__site_id"],
                r["posting__currency"],
                day,
                r["billed"] or ZERO,
                -(r["collected"] or ZERO),
            )
        )
    return found


def arrears(site_ids: Iterable[int], as_of: dt.date) -> dict[int, Buckets]:
    """Per site id: open invoice amounts by days past due on ``as_of`` (the ageing report's
    buckets: not yet due, 0–30, 31–60, 61–90, over 90), and ``owing``: customers in arrears."""
    found: dict[int, Buckets] = defaultdict(Buckets)
    owing: dict[int, set[int]] = defaultdict(set)
    for row in open_invoice_rows(list(site_ids)):
        days = (as_of - due_date(row["due_on"], row["issued_on"])).days
        key = bucket_for(days)
        found[row["site_id"]].add(key, row["open"])
        if days >= 0:
            owing[row["site_id"]].add(row["customer_id"])
    for site_id, buckets in found.items():
        buckets.owing = len(owing[site_id])
    return dict(found)


def customer_money(
    customer_ids: Iterable[int], first: dt.date, last: dt.date
) -> dict[int, dict[str, Decimal]]:
    """Per customer id: ``balance`` today; ``billed``, ``collected`` in the period (one query)."""
    in_period = Q(posting__date__gte=first, posting__date__lte=last)
    rows = (
        _receivable_lines()
        .filter(account__customer_id__in=list(customer_ids))
        .values("account__customer_id")
        .order_by()
        .annotate(
            balance=Sum("amount"),
            billed=Sum("amount", filter=BILLED & in_period),
            collected=Sum("amount", filter=COLLECTED & in_period),
        )
    )
    return {
        r["account__customer_id"]: {
            "balance": r["balance"] or ZERO,
            "billed": r["billed"] or ZERO,
            "collected": -(r["collected"] or ZERO),
        }
        for r in rows
    }


def with_balance(customers):
    """``customers`` (a queryset) annotated ``balance``: their receivable balance, 0 if none."""
    total = (
        _receivable_lines()
        .filter(account__customer_id=OuterRef("pk"))
        .values("account__customer_id")
        .annotate(s=Sum("amount"))
        .values("s")
    )
    return customers.annotate(
        balance=Coalesce(Subquery(total, output_field=MONEY), Value(ZERO), output_field=MONEY)
    )
