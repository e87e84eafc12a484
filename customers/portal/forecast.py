"""A forecast of this month's bill (postpaid) or spend (prepaid), and how it was made.

The method, in the words the page uses:

1. **Used so far**: the whole days of this month before today, from the meter's daily
   totals (today is still running, so it counts as a day to come).
2. **The days to come**: today and the rest of the month, each at the average of the
   last ``RECENT_DAYS`` whole days that have readings (days without readings are left
   out of the average rather than counted as zero).
3. **Priced** with the customer's own tariff by billing's tariff engine over the whole
   month (:func:`billing.prepaid.pricing.price_month`: the month's full standing
   charge, monthly blocks, levies and VAT), the same engine that makes the bill. The
   bill "so far" is the month priced with the usage so far alone.

For a prepaid customer the same figure is what the month's energy will cost them
(their spend), not a bill. No tariff, or no readings in the recent days: no forecast,
and the page says why.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from billing.prepaid.pricing import calendar_for, price_month, schedule_for
from billing.tariffs import Bill, Interval, TariffError
from customers.models import Customer
from customers.portal import usage
from metering.consumption import local_midnight

RECENT_DAYS = 7
ZERO = Decimal("0.000")
KWH = Decimal("0.001")


@dataclass
class Forecast:
    month: dt.date
    today: dt.date
    days_in_month: int
    days_so_far: int  # whole days before today
    days_to_come: int  # today and the rest
    kwh_so_far: Decimal
    daily_average: Decimal | None
    average_days: int  # how many recent days had readings
    kwh_to_come: Decimal = ZERO
    prepaid: bool = False
    currency: str = ""
    bill_so_far: Bill | None = None
    bill: Bill | None = None
    problem: str = ""
    lines: list = field(default_factory=list)

    @property
    def kwh_total(self) -> Decimal:
        return self.kwh_so_far + self.kwh_to_come

    @property
    def total(self) -> Decimal | None:
        return self.bill.total if self.bill is not None else None

    @property
    def total_so_far(self) -> Decimal | None:
        return self.bill_so_far.total if self.bill_so_far is not None else None


def _day_interval(day: dt.date, kwh: Decimal, zone) -> Interval:
    return Interval(
        local_midnight(day, zone), local_midnight(day + dt.timedelta(days=1), zone), kwh
    )


def forecast(customer: Customer, *, now: dt.datetime) -> Forecast:
    """This month's bill (or prepaid spend) forecast for ``customer`` at ``now``."""
    today = usage.local_today(customer, now)
    month = usage.month_start(today)
    length = usage.days_in_month(month)
    recent_first = min(month, today - dt.timedelta(days=RECENT_DAYS))
    kwh = usage.daily_kwh(customer, recent_first, today)  # whole days only
    so_far = {d: v for d, v in kwh.items() if d >= month}
    recent = [v for d, v in kwh.items() if d >= today - dt.timedelta(days=RECENT_DAYS)]
    average = (sum(recent, ZERO) / len(recent)).quantize(KWH, ROUND_HALF_UP) if recent else None
    package = customer.package
    result = Forecast(
        month=month,
        today=today,
        days_in_month=length,
        days_so_far=today.day - 1,
        days_to_come=length - today.day + 1,
        kwh_so_far=sum(so_far.values(), ZERO),
        daily_average=average,
        average_days=len(recent),
        prepaid=bool(package and package.is_prepaid),
        currency=customer.site.currency,
    )
    if average is None:
        result.problem = "There are no meter readings from the last week to go by yet."
        return result
    result.kwh_to_come = average * result.days_to_come
    try:
        schedule, calendar = schedule_for(customer), calendar_for(customer)
    except TariffError:
        result.problem = "Your package has no tariff to price it with yet."
        return result
    zone = calendar.zone
    used = [_day_interval(d, v, zone) for d, v in sorted(so_far.items())]
    coming = [
        _day_interval(today + dt.timedelta(days=i), average, zone)
        for i in range(result.days_to_come)
    ]
    common = {"month": month, "currency": result.currency, "schedule": schedule}
    try:
        result.bill_so_far = price_month(calendar=calendar, usage=used, **common)
        result.bill = price_month(calendar=calendar, usage=used + coming, **common)
    except TariffError as exc:
        result.problem = f"Your tariff could not be priced: {exc}"
    return result
