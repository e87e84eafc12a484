"""Read-only queries of the plant: telemetry, assets, balances, alerts — and the technical
KPIs the management dashboards show (:func:`site_kpis`, :func:`kpi_totals`).

OpenEMS channels are addressed ``component/Channel``. Energy channels are cumulative
counters in Wh; power channels are in W; ``EssSoc`` in %.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal

from django.db.models import Count, Max, Min, Sum

from mcoms.core.models import Site
from metering.plant.models import (
    EnergyBalance,
    PlantAlert,
    PlantAsset,
    PlantLog,
    PlantSettings,
    TelemetrySample,
)

PRODUCTION_POWER = "_sum/ProductionActivePower"
PRODUCTION_ENERGY = "_sum/ProductionActiveEnergy"
CONSUMPTION_POWER = "_sum/ConsumptionActivePower"
GRID_POWER = "_sum/GridActivePower"
GRID_BUY_ENERGY = "_sum/GridBuyActiveEnergy"
SOC = "_sum/EssSoc"
ESS_POWER = "_sum/EssActivePower"
CHARGE_ENERGY = "_sum/EssActiveChargeEnergy"
DISCHARGE_ENERGY = "_sum/EssActiveDischargeEnergy"
# How far outside a period a counter sample may be to bound it (the agent samples every
# few minutes; an hour's gap is a gap).
BOUND_SLACK = dt.timedelta(hours=1)
TWO = Decimal("0.01")
KWH = Decimal("0.001")


def day_bounds(day: dt.date, zone) -> tuple[dt.datetime, dt.datetime]:
    """A local calendar day's start and end in UTC."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(dt.UTC)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    return start, end.astimezone(dt.UTC)


def settings_for(site: Site) -> PlantSettings:
    """The site's plant settings (unsaved defaults when it has none)."""
    return PlantSettings.objects.filter(site=site).first() or PlantSettings(site=site)


def assets_of(site: Site, kind: str | None = None):
    """The site's active plant assets (of one kind)."""
    rows = PlantAsset.objects.filter(site=site, active=True).select_related("meter")
    return rows.filter(kind=kind) if kind else rows


def supply_meter_ids(site: Site) -> set[int]:
    """Meters flagged as supply-side (main/feeder) at the site."""
    return set(
        PlantAsset.objects.filter(
            site=site, kind=PlantAsset.Kind.SUPPLY_METER, active=True
        ).values_list("meter_id", flat=True)
    )


def is_supply_meter(meter_id: int) -> bool:
    """True when the meter is a site's main/feeder meter (not a customer's)."""
    return PlantAsset.objects.filter(
        meter_id=meter_id, kind=PlantAsset.Kind.SUPPLY_METER, active=True
    ).exists()


def total(site: Site, kind: str, attr: str) -> Decimal:
    """Sum of one rating over the site's active assets of a kind (kWp, kWh)."""
    value = PlantAsset.objects.filter(site=site, kind=kind, active=True).aggregate(v=Sum(attr))["v"]
    return value or Decimal("0")


# --- telemetry --------------------------------------------------------------------------------


def samples(site: Site, channel: str, start: dt.datetime, end: dt.datetime):
    """(ts, value) of one channel between start (included) and end (excluded), in order."""
    return list(
        TelemetrySample.objects.filter(site=site, channel=channel, ts__gte=start, ts__lt=end)
        .order_by("ts")
        .values_list("ts", "value")
    )


def latest(site: Site, channel: str | None = None, before: dt.datetime | None = None):
    """The newest sample (of a channel) at the site, or None."""
    rows = TelemetrySample.objects.filter(site=site)
    if channel:
        rows = rows.filter(channel=channel)
    if before:
        rows = rows.filter(ts__lte=before)
    return rows.order_by("-ts").first()


