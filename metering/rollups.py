"""Hourly and daily consumption per meter and per site, kept current as readings arrive.

Consumption between two billable readings is the difference of the cumulative
register, spread over the time between them in proportion to time (linear on the
register: the estimate for missing reads). Where the gap is longer than the
gateway's log interval, the spread part is counted as estimated too, as is usage
to or from a server estimate (``metering.estimation``). A reading
marked as a register reset starts a new baseline (no usage is invented across
it); flagged readings take no part until a person accepts them.

``refresh`` recomputes, for the given meters, everything between the last
billable reading before ``start`` (reaching back to every reading that shares in
its hour) and the first after ``end`` — so a late or out-of-order reading
corrects the hours around it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, Max, Min, Q, Sum

from metering.models import DailyUsage, HourlyUsage, Meter, Reading, SiteDailyUsage

BILLABLE = (Reading.Quality.VALID, Reading.Quality.ACCEPTED, Reading.Quality.RESET)
HOUR = dt.timedelta(hours=1)
ZERO = Decimal("0")
KWH = Decimal("0.001")
CHUNK = 500
# How far from a bound the nearest reading is looked for first (see _nearest).
LOOKBACK = dt.timedelta(days=1)


def floor_hour(ts: dt.datetime) -> dt.datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


def spread(start: dt.datetime, end: dt.datetime, kwh: Decimal) -> dict[dt.datetime, Decimal]:
    """Share ``kwh`` used between ``start`` and ``end`` among the UTC hours, by time."""
    total = Decimal((end - start).total_seconds())
    shares: dict[dt.datetime, Decimal] = {}
    cursor = start
    while cursor < end:
        hour = floor_hour(cursor)
        stop = min(hour + HOUR, end)
        shares[hour] = kwh * Decimal((stop - cursor).total_seconds()) / total
        cursor = stop
    return shares


def ceil_hour(ts: dt.datetime) -> dt.datetime:
    """The first hour boundary at or after ``ts``."""
    hour = floor_hour(ts)
    return hour if hour == ts else hour + HOUR


def _nearest(billable, meter_ids: list[int], **bound) -> dict[int, dt.datetime]:
    """Each meter's reading time nearest to one bound (``ts__lt=…``, ``ts__gte=…``, …).

    Looks within ``LOOKBACK`` of the bound first, and over the whole history only
    for meters with nothing there, so the cost does not grow with the history.
    """
    ((lookup, at),) = bound.items()
    backwards = lookup in ("ts__lt", "ts__lte")
    near = {"ts__gte": at - LOOKBACK} if backwards else {"ts__lte": at + LOOKBACK}
    pick = Max("ts") if backwards else Min("ts")

    def search(readings) -> dict[int, dt.datetime]:
        rows = readings.filter(**bound).values("meter_id").order_by().annotate(t=pick)
        return {row["meter_id"]: row["t"] for row in rows}

    found = search(billable.filter(**near))
    missing = set(meter_ids) - found.keys()
    if missing:
        found.update(search(billable.filter(meter_id__in=missing)))
    return found


def _window(meter_ids: list[int], start: dt.datetime, end: dt.datetime):
    """Billable readings that share in the hours around ``start``..``end``.

    The window reaches back to the last reading at or before the start of the
    earliest hour that changes, and forward to the first reading at or after the
    end of the latest one, so every pair of readings sharing in a changed hour is
    in it. Also returns the meters with readings at or before the window's first
    hour and those with readings at or after its last: for them the hour of their
    first (last) reading in the window is only partly seen, and is left alone.
    """
    billable = Reading.objects.filter(
        meter_id__in=meter_ids, quality__in=BILLABLE, energy_kwh__isnull=False
    )
    before = _nearest(billable, meter_ids, ts__lt=start)
    after = _nearest(billable, meter_ids, ts__gt=end)
    bottom = floor_hour(min([*before.values(), start]))
    top = ceil_hour(max([*after.values(), end]))
    below = _nearest(billable, meter_ids, ts__lte=bottom)
    above = _nearest(billable, meter_ids, ts__gte=top)
    low, high = min([*below.values(), bottom]), max([*above.values(), top])
    rows = billable.filter(ts__gte=low, ts__lte=high).order_by("meter_id", "ts")
    return rows, set(below), set(above)


def _hourly(meter_ids: list[int], start: dt.datetime, end: dt.datetime):
    """New hourly rows, and the hour range each meter's rows were recomputed for."""
    intervals = dict(
        Meter.objects.filter(pk__in=meter_ids).values_list("pk", "gateway__log_interval_s")
    )
    usage: dict[tuple[int, dt.datetime], list] = defaultdict(lambda: [ZERO, ZERO, 0])
    seen: dict[int, list[dt.datetime]] = {}
    previous = None
    window, below, above = _window(meter_ids, start, end)
    rows = window.values_list("meter_id", "ts", "energy_kwh", "quality", "kind")
    for meter_id, ts, energy, quality, kind in rows:
        if previous is None or previous[0] != meter_id:
            previous = (meter_id, ts, energy, kind)
            seen[meter_id] = [ts, ts]
            continue
        _, prev_ts, prev_energy, prev_kind = previous
        delta = ZERO if quality == Reading.Quality.RESET else max(energy - prev_energy, ZERO)
        gap = (ts - prev_ts).total_seconds()
        estimated = gap > 1.5 * (intervals.get(meter_id) or 900) or Reading.Kind.ESTIMATED in (
            kind,
            prev_kind,
        )
        for hour, share in spread(prev_ts, ts, delta).items():
            cell = usage[(meter_id, hour)]
            cell[0] += share
            if estimated:
                cell[1] += share
        usage[(meter_id, floor_hour(ts - dt.timedelta(microseconds=1)))][2] += 1
        seen[meter_id][1] = ts
        previous = (meter_id, ts, energy, kind)
    spans: dict[int, tuple[dt.datetime, dt.datetime]] = {}
    for meter_id, (first, last) in seen.items():
        # Where readings outside the window share in the first or last hour, leave it alone.
        low = ceil_hour(first) if meter_id in below else floor_hour(first)
        if meter_id in above:
            high = floor_hour(last) - HOUR
        else:
            high = floor_hour(last - dt.timedelta(microseconds=1))
        spans[meter_id] = (low, high)
    new_rows = [
        HourlyUsage(
            meter_id=m,
            hour=h,
            kwh=v[0].quantize(KWH),
            estimated_kwh=v[1].quantize(KWH),
            intervals=v[2],
        )
        for (m, h), v in usage.items()
        if spans[m][0] <= h <= spans[m][1]
    ]
    return new_rows, spans


