"""What a customer may learn about their account by USSD or SMS, in their words.

Reads only through the owners' public faces: the ledger for the balance, the
invoices for the last bill and what is still open, metering's consumption
queries for usage. Every function returns a finished sentence in ``language``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from billing import ledger
from billing.models import Invoice
from billing.payments.allocation import open_invoices
from customers.models import Customer
from metering import consumption
from notifications.selfservice.texts import text

ZERO = Decimal(0)
KWH = Decimal("0.1")


def money(amount: Decimal, currency: str) -> str:
    """``amount`` as people write it: ``24,500`` (UGX) or ``1,234.50`` (KES)."""
    rounded = ledger.round_money(amount, currency)
    places = -rounded.as_tuple().exponent if rounded.as_tuple().exponent < 0 else 0
    return f"{rounded:,.{places}f}"


def kwh(amount: Decimal) -> str:
    """Energy to one decimal place: ``12.3``."""
    return f"{amount.quantize(KWH, rounding=ROUND_HALF_UP):,}"


def short_date(day: dt.date) -> str:
    """``15 Nov 2026``: the same in every language, short enough for a screen."""
    return f"{day.day} {day:%b %Y}"


@dataclass(frozen=True)
class Balance:
    owed: Decimal  # negative: credit
    currency: str
    due: Decimal  # open on issued invoices, at most what is owed
    due_on: dt.date | None


def balance(customer: Customer) -> Balance:
    """What the customer owes, and how much of it bills ask for by when."""
    currency = customer.site.currency
    owed = ledger.customer_balance(customer)
    open_bills = open_invoices(customer)
    due = min(sum((amount for _, amount in open_bills), ZERO), max(owed, ZERO))
    dates = [inv.due_on for inv, _ in open_bills if inv.due_on]
    return Balance(owed, currency, due, min(dates) if dates and due > 0 else None)


def balance_text(customer: Customer, language: str) -> str:
    """``KLA-00012: you owe UGX 24,500. Pay UGX 20,000 by 15 Nov 2026.``"""
    b = balance(customer)
    account, cur = customer.account_number, b.currency
    if b.owed > 0:
        out = text("balance_owed", language, account=account, cur=cur, amount=money(b.owed, cur))
        if b.due_on:
            out += text(
                "balance_due",
                language,
                cur=cur,
                amount=money(b.due, cur),
                date=short_date(b.due_on),
            )
        return out
    if b.owed < 0:
        return text(
            "balance_credit", language, account=account, cur=cur, amount=money(-b.owed, cur)
        )
    return text("balance_zero", language, account=account)


def last_bill(customer: Customer) -> Invoice | None:
    """The customer's latest invoice (credit notes are not bills)."""
    return (
        Invoice.objects.filter(customer=customer, kind=Invoice.Kind.INVOICE)
        .order_by("-issued_on", "-id")
        .first()
    )


def last_bill_text(customer: Customer, language: str) -> str:
    """The latest bill's number, period, energy, total and amount due."""
    bill = last_bill(customer)
    if bill is None:
        return text("no_bill", language, account=customer.account_number)
    cur = bill.currency
    period = f"{bill.period_start:%b %Y}" if bill.period_start else short_date(bill.issued_on)
    out = text(
        "last_bill",
        language,
        number=bill.number,
        period=period,
        kwh=kwh(bill.kwh),
        cur=cur,
        total=money(bill.total, cur),
        due=money(bill.amount_due, cur),
    )
    if bill.due_on:
        out += text("last_bill_due", language, date=short_date(bill.due_on))
    return out


def _usage(customer: Customer, by: str, start: dt.datetime, end: dt.datetime):
    return consumption.customer_usage(customer, by=by, start=start, end=end)


def usage_today(customer: Customer, now: dt.datetime) -> Decimal:
    """kWh used since local midnight."""
    zone = customer.site.zone
    midnight = consumption.local_midnight(now.astimezone(zone).date(), zone)
    return _usage(
        customer, consumption.DAY, midnight, max(now, midnight + dt.timedelta(seconds=1))
    ).kwh


def usage_this_month(customer: Customer, now: dt.datetime) -> Decimal:
    """kWh used since the first of the local month."""
    zone = customer.site.zone
    first = consumption.local_midnight(consumption.month_of(now.astimezone(zone).date()), zone)
    return _usage(customer, consumption.MONTH, first, max(now, first + dt.timedelta(seconds=1))).kwh


def usage_last_months(customer: Customer, now: dt.datetime, months: int = 3):
    """``[(first day of month, kWh), ...]`` for the ``months`` whole months before this one."""
    zone = customer.site.zone
    this_month = consumption.month_of(now.astimezone(zone).date())
    first = this_month
    for _ in range(months):
        first = consumption.month_of(first - dt.timedelta(days=1))
    usage = _usage(
        customer,
        consumption.MONTH,
        consumption.local_midnight(first, zone),
        consumption.local_midnight(this_month, zone),
    )
    found = {b.start.date().replace(day=1): b.kwh for b in usage.buckets}
    out, month = [], first
    while month < this_month:
        out.append((month, found.get(month, Decimal("0.000"))))
        month = consumption.next_month(month)
    return out


def usage_text(customer: Customer, language: str, which: str, now: dt.datetime) -> str:
    """One usage screen: ``today``, ``month`` or ``months`` (the last three)."""
    zone = customer.site.zone
    if which == "today":
        return text("usage_today", language, kwh=kwh(usage_today(customer, now)))
    if which == "month":
        month = f"{now.astimezone(zone):%b %Y}"
        return text("usage_month", language, kwh=kwh(usage_this_month(customer, now)), month=month)
    lines = "\n".join(f"{m:%b %Y}: {kwh(v)} kWh" for m, v in usage_last_months(customer, now))
    return text("usage_months", language, lines=lines)


def usage_sms_text(customer: Customer, language: str, now: dt.datetime) -> str:
    """Today, this month and last month in one sentence (the USE command)."""
    last = usage_last_months(customer, now, months=1)
    return text(
        "usage_sms",
        language,
        account=customer.account_number,
        today=kwh(usage_today(customer, now)),
        month=kwh(usage_this_month(customer, now)),
        last=kwh(last[-1][1] if last else Decimal(0)),
    )
