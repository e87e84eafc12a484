"""Tariff helpers shared by the credit draw-down and token sales.

Both price "the month so far" with the tariff engine over the whole local month, so
the fixed (standing) charge is the month's full amount and block sizes are monthly;
what one draw or purchase costs is the month-to-date price after it minus the price
before it. :func:`lines_diff` turns two bills into that difference, line by line.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal

from billing.ledger import Kind
from billing.tariffs import Bill, Calendar, InForce, Interval, TariffError, price_period
from customers.models import Customer
from mcoms.core.models import PublicHoliday

ZERO = Decimal(0)
# Where each kind of bill line is credited in the ledger.
LEDGER_KIND = {
    "fixed": Kind.REVENUE_FIXED,
    "energy": Kind.REVENUE_ENERGY,
    "demand": Kind.REVENUE_ENERGY,
    "levy": Kind.LEVIES_PAYABLE,
    "vat": Kind.VAT_PAYABLE,
}
# The four totals a draw or purchase is split into (demand counts as energy revenue).
PARTS = {"fixed": "fixed", "energy": "energy", "demand": "energy", "levy": "levies", "vat": "vat"}


def calendar_for(customer: Customer) -> Calendar:
    site = customer.site
    days = PublicHoliday.objects.filter(site=site).values_list("date", flat=True)
    return Calendar(zone=site.zone, holidays=frozenset(days))


def schedule_for(customer: Customer) -> list[InForce]:
    """The approved versions of the customer's package tariff; TariffError if there is none."""
    package = customer.package
    if package is None or package.tariff is None:
        raise TariffError(f"{customer} has no package with a tariff to price by.")
    if package.tariff.currency != customer.site.currency:
        raise TariffError(
            f"Tariff {package.tariff.code} is in {package.tariff.currency}, "
            f"the site bills in {customer.site.currency}."
        )
    schedule = package.tariff.in_force()
    if not schedule:
        raise TariffError(f"Tariff {package.tariff.code} has no approved version.")
    return schedule


def month_of(day: dt.date) -> dt.date:
    return day.replace(day=1)


def next_month(month: dt.date) -> dt.date:
    return (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def month_start(month: dt.date, calendar: Calendar) -> dt.datetime:
    """The UTC instant the local month begins."""
    local = dt.datetime.combine(month, dt.time(), tzinfo=calendar.zone)
    return local.astimezone(dt.UTC)


def price_month(
    *,
    month: dt.date,
    currency: str,
    schedule: Sequence[InForce],
    calendar: Calendar,
    usage: Iterable[Interval],
) -> Bill:
    """The whole local month priced with the usage given so far (full fixed charge)."""
    return price_period(
        starts=month,
        ends=next_month(month),
        currency=currency,
        schedule=schedule,
        calendar=calendar,
        usage=usage,
    )


def totals(bill: Bill | None) -> dict[str, Decimal]:
    """The bill's amount per part (fixed, energy, levies, vat)."""
    out = {"fixed": ZERO, "energy": ZERO, "levies": ZERO, "vat": ZERO}
    for line in bill.lines if bill is not None else ():
        out[PARTS[line.kind]] += line.amount
    return out


def lines_diff(after: Bill, before: Bill | None) -> list[dict]:
    """What ``after`` adds to ``before``, line by line (JSON-ready).

    Lines are matched by kind, description and rate, so an energy block shows the kWh
    added to it and their cost; lines that did not change are left out.
    """

    def key(line) -> tuple:
        return (line.kind, line.description, line.rate, line.unit)

    old: dict[tuple, list[Decimal]] = {}
    for line in before.lines if before is not None else ():
        q, a = old.setdefault(key(line), [ZERO, ZERO])
        old[key(line)] = [q + line.quantity, a + line.amount]
    out = []
    for line in after.lines:
        q, a = old.pop(key(line), [ZERO, ZERO])
        if line.amount - a != 0 or (line.unit == "kWh" and line.quantity - q != 0):
            out.append(
                _line(
                    line.kind,
                    line.description,
                    line.quantity - q,
                    line.unit,
                    line.rate,
                    line.amount - a,
                )
            )
    for (kind, description, rate, unit), (q, a) in old.items():  # lines that vanished
        if a != 0:
            out.append(_line(kind, description, -q, unit, rate, -a))
    return out


def _line(kind, description, quantity, unit, rate, amount) -> dict:
    if unit == "kWh":
        quantity = f"{quantity.normalize():f}"
    return {
        "kind": kind,
        "description": description,
        "quantity": str(quantity),
        "unit": unit,
        "rate": str(rate),
        "amount": str(amount),
    }


def bill_lines(bill: Bill) -> list[dict]:
    """The bill's lines, JSON-ready."""
    return [
        _line(line.kind, line.description, line.quantity, line.unit, line.rate, line.amount)
        for line in bill.lines
    ]