def _replace_hourly(new_rows, spans) -> None:
    condition = Q()
    for meter_id, (low, high) in spans.items():
        condition |= Q(meter_id=meter_id, hour__gte=low, hour__lte=high)
    if spans:
        HourlyUsage.objects.filter(condition).delete()
    HourlyUsage.objects.bulk_create(new_rows, batch_size=2000)


def _local_days(low: dt.datetime, high: dt.datetime, zone) -> list[dt.date]:
    first, last = low.astimezone(zone).date(), high.astimezone(zone).date()
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def _day_bounds(day: dt.date, zone) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(dt.UTC)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    return start, end.astimezone(dt.UTC)


def _refresh_days(spans) -> set[tuple[int, dt.date]]:
    """Recompute the daily rows the changed hours fall in; returns the (site, day)s touched.

    Set-based: one query for the hours of every (meter, local day) concerned, one
    upsert of the days.
    """
    meters = Meter.objects.filter(pk__in=spans, site__isnull=False).select_related("site")
    zones: dict[int, object] = {}
    totals: dict[tuple[int, dt.date], list] = {}
    site_days: set[tuple[int, dt.date]] = set()
    hours = Q(pk__in=[])
    for meter in meters:
        zone = zones[meter.pk] = meter.site.zone
        low, high = spans[meter.pk]
        days = _local_days(low, high + HOUR - dt.timedelta(microseconds=1), zone)
        if not days:
            continue
        hours |= Q(
            meter_id=meter.pk,
            hour__gte=_day_bounds(days[0], zone)[0],
            hour__lt=_day_bounds(days[-1], zone)[1],
        )
        for day in days:
            totals[(meter.pk, day)] = [ZERO, ZERO, 0]
            site_days.add((meter.site_id, day))
    rows = HourlyUsage.objects.filter(hours).values_list(
        "meter_id", "hour", "kwh", "estimated_kwh", "intervals"
    )
    for meter_id, hour, kwh, est, n in rows:
        cell = totals[(meter_id, hour.astimezone(zones[meter_id]).date())]
        cell[0] += kwh
        cell[1] += est
        cell[2] += n
    DailyUsage.objects.bulk_create(
        [
            DailyUsage(meter_id=m, day=d, kwh=v[0], estimated_kwh=v[1], intervals=v[2])
            for (m, d), v in sorted(totals.items())
        ],
        batch_size=2000,
        update_conflicts=True,
        unique_fields=["meter", "day"],
        update_fields=["kwh", "estimated_kwh", "intervals"],
    )
    return site_days


