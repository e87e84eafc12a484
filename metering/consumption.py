"""Consumption of a meter, a customer or a site, by interval, hour, day or month.

Everything here reads the rollup tables (``HourlyUsage``, ``DailyUsage``,
``SiteDailyUsage``), never the raw readings — with one exception: the interval
deltas of a single meter over a bounded range (at most ``LIMITS["interval"]``).

- Hours are UTC hours (every zone the platform serves is a whole number of hours
  from UTC). Days and months are the site's local calendar, as the rollups keep them.
- A customer's usage is their meters' usage while assigned to them. The hour is
  the unit: an hour belongs to whom the meter served at its start, so a meter
  moved at 10:37 counts 10:00–11:00 for the old customer. Whole local days inside
  an assignment come from ``DailyUsage``; the hours of a day the meter changed
  hands come from ``HourlyUsage``, so days add up to the hours.
- Periods without data are left out of the answer (not shown as zero).
- ``estimated_kwh`` is the part of ``kwh`` spread over gaps in the readings or
  leaning on a server estimate.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Q, Sum

from customers.models import Customer
from mcoms.core.models import Site
from metering.models import (
    DailyUsage,
    HourlyUsage,
    Meter,
    MeterAssignment,
    Reading,
    SiteDailyUsage,
)

INTERVAL, HOUR, DAY, MONTH = "interval", "hour", "day", "month"
BY = (INTERVAL, HOUR, DAY, MONTH)
LIMITS = {
    INTERVAL: dt.timedelta(days=7),
    HOUR: dt.timedelta(days=31),
    DAY: dt.timedelta(days=366),
    MONTH: dt.timedelta(days=1096),
}
ONE_HOUR = dt.timedelta(hours=1)
ZERO = Decimal("0.000")
BILLABLE = (Reading.Quality.VALID, Reading.Quality.ACCEPTED, Reading.Quality.RESET)
UTC = zoneinfo.ZoneInfo("UTC")


class RangeError(ValueError):
    """The asked range or granularity cannot be answered (too long, wrong order, unknown)."""


@dataclass(frozen=True)
class Bucket:
    """Usage in one period: ``start`` (inclusive) to ``end`` (exclusive)."""

    start: dt.datetime
    end: dt.datetime
    period: str
    kwh: Decimal
    estimated_kwh: Decimal


@dataclass
class Usage:
    """The answer: buckets in time order and their totals."""

    by: str
    start: dt.datetime
    end: dt.datetime
    zone: zoneinfo.ZoneInfo
    buckets: list[Bucket] = field(default_factory=list)

    @property
    def kwh(self) -> Decimal:
        """Total of the buckets."""
        return sum((b.kwh for b in self.buckets), ZERO)

    @property
    def estimated_kwh(self) -> Decimal:
        """Total estimated part of the buckets."""
        return sum((b.estimated_kwh for b in self.buckets), ZERO)


Period = tuple[dt.datetime, dt.datetime]


# --- ranges and calendars -----------------------------------------------------------------


def floor_hour(ts: dt.datetime) -> dt.datetime:
    """The start of the UTC hour containing ``ts``."""
    return ts.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def ceil_hour(ts: dt.datetime) -> dt.datetime:
    """The first UTC hour boundary at or after ``ts``."""
    hour = floor_hour(ts)
    return hour if hour == ts else hour + ONE_HOUR


def local_midnight(day: dt.date, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """When ``day`` begins in ``zone``, in UTC."""
    return dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(dt.UTC)


def month_of(day: dt.date) -> dt.date:
    """The first day of the month of ``day``."""
    return day.replace(day=1)


def next_month(month: dt.date) -> dt.date:
    """The first day of the month after ``month``."""
    return (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def align(by: str, start: dt.datetime, end: dt.datetime, zone) -> tuple[dt.datetime, dt.datetime]:
    """Widen ``start``..``end`` to whole buckets of ``by`` (intervals are left as asked)."""
    if by == HOUR:
        return floor_hour(start), ceil_hour(end)
    if by in (DAY, MONTH):
        first = start.astimezone(zone).date()
        last_moment = (end - dt.timedelta(microseconds=1)).astimezone(zone).date()
        if by == MONTH:
            first, last = month_of(first), next_month(month_of(last_moment))
        else:
            last = last_moment + dt.timedelta(days=1)
        return local_midnight(first, zone), local_midnight(last, zone)
    return start, end


def check_range(by: str, start: dt.datetime, end: dt.datetime) -> None:
    """Raise ``RangeError`` unless ``by`` is known and ``start``..``end`` is within its limit."""
    if by not in BY:
        raise RangeError(f"by must be one of {', '.join(BY)}.")
    if end <= start:
        raise RangeError("to must be after from.")
    if end - start > LIMITS[by]:
        raise RangeError(f"At most {LIMITS[by].days} days by {by}; ask for a shorter range.")


def _zone_of_site(site: Site | None) -> zoneinfo.ZoneInfo:
    return site.zone if site is not None else UTC


# --- turning rows into buckets ------------------------------------------------------------


def _hour_buckets(rows: Iterable[tuple], zone) -> list[Bucket]:
    """Rows of (hour, kwh, estimated) summed per hour."""
    sums: dict[dt.datetime, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    for hour, kwh, est in rows:
        sums[hour][0] += kwh
        sums[hour][1] += est
    return [
        Bucket(
            start=hour.astimezone(zone),
            end=(hour + ONE_HOUR).astimezone(zone),
            period=hour.astimezone(zone).isoformat(),
            kwh=kwh,
            estimated_kwh=est,
        )
        for hour, (kwh, est) in sorted(sums.items())
    ]


def _day_buckets(days: dict[dt.date, list[Decimal]], zone) -> list[Bucket]:
    return [
        Bucket(
            start=local_midnight(day, zone).astimezone(zone),
            end=local_midnight(day + dt.timedelta(days=1), zone).astimezone(zone),
            period=day.isoformat(),
            kwh=kwh,
            estimated_kwh=est,
        )
        for day, (kwh, est) in sorted(days.items())
    ]


def _month_buckets(days: dict[dt.date, list[Decimal]], zone) -> list[Bucket]:
    months: dict[dt.date, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    for day, (kwh, est) in days.items():
        months[month_of(day)][0] += kwh
        months[month_of(day)][1] += est
    return [
        Bucket(
            start=local_midnight(month, zone).astimezone(zone),
            end=local_midnight(next_month(month), zone).astimezone(zone),
            period=f"{month:%Y-%m}",
            kwh=kwh,
            estimated_kwh=est,
        )
        for month, (kwh, est) in sorted(months.items())
    ]


def _add_days(days: dict[dt.date, list[Decimal]], rows: Iterable[tuple]) -> None:
    for day, kwh, est in rows:
        days[day][0] += kwh
        days[day][1] += est


# --- usage over assignment periods (customers, and a meter seen by its customer) -----------


def served_periods(
    customer: Customer, start: dt.datetime, end: dt.datetime, meter: Meter | None = None
) -> dict[int, list[Period]]:
    """For each meter that served ``customer`` between ``start`` and ``end``: when it did.

    Periods are clipped to the range and rounded to whole hours (an hour belongs to
    whom the meter served at its start).
    """
    assignments = MeterAssignment.objects.filter(customer=customer, start__lt=end).filter(
        Q(end__isnull=True) | Q(end__gt=start)
    )
    if meter is not None:
        assignments = assignments.filter(meter=meter)
    periods: dict[int, list[Period]] = defaultdict(list)
    for meter_id, served_from, served_until in assignments.values_list("meter_id", "start", "end"):
        low = ceil_hour(max(served_from, start))
        high = ceil_hour(min(served_until or end, end))
        if low < high:
            periods[meter_id].append((low, high))
    return dict(periods)


def _hours_condition(periods: dict[int, list[Period]]) -> Q:
    condition = Q(pk__in=[])
    for meter_id, spans in periods.items():
        for low, high in spans:
            condition |= Q(meter_id=meter_id, hour__gte=low, hour__lt=high)
    return condition


def _periods_by_day(periods: dict[int, list[Period]], zone) -> tuple[dict[int, list[Period]], Q]:
    """Split periods into hour spans (part days) and a DailyUsage condition (whole days)."""
    hours: dict[int, list[Period]] = defaultdict(list)
    whole = Q(pk__in=[])
    for meter_id, spans in periods.items():
        for low, high in spans:
            first = low.astimezone(zone).date()
            if local_midnight(first, zone) < low:
                first += dt.timedelta(days=1)
            last = high.astimezone(zone).date()  # the day after the last whole day
            if first >= last:
                hours[meter_id].append((low, high))
                continue
            whole |= Q(meter_id=meter_id, day__gte=first, day__lt=last)
            if low < local_midnight(first, zone):
                hours[meter_id].append((low, local_midnight(first, zone)))
            if local_midnight(last, zone) < high:
                hours[meter_id].append((local_midnight(last, zone), high))
    return dict(hours), whole


def _usage_over_periods(periods: dict[int, list[Period]], *, by: str, zone) -> list[Bucket]:
    if by == HOUR:
        rows = HourlyUsage.objects.filter(_hours_condition(periods)).values_list(
            "hour", "kwh", "estimated_kwh"
        )
        return _hour_buckets(rows, zone)
    hours, whole = _periods_by_day(periods, zone)
    days: dict[dt.date, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    _add_days(days, DailyUsage.objects.filter(whole).values_list("day", "kwh", "estimated_kwh"))
    if hours:
        part = HourlyUsage.objects.filter(_hours_condition(hours))
        _add_days(
            days,
            (
                (hour.astimezone(zone).date(), kwh, est)
                for hour, kwh, est in part.values_list("hour", "kwh", "estimated_kwh")
            ),
        )
    return _day_buckets(days, zone) if by == DAY else _month_buckets(days, zone)


# --- the three subjects ---------------------------------------------------------------------


def meter_usage(
    meter: Meter,
    *,
    by: str,
    start: dt.datetime,
    end: dt.datetime,
    customer: Customer | None = None,
) -> Usage:
    """Usage of one meter; with ``customer``, only while the meter served that customer."""
    check_range(by, start, end)
    zone = _zone_of_site(meter.site)
    if by == INTERVAL:
        periods = None
        if customer is not None:
            periods = served_periods(customer, start, end, meter).get(meter.pk, [])
        buckets = interval_deltas(meter, start=start, end=end, periods=periods, zone=zone)
        return Usage(by=by, start=start, end=end, zone=zone, buckets=buckets)
    start, end = align(by, start, end, zone)
    usage = Usage(by=by, start=start, end=end, zone=zone)
    if customer is not None:
        periods = served_periods(customer, start, end, meter)
        usage.buckets = _usage_over_periods(periods, by=by, zone=zone)
    elif by == HOUR:
        rows = HourlyUsage.objects.filter(meter=meter, hour__gte=start, hour__lt=end)
        usage.buckets = _hour_buckets(rows.values_list("hour", "kwh", "estimated_kwh"), zone)
    else:
        days: dict[dt.date, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
        first, last = start.astimezone(zone).date(), end.astimezone(zone).date()
        rows = DailyUsage.objects.filter(meter=meter, day__gte=first, day__lt=last)
        _add_days(days, rows.values_list("day", "kwh", "estimated_kwh"))
        usage.buckets = _day_buckets(days, zone) if by == DAY else _month_buckets(days, zone)
    return usage


def customer_usage(customer: Customer, *, by: str, start: dt.datetime, end: dt.datetime) -> Usage:
    """Usage of a customer: their meters' usage while assigned to them (not by interval)."""
    if by == INTERVAL:
        raise RangeError("By interval is for a single meter; ask a meter of this customer.")
    check_range(by, start, end)
    zone = _zone_of_site(customer.site)
    start, end = align(by, start, end, zone)
    periods = served_periods(customer, start, end)
    buckets = _usage_over_periods(periods, by=by, zone=zone)
    return Usage(by=by, start=start, end=end, zone=zone, buckets=buckets)


