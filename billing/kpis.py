"""Money figures for the management dashboards: read-only aggregates, a few queries each.

- *billed*: what was charged to customers in the period — invoices issued less credit
  notes issued (``Invoice.issued_on``, the site's local day), plus prepaid consumption and
  fee charges (the receivable side of ``charge`` and ``token_sale`` postings, by their
  accounting date);
- *collected*: money received from customers in the period (``Payment.received_at`` in
  the site's calendar), less what was refunded of it; reversed payments do not count;
- *balance*: a customer's receivable balance in the ledger (positive: they owe;
  negative: credit held).

Invoices and payments are summed from their own tables (one row per bill or payment,
read by site and date) rather than from the ledger's lines, which would need a join of
lines, postings and accounts for every figure; the ledger is read only for what exists
nowhere else (prepaid charges) and for balances.

Amounts are kept per currency: a site has one currency, and nothing adds two currencies.
Arrears and their ageing are the collections report's own query
(:func:`billing.collections.ageing.ageing_by_site`: open amounts of invoices capped by
the ledger balance, summed by bucket in the database).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import DecimalField, F, Q, Sum, Value
from django.db.models.functions import Coalesce, TruncDate, TruncMonth

from billing.collections.ageing import Buckets, ageing_by_site
from billing.models import Invoice, LedgerAccount, Posting, PostingLine
from billing.payments.models import Payment
from customers.kpis import by_zone, local_bounds
from mcoms.core.models import Site

ZERO = Decimal(0)
MONEY = DecimalField(max_digits=18, decimal_places=2)
CHARGED_KINDS = (Posting.Kind.CHARGE, Posting.Kind.TOKEN_SALE)
INVOICED = Q(kind=Invoice.Kind.INVOICE)
CREDITED = Q(kind=Invoice.Kind.CREDIT_NOTE)
RECEIVED = ~Q(status=Payment.Status.REVERSED)


def _receivable_lines():
    return PostingLine.objects.filter(account__kind=LedgerAccount.Kind.RECEIVABLE)


def _day(value) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def flows(sites: list[Site], first: dt.date, last: dt.date, *, by: str = "day"):
    """Rows ``(site_id, currency, period, billed, collected)`` per local day (or month).

    Three queries (plus one per further time zone among the sites): bills, prepaid
    charges, payments.
    """
    ids = [s.pk for s in sites]
    found: dict[tuple, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    bill_period = TruncMonth("issued_on") if by == "month" else F("issued_on")
    bills = (
        Invoice.objects.filter(site_id__in=ids, issued_on__gte=first, issued_on__lte=last)
        .annotate(period=bill_period)
        .values_list("site_id", "currency", "period")
        .order_by()
        .annotate(
            invoiced=Sum("total", filter=INVOICED),
            credited=Sum("total", filter=CREDITED),
        )
    )
    for site_id, currency, period, invoiced, credited in bills:
        found[(site_id, currency, _day(period))][0] += (invoiced or ZERO) - (credited or ZERO)
    charge_period = TruncMonth("posting__date") if by == "month" else F("posting__date")
    charges = (
        _receivable_lines()
        .filter(
            posting__site_id__in=ids,
            posting__kind__in=CHARGED_KINDS,
            posting__date__gte=first,
            posting__date__lte=last,
        )
        .annotate(period=charge_period)
        .values_list("posting__site_id", "posting__currency", "period")
        .order_by()
        .annotate(total=Sum("amount"))
    )
    for site_id, currency, period, total in charges:
        found[(site_id, currency, _day(period))][0] += total or ZERO
    for zone, zone_ids in by_zone(sites).items():
        start, end = local_bounds(zone, first, last)
        trunc = TruncMonth if by == "month" else TruncDate
        payments = (
            Payment.objects.filter(
                RECEIVED, site_id__in=zone_ids, received_at__gte=start, received_at__lt=end
            )
            .annotate(period=trunc("received_at", tzinfo=ZoneInfo(zone)))
            .values_list("site_id", "currency", "period")
            .order_by()
            .annotate(total=Sum(F("amount") - F("refunded")))
        )
        for site_id, currency, period, total in payments:
            found[(site_id, currency, _day(period))][1] += total or ZERO
    return [(s, c, p, v[0], v[1]) for (s, c, p), v in found.items()]


def arrears(site_ids: Iterable[int], as_of: dt.date) -> dict[int, Buckets]:
    """Per site id: open invoice amounts by days past due on ``as_of`` (the ageing report's
    buckets: not yet due, 0–30, 31–60, 61–90, over 90), and ``owing``: customers in arrears.

    One query, summed in the database (:func:`billing.collections.ageing.ageing_by_site`).
    """
    return ageing_by_site(site_ids, as_of)


def customer_money(
    customer_ids: Iterable[int], site: Site, first: dt.date, last: dt.date
) -> dict[int, dict[str, Decimal]]:
    """Per customer id: ``balance`` today; ``billed``, ``collected`` in the period.

    Four queries, each by the customers' own indexes (bills, payments, ledger lines).
    """
    ids = list(customer_ids)
    found: dict[int, dict[str, Decimal]] = defaultdict(
        lambda: {"balance": ZERO, "billed": ZERO, "collected": ZERO}
    )
    lines = _receivable_lines().filter(account__customer_id__in=ids)
    for cid, balance in (
        lines.values_list("account__customer_id").order_by().annotate(s=Sum("amount"))
    ):
        found[cid]["balance"] = balance or ZERO
    charged = lines.filter(
        posting__kind__in=CHARGED_KINDS, posting__date__gte=first, posting__date__lte=last
    )
    for cid, total in (
        charged.values_list("account__customer_id").order_by().annotate(s=Sum("amount"))
    ):
        found[cid]["billed"] += total or ZERO
    bills = (
        Invoice.objects.filter(customer_id__in=ids, issued_on__gte=first, issued_on__lte=last)
        .values_list("customer_id")
        .order_by()
        .annotate(i=Sum("total", filter=INVOICED), c=Sum("total", filter=CREDITED))
    )
    for cid, invoiced, credited in bills:
        found[cid]["billed"] += (invoiced or ZERO) - (credited or ZERO)
    start, end = local_bounds(site.timezone, first, last)
    paid = (
        Payment.objects.filter(
            RECEIVED, customer_id__in=ids, received_at__gte=start, received_at__lt=end
        )
        .values_list("customer_id")
        .order_by()
        .annotate(s=Sum(F("amount") - F("refunded")))
    )
    for cid, total in paid:
        found[cid]["collected"] = total or ZERO
    return dict(found)


def with_balance(customers):
    """``customers`` (a queryset) annotated ``balance``: their receivable balance, 0 if none.

    One grouped join over the ledger lines (a correlated subquery per customer costs ten
    times as much for a site of a thousand customers).
    """
    receivable = Q(ledger_accounts__kind=LedgerAccount.Kind.RECEIVABLE)
    total = Sum("ledger_accounts__lines__amount", filter=receivable)
    return customers.annotate(balance=Coalesce(total, Value(ZERO), output_field=MONEY))