def _refresh_sites(site_days: set[tuple[int, dt.date]]) -> None:
    """Recompute the sites' daily totals from their meters' days (one query, one upsert)."""
    if not site_days:
        return
    wanted = Q(pk__in=[])
    for site_id, day in site_days:
        wanted |= Q(meter__site_id=site_id, day=day)
    sums = (
        DailyUsage.objects.filter(wanted)
        .values("meter__site_id", "day")
        .order_by()
        .annotate(kwh=Sum("kwh"), est=Sum("estimated_kwh"), meters=Count("id"))
    )
    found = {(r["meter__site_id"], r["day"]): r for r in sums}
    SiteDailyUsage.objects.bulk_create(
        [
            SiteDailyUsage(
                site_id=site_id,
                day=day,
                kwh=found.get((site_id, day), {}).get("kwh") or ZERO,
                estimated_kwh=found.get((site_id, day), {}).get("est") or ZERO,
                meters=found.get((site_id, day), {}).get("meters") or 0,
            )
            for site_id, day in sorted(site_days)
        ],
        update_conflicts=True,
        unique_fields=["site", "day"],
        update_fields=["kwh", "estimated_kwh", "meters"],
    )


@transaction.atomic
def refresh(*, meter_ids: list[int], start: dt.datetime, end: dt.datetime) -> None:
    """Recompute rollups of ``meter_ids`` around readings stored between ``start`` and ``end``."""
    site_days: set[tuple[int, dt.date]] = set()
    for n in range(0, len(meter_ids), CHUNK):
        chunk = list(meter_ids[n : n + CHUNK])
        new_rows, spans = _hourly(chunk, start, end)
        _replace_hourly(new_rows, spans)
        site_days |= _refresh_days(spans)
    _refresh_sites(site_days)
    _refresh_site_hours(site_days)


def _refresh_site_hours(site_days: set[tuple[int, dt.date]]) -> None:
    """Recompute the sites' hourly totals (the load profile) over the local days touched.

    Per site: one aggregate over its meters' hours between the first and the last day
    touched, then the site's hours there are replaced (a site hour no meter has any more
    goes away).
    """
    from mcoms.core.models import Site
    from metering.models import SiteHourlyUsage

    spans: dict[int, tuple[dt.date, dt.date]] = {}
    for site_id, day in site_days:
        low, high = spans.get(site_id, (day, day))
        spans[site_id] = (min(low, day), max(high, day))
    for site in Site.objects.filter(pk__in=spans):
        first, last = spans[site.pk]
        start, end = _day_bounds(first, site.zone)[0], _day_bounds(last, site.zone)[1]
        sums = (
            HourlyUsage.objects.filter(meter__site_id=site.pk, hour__gte=start, hour__lt=end)
            .values("hour")
            .order_by()
            .annotate(kwh=Sum("kwh"), est=Sum("estimated_kwh"), meters=Count("id"))
        )
        rows = [
            SiteHourlyUsage(
                site_id=site.pk,
                hour=r["hour"],
                kwh=r["kwh"],
                estimated_kwh=r["est"],
                meters=r["meters"],
            )
            for r in sums
        ]
        SiteHourlyUsage.objects.filter(site_id=site.pk, hour__gte=start, hour__lt=end).delete()
        SiteHourlyUsage.objects.bulk_create(rows, batch_size=2000)
