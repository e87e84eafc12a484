"""A customer's consumption as the portal shows it: this period beside the one before.

* **By day**: each day of this month so far (bars) beside the same day of the previous
  month (a line), day 1 to 31 — a month shorter than the other simply has no value on
  the days it lacks.
* **By month**: the last twelve months, this one included (bars), beside the twelve
  before them (a line): each month beside the same month a year earlier.

Everything comes from :func:`metering.consumption.customer_usage` (the daily rollups of
the meters while they served this customer). Days are the site's local calendar. A day
or month without data is a gap, never a zero.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from customers.models import Customer
from mcoms.core.charts import Chart, Series, chart
from metering import consumption

ZERO = Decimal("0.000")
CHART_WIDTH = 360  # drawn for a phone; the SVG scales to wider screens


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def add_months(month: dt.date, n: int) -> dt.date:
    """The first of the month ``n`` months after (or before, when negative) ``month``."""
    index = month.year * 12 + month.month - 1 + n
    return dt.date(index // 12, index % 12 + 1, 1)


def days_in_month(month: dt.date) -> int:
    return (add_months(month, 1) - month).days


def local_today(customer: Customer, now: dt.datetime) -> dt.date:
    return now.astimezone(customer.site.zone).date()


def daily_kwh(customer: Customer, first: dt.date, end: dt.date) -> dict[dt.date, Decimal]:
    """kWh per local day in ``[first, end)``; days without data are absent."""
    zone = customer.site.zone
    usage = consumption.customer_usage(
        customer,
        by=consumption.DAY,
        start=consumption.local_midnight(first, zone),
        end=consumption.local_midnight(end, zone),
    )
    return {b.start.astimezone(zone).date(): b.kwh for b in usage.buckets}


def monthly_kwh(customer: Customer, first: dt.date, end: dt.date) -> dict[dt.date, Decimal]:
    """kWh per local month (keyed by its first day) in ``[first, end)``."""
    zone = customer.site.zone
    usage = consumption.customer_usage(
        customer,
        by=consumption.MONTH,
        start=consumption.local_midnight(first, zone),
        end=consumption.local_midnight(end, zone),
    )
    return {month_start(b.start.astimezone(zone).date()): b.kwh for b in usage.buckets}


@dataclass
class DayComparison:
    month: dt.date
    previous: dt.date
    today: dt.date
    current: list[Decimal | None]  # day 1..31 of this month (None: no data or not yet)
    before: list[Decimal | None]  # day 1..31 of the previous month
    chart: Chart

    @property
    def so_far(self) -> Decimal:
        """This month up to and including today."""
        return sum((v for v in self.current if v is not None), ZERO)

    @property
    def before_same_days(self) -> Decimal:
        """The previous month over the same days (1 to today's day)."""
        return sum((v for v in self.before[: self.today.day] if v is not None), ZERO)

    @property
    def before_total(self) -> Decimal:
        return sum((v for v in self.before if v is not None), ZERO)


def by_day(customer: Customer, *, now: dt.datetime) -> DayComparison:
    """This month's days so far beside the previous month's, day by day."""
    today = local_today(customer, now)
    month = month_start(today)
    previous = add_months(month, -1)
    kwh = daily_kwh(customer, previous, today + dt.timedelta(days=1))
    length = max(days_in_month(month), days_in_month(previous))
    days = range(1, length + 1)

    def value(first: dt.date, n: int, last: dt.date) -> Decimal | None:
        if n > days_in_month(first):
            return None
        day = first.replace(day=n)
        return kwh.get(day) if day <= last else None

    current = [value(month, n, today) for n in days]
    before = [value(previous, n, month - dt.timedelta(days=1)) for n in days]
    drawn = chart(
        [str(n) for n in days],
        [
            Series(f"{month:%B %Y}", current, kind="bar"),
            Series(f"{previous:%B %Y}", before, kind="line", dashed=True),
        ],
        title=f"Energy by day: {month:%B} and {previous:%B}",
        unit="kWh",
        places=1,
        width=CHART_WIDTH,
        max_x_labels=8,
    )
    return DayComparison(month, previous, today, current, before, drawn)


@dataclass
class MonthComparison:
    months: list[dt.date]  # the last 12, oldest first, this one last
    current: list[Decimal | None]
    before: list[Decimal | None]  # the same months a year earlier
    chart: Chart

    @property
    def total(self) -> Decimal:
        return sum((v for v in self.current if v is not None), ZERO)

    @property
    def total_before(self) -> Decimal:
        return sum((v for v in self.before if v is not None), ZERO)


def by_month(customer: Customer, *, now: dt.datetime) -> MonthComparison:
    """The last twelve months (this one so far included) beside the twelve before them."""
    month = month_start(local_today(customer, now))
    first = add_months(month, -23)
    kwh = monthly_kwh(customer, first, add_months(month, 1))
    months = [add_months(month, -11 + i) for i in range(12)]
    current = [kwh.get(m) for m in months]
    before = [kwh.get(add_months(m, -12)) for m in months]
    drawn = chart(
        [f"{m:%b}" if m.month != 1 else f"{m:%b %y}" for m in months],
        [
            Series("Last 12 months", current, kind="bar"),
            Series("The 12 before", before, kind="line", dashed=True),
        ],
        title="Energy by month: the last 12 months and the 12 before",
        unit="kWh",
        places=1,
        width=CHART_WIDTH,
        max_x_labels=6,
    )
    return MonthComparison(months, current, before, drawn)
