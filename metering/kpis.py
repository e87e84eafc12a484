"""Metering figures for the management dashboards: read-only aggregates over the rollups.

Nothing here reads raw readings. Energy comes from ``SiteDailyUsage`` (one row per site and
local day), the load profile from ``SiteHourlyUsage`` (one row per site and UTC hour),
both kept by :mod:`metering.rollups`; a customer's energy from their meters' ``DailyUsage``.

*Online* follows the missing-reads watch (:func:`metering.watch.meter_states`): a meter
Installed or Commissioned on an open bus slot is online when its newest reading (or, with
none yet, its installation on the bus) is within the site's ``missing_read_intervals`` ×
its gateway's log interval of now; otherwise offline. It is counted in the database with
one condition per gateway, never meter by meter. Calin meters (on no bus) are judged by
steering's record of the head-end (``metering.steering.kpis.calin_health``), which the
dashboards add.

The site rollups sum every meter of the site; :func:`energy` and :func:`load_profile`
take off the meters the caller names (``leave_out``) — the dashboards name the plant's
supply-side meters, which this module does not know of (``metering`` never imports
``metering.plant``).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import Count, F, Max, Q, Sum
from django.db.models.functions import ExtractHour, ExtractIsoWeekDay, TruncDate, TruncMonth

from customers.kpis import by_zone, local_bounds
from mcoms.core.models import Site
from metering.lifecycle import ON_BUS
from metering.models import (
    Alert,
    BusSlot,
    DailyUsage,
    Gateway,
    HourlyUsage,
    Incident,
    Meter,
    MeterAssignment,
    SiteDailyUsage,
    SiteHourlyUsage,
)

ZERO = Decimal(0)
WEEKEND = (6, 7)  # ISO weekday numbers of Saturday and Sunday


def energy(
    site_ids: Iterable[int],
    first: dt.date,
    last: dt.date,
    *,
    by: str = "day",
    leave_out: dict[int, Iterable[int]] | None = None,
):
    """Rows ``(site_id, period, kwh, estimated_kwh)``: per site and local day (or month).

    ``by="month"`` folds the days into the first day of their month in the database.
    ``leave_out`` (site id → meter ids) names meters whose ``DailyUsage`` is taken off
    their site's totals — e.g. supply-side (main/feeder) meters, which ``SiteDailyUsage``
    sums with the customers' meters: one more aggregate query for all of them.
    """
    rows = SiteDailyUsage.objects.filter(
        site_id__in=list(site_ids), day__gte=first, day__lte=last
    ).order_by()
    period = TruncMonth("day") if by == "month" else F("day")
    rows = (
        rows.annotate(period=period)
        .values("site_id", "period")
        .annotate(kwh=Sum("kwh"), est=Sum("estimated_kwh"))
    )
    found = {(r["site_id"], _date(r["period"])): [r["kwh"] or ZERO, r["est"] or ZERO] for r in rows}
    site_of = {m: site_id for site_id, ids in (leave_out or {}).items() for m in ids}
    if site_of:
        minus = (
            DailyUsage.objects.filter(meter_id__in=list(site_of), day__gte=first, day__lte=last)
            .annotate(period=period)
            .values("meter_id", "period")
            .order_by()
            .annotate(kwh=Sum("kwh"), est=Sum("estimated_kwh"))
        )
        for r in minus:
            key = (site_of[r["meter_id"]], _date(r["period"]))
            if key in found:
                found[key][0] -= r["kwh"] or ZERO
                found[key][1] -= r["est"] or ZERO
    return [(site_id, day, kwh, est) for (site_id, day), (kwh, est) in found.items()]


def _date(value) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def load_profile(
    sites: list[Site],
    first: dt.date,
    last: dt.date,
    *,
    leave_out: dict[int, Iterable[int]] | None = None,
) -> dict[tuple[bool, int], tuple[Decimal, int]]:
    """Per (weekend?, local hour of day): kWh summed over the period, all ``sites`` together,
    and the number of local days that hour has data on (to average over days with data, so
    a site whose hourly rollups began mid-period is not shown using less than it does).

    One query per time zone among the sites (each zone's hours are read in its own clock),
    and one more per zone whose sites have meters to ``leave_out`` (site id → meter ids:
    their ``HourlyUsage`` is taken off the hours).
    """
    totals: dict[tuple[bool, int], list] = defaultdict(lambda: [ZERO, 0])
    leave_out = leave_out or {}
    for zone, ids in by_zone(sites).items():
        tz = ZoneInfo(zone)
        start, end = local_bounds(zone, first, last)
        # One site has one row per hour and day: counting rows counts its days, cheaply.
        days = Count("id") if len(ids) == 1 else Count(TruncDate("hour", tzinfo=tz), distinct=True)
        rows = (
            SiteHourlyUsage.objects.filter(site_id__in=ids, hour__gte=start, hour__lt=end)
            .annotate(h=ExtractHour("hour", tzinfo=tz), wd=ExtractIsoWeekDay("hour", tzinfo=tz))
            .values("h", "wd")
            .order_by()
            .annotate(kwh=Sum("kwh"), days=days)
        )
        for row in rows:
            cell = totals[(row["wd"] in WEEKEND, row["h"])]
            cell[0] += row["kwh"] or ZERO
            cell[1] += row["days"]
        meters = [m for site_id in ids for m in leave_out.get(site_id, ())]
        if not meters:
            continue
        minus = (
            HourlyUsage.objects.filter(meter_id__in=meters, hour__gte=start, hour__lt=end)
            .annotate(h=ExtractHour("hour", tzinfo=tz), wd=ExtractIsoWeekDay("hour", tzinfo=tz))
            .values("h", "wd")
            .order_by()
            .annotate(kwh=Sum("kwh"))
        )
        for row in minus:
            key = (row["wd"] in WEEKEND, row["h"])
            if key in totals:
                totals[key][0] -= row["kwh"] or ZERO
    return {key: (kwh, days) for key, (kwh, days) in totals.items()}


def _gateway_windows(site_ids: list[int]) -> dict[int, dt.timedelta]:
    rows = Gateway.objects.filter(site_id__in=site_ids).values_list(
        "pk", "log_interval_s", "site__missing_read_intervals"
    )
    return {pk: dt.timedelta(seconds=log_s * n) for pk, log_s, n in rows}


def _window_kinds(site_ids: list[int]) -> list[tuple[int, int]]:
    """The distinct (log interval, site's missing intervals) pairs of the sites' gateways."""
    rows = Gateway.objects.filter(site_id__in=site_ids).values_list(
        "log_interval_s", "site__missing_read_intervals"
    )
    return sorted(set(rows))


def meter_health(site_ids: Iterable[int], *, now: dt.datetime) -> dict[int, dict[str, int]]:
    """Per site id: meters on a bus ``online`` and ``offline`` at ``now``, and ``fleet`` (all
    meters on the site). Three queries whatever the number of meters.

    A gateway's window is its log interval times its site's missing intervals: one
    condition per distinct pair (a handful), matched on the slot's gateway and site — not
    one per gateway (hundreds on a regional overview: building and evaluating that
    condition cost more than the counting).
    """
    ids = list(site_ids)
    recent = Q(pk__in=[])
    for log_s, intervals in _window_kinds(ids):
        since = now - dt.timedelta(seconds=log_s * intervals)
        recent |= (
            Q(gateway__log_interval_s=log_s)
            & Q(gateway__site__missing_read_intervals=intervals)
            & (Q(meter__comms__last_reading_ts__gte=since) | Q(start__gte=since))
        )
    rows = (
        BusSlot.objects.filter(end__isnull=True, meter__status__in=ON_BUS, gateway__site_id__in=ids)
        .values("gateway__site_id")
        .order_by()
        .annotate(watched=Count("id"), online=Count("id", filter=recent))
    )
    found = {
        r["gateway__site_id"]: {"online": r["online"], "offline": r["watched"] - r["online"]}
        for r in rows
    }
    fleet = (
        Meter.objects.filter(site_id__in=ids).values("site_id").order_by().annotate(n=Count("id"))
    )
    for r in fleet:
        found.setdefault(r["site_id"], {"online": 0, "offline": 0})["fleet"] = r["n"]
    return found


def open_alerts(site_ids: Iterable[int]) -> dict[int, int]:
    """Per site id: alerts not yet resolved (open or acknowledged)."""
    rows = (
        Alert.objects.filter(site_id__in=list(site_ids), resolved_at__isnull=True)
        .values("site_id")
        .order_by()
        .annotate(n=Count("id"))
    )
    return {r["site_id"]: r["n"] for r in rows}


def open_incidents(site_ids: Iterable[int]) -> dict[int, int]:
    """Per site id: outage incidents that have not ended."""
    rows = (
        Incident.objects.filter(site_id__in=list(site_ids), ended_at__isnull=True)
        .values("site_id")
        .order_by()
        .annotate(n=Count("id"))
    )
    return {r["site_id"]: r["n"] for r in rows}


def _served(customer_ids: list[int], start: dt.datetime, end: dt.datetime):
    """Assignments of the customers that overlap ``start``..``end``."""
    return MeterAssignment.objects.filter(customer_id__in=customer_ids, start__lt=end).filter(
        Q(end__isnull=True) | Q(end__gt=start)
    )


def customer_energy(
    customer_ids: Iterable[int], site: Site, first: dt.date, last: dt.date
) -> dict[int, Decimal]:
    """Per customer id: kWh of the meters that served them during the period (one query).

    A meter moved between two customers within the period counts its whole period for
    each of them: a rare case, and the meter page has the exact split.
    """
    ids = list(customer_ids)
    start, end = local_bounds(site.timezone, first, last)
    served = _served(ids, start, end)
    rows = (
        DailyUsage.objects.filter(day__gte=first, day__lte=last, meter__assignments__in=served)
        .values("meter__assignments__customer_id")
        .order_by()
        .annotate(kwh=Sum("kwh"))
    )
    return {r["meter__assignments__customer_id"]: r["kwh"] or ZERO for r in rows}


def customer_meters(
    customer_ids: Iterable[int], site: Site, first: dt.date, last: dt.date, *, now: dt.datetime
):
    """The meters serving the customers at ``now`` (and those that served them during the
    period), as dicts with the meter, its customer id, kWh in the period and online state."""
    ids = list(customer_ids)
    start, end = local_bounds(site.timezone, first, last)
    assignments = list(
        _served(ids, start, max(end, now))
        .select_related("meter", "meter__gateway", "meter__comms")
        .order_by("customer_id", "-start")
    )
    meter_ids = [a.meter_id for a in assignments]
    kwh = dict(
        DailyUsage.objects.filter(meter_id__in=meter_ids, day__gte=first, day__lte=last)
        .values_list("meter_id")
        .order_by()
        .annotate(s=Sum("kwh"))
    )
    last_day = dict(
        DailyUsage.objects.filter(meter_id__in=meter_ids)
        .values_list("meter_id")
        .order_by()
        .annotate(d=Max("day"))
    )
    windows = _gateway_windows([site.pk])
    slots = dict(
        BusSlot.objects.filter(meter_id__in=meter_ids, end__isnull=True).values_list(
            "meter_id", "start"
        )
    )
    found = []
    for a in assignments:
        m = a.meter
        comms = getattr(m, "comms", None)
        online = None
        if m.status in ON_BUS and m.pk in slots and m.gateway_id in windows:
            last_seen = max(filter(None, [comms.last_reading_ts if comms else None, slots[m.pk]]))
            online = last_seen >= now - windows[m.gateway_id]
        found.append(
            {
                "meter": m,
                "customer_id": a.customer_id,
                "current": a.end is None or a.end > now,
                "since": a.start,
                "until": a.end,
                "kwh": kwh.get(m.pk, ZERO),
                "online": online,
                "last_reading": comms.last_reading_ts if comms else None,
                "last_day": last_day.get(m.pk),
            }
        )
    return found


def customer_energy_trend(
    customer_id: int, site: Site, first: dt.date, last: dt.date, *, by: str = "day"
) -> dict[dt.date, tuple[Decimal, Decimal]]:
    """Per local day (or month): kWh and estimated kWh of the meters that served the
    customer during the period (one query)."""
    start, end = local_bounds(site.timezone, first, last)
    served = _served([customer_id], start, end)
    period = TruncMonth("day") if by == "month" else F("day")
    rows = (
        DailyUsage.objects.filter(day__gte=first, day__lte=last, meter__assignments__in=served)
        .annotate(period=period)
        .values("period")
        .order_by()
        .annotate(kwh=Sum("kwh"), est=Sum("estimated_kwh"))
    )
    return {_date(r["period"]): (r["kwh"] or ZERO, r["est"] or ZERO) for r in rows}
