"""Collections' public queries for field operations: accounts to visit about arrears.

An account is worth a visit once an impending-disconnection notice has gone out and its
disconnection day (the notice day plus the site's grace) has come, while something on
the invoice it was about is still unpaid.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from billing.collections.ageing import open_invoice_rows
from billing.collections.models import CollectionNotice
from billing.collections.money import local_today
from customers.models import Customer
from mcoms.core import clock
from mcoms.core.models import Site


@dataclass(frozen=True)
class PastNotice:
    customer: Customer
    notice_id: int  # the oldest notice still unpaid: stable while the arrears last
    owed: Decimal  # everything still open on the customer's invoices
    currency: str
    disconnect_from: dt.date


def past_notice(*, now: dt.datetime | None = None) -> list[PastNotice]:
    """Customers whose notice's disconnection day has come (site time) and who still owe."""
    at = clock.resolve(now)
    notices = list(
        CollectionNotice.objects.filter(
            kind=CollectionNotice.Kind.NOTICE, disconnect_from__isnull=False
        ).values("id", "invoice_id", "customer_id", "disconnect_from", "invoice__site_id")
    )
    if not notices:
        return []
    sites = Site.objects.in_bulk({n["invoice__site_id"] for n in notices})
    today = {pk: local_today(site, at) for pk, site in sites.items()}
    rows = open_invoice_rows(list(sites))
    open_invoices = {row["id"] for row in rows}
    owed: dict[int, Decimal] = defaultdict(Decimal)
    currency: dict[int, str] = {}
    for row in rows:
        owed[row["customer_id"]] += row["open"]
        currency[row["customer_id"]] = row["currency"]
    first: dict[int, dict] = {}
    for n in sorted(notices, key=lambda n: n["id"]):
        due = n["disconnect_from"] <= today[n["invoice__site_id"]]
        if due and n["invoice_id"] in open_invoices and n["customer_id"] not in first:
            first[n["customer_id"]] = n
    customers = Customer.objects.select_related("site").in_bulk(list(first))
    return [
        PastNotice(
            customer=customers[cid],
            notice_id=n["id"],
            owed=owed[cid],
            currency=currency[cid],
            disconnect_from=n["disconnect_from"],
        )
        for cid, n in first.items()
    ]