def _bound(site: Site, channel: str, at: dt.datetime, start: dt.datetime, end: dt.datetime, low):
    """The sample that bounds a period at ``at``: the nearest one just outside it, else the
    nearest inside."""
    rows = TelemetrySample.objects.filter(site=site, channel=channel)
    if low:
        outside = rows.filter(ts__lte=at, ts__gte=at - BOUND_SLACK).order_by("-ts").first()
        inside = rows.filter(ts__gte=start, ts__lt=end).order_by("ts").first()
    else:
        outside = rows.filter(ts__gte=at, ts__lte=at + BOUND_SLACK).order_by("ts").first()
        inside = rows.filter(ts__gte=start, ts__lt=end).order_by("-ts").first()
    return outside or inside


def counter_delta_kwh(
    site: Site, channel: str, start: dt.datetime, end: dt.datetime
) -> Decimal | None:
    """How much a cumulative Wh counter rose over a period, in kWh (None without two samples).

    A counter that went down (an inverter replaced or reset) counts from its new value.
    """
    first = _bound(site, channel, start, start, end, low=True)
    last = _bound(site, channel, end, start, end, low=False)
    if first is None or last is None or first.pk == last.pk:
        return None
    values = [first.value] + [
        v for _, v in samples(site, channel, first.ts + dt.timedelta(microseconds=1), last.ts)
    ]
    values.append(last.value)
    rise = sum((b - a) if b >= a else b for a, b in zip(values, values[1:], strict=False))
    return (Decimal(str(rise)) / 1000).quantize(KWH)