def site_usage(site: Site, *, by: str, start: dt.datetime, end: dt.datetime) -> Usage:
    """Usage of all of a site's meters (not by interval)."""
    if by == INTERVAL:
        raise RangeError("By interval is for a single meter; ask a meter of this site.")
    check_range(by, start, end)
    zone = site.zone
    start, end = align(by, start, end, zone)
    usage = Usage(by=by, start=start, end=end, zone=zone)
    if by == HOUR:
        rows = (
            HourlyUsage.objects.filter(meter__site=site, hour__gte=start, hour__lt=end)
            .values("hour")
            .order_by("hour")
            .annotate(kwh=Sum("kwh"), est=Sum("estimated_kwh"))
            .values_list("hour", "kwh", "est")
        )
        usage.buckets = _hour_buckets(rows, zone)
        return usage
    first, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    days: dict[dt.date, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    rows = SiteDailyUsage.objects.filter(site=site, day__gte=first, day__lt=last)
    _add_days(days, rows.values_list("day", "kwh", "estimated_kwh"))
    usage.buckets = _day_buckets(days, zone) if by == DAY else _month_buckets(days, zone)
    return usage


# --- the one raw exception: a single meter's interval deltas ---------------------------------


def interval_deltas(
    meter: Meter,
    *,
    start: dt.datetime,
    end: dt.datetime,
    periods: list[Period] | None = None,
    zone=UTC,
) -> list[Bucket]:
    """Usage between consecutive billable readings of one meter that end in ``start``..``end``.

    The range must be within ``LIMITS["interval"]``. A reset reading gives zero
    (a new baseline), a drop gives zero, and an interval longer than 1.5 log
    intervals or touching a server estimate is estimated. With ``periods`` only
    intervals starting inside them are kept.
    """
    check_range(INTERVAL, start, end)
    billable = Reading.objects.filter(
        meter=meter, quality__in=BILLABLE, energy_kwh__isnull=False
    ).values_list("ts", "energy_kwh", "quality", "kind")
    previous = billable.filter(ts__lt=start).order_by("-ts").first()
    rows = list(billable.filter(ts__gte=start, ts__lt=end).order_by("ts"))
    step = 1.5 * (meter.gateway.log_interval_s if meter.gateway_id else 900)
    buckets = []
    for ts, energy, quality, kind in rows:
        if previous is not None:
            prev_ts, prev_energy, _, prev_kind = previous
            kwh = ZERO if quality == Reading.Quality.RESET else max(energy - prev_energy, ZERO)
            gap = (ts - prev_ts).total_seconds()
            estimated = gap > step or Reading.Kind.ESTIMATED in (kind, prev_kind)
            inside = periods is None or any(low <= prev_ts < high for low, high in periods)
            if inside:
                buckets.append(
                    Bucket(
                        start=prev_ts.astimezone(zone),
                        end=ts.astimezone(zone),
                        period=ts.astimezone(zone).isoformat(),
                        kwh=kwh,
                        estimated_kwh=kwh if estimated else ZERO,
                    )
                )
        previous = (ts, energy, quality, kind)
    return buckets