def hourly_means(site: Site, channel: str, start: dt.datetime, hours: int) -> list[float | None]:
    """Mean of a channel per hour from ``start`` (None for an hour without samples)."""
    sums: dict[int, list[float]] = {}
    for ts, value in samples(site, channel, start, start + dt.timedelta(hours=hours)):
        sums.setdefault(int((ts - start).total_seconds() // 3600), []).append(value)
    return [(sum(sums[h]) / len(sums[h])) if h in sums else None for h in range(hours)]


def logs_of(site: Site, start: dt.datetime, end: dt.datetime):
    """The site's hand logs between start and end, oldest first."""
    return PlantLog.objects.filter(site=site, read_at__gte=start, read_at__lt=end).order_by(
        "read_at"
    )


# --- balances and alerts ----------------------------------------------------------------------


def balances(site: Site, period: str, limit: int = 31):
    """The site's latest balances of a period, newest first."""
    return EnergyBalance.objects.filter(site=site, period=period).order_by("-start")[:limit]


def open_alerts(site_ids: Iterable[int]):
    """Open plant alerts of these sites, newest first."""
    return PlantAlert.objects.filter(
        site_id__in=list(site_ids), status=PlantAlert.Status.OPEN
    ).select_related("site")


def plant_sites(site_ids: Iterable[int] | None = None) -> list[int]:
    """Sites with any plant: assets, telemetry or logs."""
    ids = set(PlantAsset.objects.filter(active=True).values_list("site_id", flat=True))
    ids |= set(TelemetrySample.objects.values_list("site_id", flat=True).distinct())
    ids |= set(PlantLog.objects.values_list("site_id", flat=True).distinct())
    if site_ids is not None:
        ids &= set(site_ids)
    return sorted(ids)


# --- KPIs for the management dashboards --------------------------------------------------------


def site_kpis(site_ids: Iterable[int], start: dt.date, end: dt.date) -> dict[int, dict]:
    """Technical KPIs per site over the local days ``start``..``end`` (both included).

    For the dashboards: ``{site_id: {...}}`` with
    ``supplied_kwh``, ``consumed_kwh``, ``losses_kwh``, ``losses_pct`` (over the days whose
    supply is known), ``days_with_balance``, ``estimated_kwh``, ``pv_kwh``, ``kwp``,
    ``specific_yield`` (kWh/kWp over the days with production), ``min_soc_pct``,
    ``generator_hours``, ``fuel_added_l`` and ``open_plant_alerts``. Values are Decimal or
    None when unknown. A few queries per site; the balances are read from their table
    (kept by the daily task), the rest from telemetry and logs.
    """
    site_ids = list(site_ids)
    result: dict[int, dict] = {}
    day_rows = (
        EnergyBalance.objects.filter(
            site_id__in=site_ids,
            period=EnergyBalance.Period.DAY,
            start__gte=start,
            start__lte=end,
            supplied_kwh__isnull=False,
        )
        .values("site_id")
        .annotate(
            supplied=Sum("supplied_kwh"),
            consumed=Sum("consumed_kwh"),
            est=Sum("estimated_kwh"),
            days=Count("id"),
        )
    )
    by_site = {r["site_id"]: r for r in day_rows}
    alerts = dict(
        PlantAlert.objects.filter(site_id__in=site_ids, status=PlantAlert.Status.OPEN)
        .values("site_id")
        .annotate(n=Count("id"))
        .values_list("site_id", "n")
    )
    for site in Site.objects.filter(pk__in=site_ids):
        row = by_site.get(site.pk)
        supplied = row["supplied"] if row else None
        consumed = row["consumed"] if row else None
        losses = (supplied - consumed) if row else None
        pct = (losses * 100 / supplied).quantize(TWO) if row and supplied else None
        t0, _ = day_bounds(start, site.zone)
        _, t1 = day_bounds(end, site.zone)
        pv = counter_delta_kwh(site, PRODUCTION_ENERGY, t0, t1)
        kwp = total(site, PlantAsset.Kind.PV_ARRAY, "kwp")
        soc = TelemetrySample.objects.filter(
            site=site, channel=SOC, ts__gte=t0, ts__lt=t1
        ).aggregate(lo=Min("value"))["lo"]
        gen = generator_hours(site, t0, t1)
        fuel = logs_of(site, t0, t1).aggregate(f=Sum("fuel_added_l"))["f"]
        result[site.pk] = {
            "supplied_kwh": supplied,
            "consumed_kwh": consumed,
            "losses_kwh": losses,
            "losses_pct": pct,
            "days_with_balance": row["days"] if row else 0,
            "estimated_kwh": row["est"] if row else None,
            "pv_kwh": pv,
            "kwp": kwp,
            "specific_yield": (pv / kwp).quantize(TWO) if pv is not None and kwp else None,
            "min_soc_pct": Decimal(str(round(soc, 1))) if soc is not None else None,
            "generator_hours": gen,
            "fuel_added_l": fuel,
            "open_plant_alerts": alerts.get(site.pk, 0),
        }
    return result


def kpi_totals(kpis: dict[int, dict]) -> dict:
    """The KPIs of many sites added up (for a region's or the organisation's dashboard)."""
    rows = list(kpis.values())

    def add(key):
        values = [r[key] for r in rows if r[key] is not None]
        return sum(values, Decimal("0")) if values else None

    supplied, consumed = add("supplied_kwh"), add("consumed_kwh")
    losses = add("losses_kwh")
    return {
        "supplied_kwh": supplied,
        "consumed_kwh": consumed,
        "losses_kwh": losses,
        "losses_pct": (losses * 100 / supplied).quantize(TWO) if supplied else None,
        "pv_kwh": add("pv_kwh"),
        "generator_hours": add("generator_hours"),
        "fuel_added_l": add("fuel_added_l"),
        "open_plant_alerts": sum(r["open_plant_alerts"] for r in rows),
    }


def generator_hours(site: Site, start: dt.datetime, end: dt.datetime) -> Decimal | None:
    """Generator run hours in a period, from the run-hour counter in the hand logs.

    The counter's last reading in the period minus the last one before it (or the first
    in it when there is none before).
    """
    logs = PlantLog.objects.filter(site=site, generator_hours__isnull=False)
    inside = logs.filter(read_at__gte=start, read_at__lt=end).aggregate(
        lo=Min("generator_hours"), hi=Max("generator_hours")
    )
    if inside["hi"] is None:
        return None
    before = logs.filter(read_at__lt=start).order_by("-read_at").first()
    base = before.generator_hours if before else inside["lo"]
    return inside["hi"] - base


def uncertain_meter_count(balance: EnergyBalance) -> int:
    """How many meters of a balance had estimated or missing data."""
    return len(balance.uncertain or [])
