"""Read-only queries of the plant: telemetry, assets, balances, alerts — and the technical
KPIs the management dashboards show (:func:`site_kpis`, :func:`kpi_totals`).

OpenEMS channels are addressed ``component/Channel``. Energy channels are cumulative
counters in Wh; power channels are in W; ``EssSoc`` in %.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal

from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Exists, Max, Min, OuterRef, Q, Subquery, Sum

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
# How long the telemetry figures of a period stay cached (their key changes with any new
# sample anyway; this only bounds the memory they hold).
CACHE_SECONDS = 3600
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
    The rise is added up in the database (``LAG`` over the samples between the two
    bounds), so a year of five-minute samples is never read into Python.
    """
    first = _bound(site, channel, start, start, end, low=True)
    last = _bound(site, channel, end, start, end, low=False)
    if first is None or last is None or first.pk == last.pk:
        return None
    ops = connection.ops
    table = connection.ops.quote_name(TelemetrySample._meta.db_table)
    sql = (
        "SELECT SUM(CASE WHEN prev IS NULL THEN 0 WHEN value >= prev THEN value - prev"
        " ELSE value END) FROM (SELECT value, LAG(value) OVER (ORDER BY ts, id) AS prev"
        f" FROM {table} WHERE site_id = %s AND channel = %s AND ts >= %s AND ts <= %s) AS steps"
    )
    params = [
        site.pk,
        channel,
        ops.adapt_datetimefield_value(first.ts),
        ops.adapt_datetimefield_value(last.ts),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        (rise,) = cursor.fetchone()
    return (Decimal(str(rise or 0)) / 1000).quantize(KWH)


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
    """Sites with any plant: assets, telemetry or logs (one query; each test is an index
    lookup per site, never a scan of the telemetry).

    The telemetry test is the site's first sample in the (site, channel, ts) index order, not
    an ``EXISTS``: when one site holds most samples, PostgreSQL costs an ``EXISTS`` as a
    sequential scan that finds a row at once, and for every site without telemetry it then
    read the whole table (5 s for 100 sites beside a year of one site's samples, found by
    the load test); an ordered ``LIMIT 1`` is answered from the index."""
    sites = Site.objects.all() if site_ids is None else Site.objects.filter(pk__in=list(site_ids))
    first_sample = (
        TelemetrySample.objects.filter(site=OuterRef("pk"))
        .order_by("site_id", "channel", "ts")
        .values("pk")[:1]
    )
    has_plant = (
        Exists(PlantAsset.objects.filter(site=OuterRef("pk"), active=True))
        | Q(first_sample__isnull=False)
        | Exists(PlantLog.objects.filter(site=OuterRef("pk")))
    )
    sites = sites.annotate(first_sample=Subquery(first_sample))
    return list(sites.filter(has_plant).order_by("pk").values_list("pk", flat=True))


def supply_meters_by_site(site_ids: Iterable[int]) -> dict[int, set[int]]:
    """Per site id: its active supply-side (main/feeder) meters (one query)."""
    found: dict[int, set[int]] = {}
    rows = PlantAsset.objects.filter(
        site_id__in=list(site_ids), kind=PlantAsset.Kind.SUPPLY_METER, active=True
    ).values_list("site_id", "meter_id")
    for site_id, meter_id in rows:
        found.setdefault(site_id, set()).add(meter_id)
    return found


# --- KPIs for the management dashboards --------------------------------------------------------


def _in_period(bounds: dict[int, tuple[dt.datetime, dt.datetime]], field: str = "read_at") -> Q:
    """Rows of each site within that site's own period (its local days)."""
    found = Q(pk__in=[])
    for site_id, (t0, t1) in bounds.items():
        found |= Q(site_id=site_id, **{f"{field}__gte": t0, f"{field}__lt": t1})
    return found


def _before(bounds: dict[int, tuple[dt.datetime, dt.datetime]]) -> Q:
    found = Q(pk__in=[])
    for site_id, (t0, _t1) in bounds.items():
        found |= Q(site_id=site_id, read_at__lt=t0)
    return found


def site_kpis(site_ids: Iterable[int], start: dt.date, end: dt.date) -> dict[int, dict]:
    """Technical KPIs per site over the local days ``start``..``end`` (both included).

    For the dashboards: ``{site_id: {...}}`` with
    ``supplied_kwh``, ``consumed_kwh``, ``losses_kwh``, ``losses_pct`` (over the days whose
    supply is known), ``days_with_balance``, ``estimated_kwh``, ``pv_kwh`` (and
    ``pv_from``: ``openems`` or ``manual``), ``kwp``, ``specific_yield`` (kWh/kWp),
    ``soc_now_pct`` and ``soc_now_at`` (the newest state of charge, telemetry or hand
    log), ``min_soc_pct``, ``generator_hours``, ``fuel_added_l`` and
    ``open_plant_alerts``. Values are Decimal or None when unknown.

    Seven queries for all the sites together (the sites with their newest SoC and newest
    samples, balances from their table, kWp, alerts, lowest SoC, generator counter and
    fuel, hand-logged PV), plus five per site that has production telemetry (its counter's
    rise, added up in the database) — never a query per day or per sample. The two
    figures that read every sample of the period (PV production, lowest SoC) are cached
    until a new sample arrives (:func:`_telemetry_figures`): then six queries.
    """
    site_ids = list(site_ids)
    result: dict[int, dict] = {}
    if not site_ids:
        return result
    soc_sample = TelemetrySample.objects.filter(site=OuterRef("pk"), channel=SOC).order_by("-ts")
    soc_log = PlantLog.objects.filter(site=OuterRef("pk"), battery_soc_pct__isnull=False).order_by(
        "-read_at"
    )
    sites = list(
        Site.objects.filter(pk__in=site_ids).annotate(
            soc_ts=Subquery(soc_sample.values("ts")[:1]),
            soc_value=Subquery(soc_sample.values("value")[:1]),
            log_ts=Subquery(soc_log.values("read_at")[:1]),
            log_value=Subquery(soc_log.values("battery_soc_pct")[:1]),
            # The newest row of each channel read below: any sample stored since (late
            # ones included) changes these ids, hence the cache key of the figures.
            last_production=Subquery(_newest(PRODUCTION_ENERGY, "id")),
            last_production_at=Subquery(_newest(PRODUCTION_ENERGY, "received_at")),
            last_soc=Subquery(_newest(SOC, "id")),
            last_soc_at=Subquery(_newest(SOC, "received_at")),
        )
    )
    bounds = {s.pk: (day_bounds(start, s.zone)[0], day_bounds(end, s.zone)[1]) for s in sites}
    telemetry = _telemetry_figures(sites, bounds)
    day_rows = (
        EnergyBalance.objects.filter(
            site_id__in=site_ids,
            period=EnergyBalance.Period.DAY,
            start__gte=start,
            start__lte=end,
            supplied_kwh__isnull=False,
        )
        .values("site_id")
        .order_by()
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
        .order_by()
        .annotate(n=Count("id"))
        .values_list("site_id", "n")
    )
    kwps = dict(
        PlantAsset.objects.filter(site_id__in=site_ids, kind=PlantAsset.Kind.PV_ARRAY, active=True)
        .values("site_id")
        .order_by()
        .annotate(k=Sum("kwp"))
        .values_list("site_id", "k")
    )
    logs = PlantLog.objects.filter(site_id__in=site_ids)
    inside, before = _in_period(bounds), _before(bounds)
    gen_rows = (
        logs.values("site_id")
        .order_by()
        .annotate(
            hi=Max("generator_hours", filter=inside),
            lo=Min("generator_hours", filter=inside),
            # The run-hour counter may not go back: the highest before is the last before.
            base=Max("generator_hours", filter=before),
            fuel=Sum("fuel_added_l", filter=inside),
        )
    )
    gens = {r["site_id"]: r for r in gen_rows}
    # Hand-logged PV: the highest "today" of each local day, added up over the days.
    logged_pv: dict[int, dict[dt.date, Decimal]] = {}
    zones = {s.pk: s.zone for s in sites}
    for site_id, read_at, pv in logs.filter(inside, pv_kwh_today__isnull=False).values_list(
        "site_id", "read_at", "pv_kwh_today"
    ):
        days = logged_pv.setdefault(site_id, {})
        day = read_at.astimezone(zones[site_id]).date()
        days[day] = max(days.get(day, pv), pv)
    for site in sites:
        row = by_site.get(site.pk)
        supplied = row["supplied"] if row else None
        consumed = row["consumed"] if row else None
        losses = (supplied - consumed) if row else None
        pct = (losses * 100 / supplied).quantize(TWO) if row and supplied else None
        pv, soc = telemetry[site.pk]
        pv_from = "openems" if pv is not None else None
        if pv is None and site.pk in logged_pv:
            pv, pv_from = sum(logged_pv[site.pk].values(), Decimal("0")), "manual"
        kwp = kwps.get(site.pk) or Decimal("0")
        soc_now, soc_at = _newest_soc(site)
        gen = gens.get(site.pk, {})
        hours = None
        if gen.get("hi") is not None:
            base = gen["base"] if gen.get("base") is not None else gen["lo"]
            hours = gen["hi"] - base
        result[site.pk] = {
            "supplied_kwh": supplied,
            "consumed_kwh": consumed,
            "losses_kwh": losses,
            "losses_pct": pct,
            "days_with_balance": row["days"] if row else 0,
            "estimated_kwh": row["est"] if row else None,
            "pv_kwh": pv,
            "pv_from": pv_from,
            "kwp": kwp,
            "specific_yield": (pv / kwp).quantize(TWO) if pv is not None and kwp else None,
            "soc_now_pct": soc_now,
            "soc_now_at": soc_at,
            "min_soc_pct": Decimal(str(round(soc, 1))) if soc is not None else None,
            "generator_hours": hours,
            "fuel_added_l": gen.get("fuel"),
            "open_plant_alerts": alerts.get(site.pk, 0),
        }
    return result


def _newest(channel: str, field: str):
    """The newest stored sample of a channel at the site (by id: late ones too)."""
    rows = TelemetrySample.objects.filter(site=OuterRef("pk"), channel=channel)
    return rows.order_by("-id").values(field)[:1]


def _telemetry_figures(sites, bounds) -> dict[int, tuple[Decimal | None, float | None]]:
    """Per site: PV production (the counter's rise, kWh) and the lowest SoC over its period.

    Both read every sample of the period (a year of five-minute samples is 105,120 rows a
    channel: some 100 ms on PostgreSQL), so they are kept in the cache under a key made of
    the site, the period and the newest sample (id, received) of each channel: a sample
    stored since,
    however late, makes a new key, and the figures are never older than the telemetry.
    Cached, a site costs no query here; otherwise one grouped query for the lowest SoC of
    all sites to compute and five per site with production telemetry.
    """
    keys = {}
    for s in sites:
        t0, t1 = bounds[s.pk]
        parts = [s.pk, t0.timestamp(), t1.timestamp(), s.last_production, s.last_production_at]
        parts += [s.last_soc, s.last_soc_at]
        keys[s.pk] = "plant-kpis:" + ":".join(str(p).replace(" ", "_") for p in parts)
    cached = cache.get_many(list(keys.values()))
    found = {pk: cached[key] for pk, key in keys.items() if key in cached}
    todo = [s for s in sites if s.pk not in found]
    if not todo:
        return found
    socs: dict[int, float] = {}
    with_soc = {s.pk: bounds[s.pk] for s in todo if s.last_soc is not None}
    if with_soc:
        socs = dict(
            TelemetrySample.objects.filter(_in_period(with_soc, "ts"), channel=SOC)
            .values("site_id")
            .order_by()
            .annotate(lo=Min("value"))
            .values_list("site_id", "lo")
        )
    fresh = {}
    for site in todo:
        t0, t1 = bounds[site.pk]
        pv = None
        if site.last_production is not None:
            pv = counter_delta_kwh(site, PRODUCTION_ENERGY, t0, t1)
        fresh[site.pk] = (pv, socs.get(site.pk))
    cache.set_many({keys[pk]: value for pk, value in fresh.items()}, CACHE_SECONDS)
    return {**found, **fresh}


def _newest_soc(site) -> tuple[Decimal | None, dt.datetime | None]:
    """The newer of the site's last SoC sample and last hand-logged SoC (annotated)."""
    found = []
    if site.soc_ts is not None:
        found.append((site.soc_ts, Decimal(str(round(site.soc_value, 1)))))
    if site.log_ts is not None:
        found.append((site.log_ts, site.log_value))
    if not found:
        return None, None
    at, value = max(found, key=lambda pair: pair[0])
    return value, at


def kpi_totals(kpis: dict[int, dict]) -> dict:
    """The KPIs of many sites added up (for a cluster's, region's or the organisation's
    dashboard): energies and hours added, losses % and specific yield recomputed from the
    sums, the lowest SoC the lowest of all."""
    rows = list(kpis.values())

    def add(key, where=None):
        values = [r[key] for r in rows if r[key] is not None and (where is None or where(r))]
        return sum(values, Decimal("0")) if values else None

    supplied, consumed = (
        add("supplied_kwh"),
        add("consumed_kwh", lambda r: r["supplied_kwh"] is not None),
    )
    losses = add("losses_kwh")
    pv = add("pv_kwh")
    # Yield over the arrays of the sites whose production is known.
    kwp = add("kwp", lambda r: r["pv_kwh"] is not None)
    socs = [r["min_soc_pct"] for r in rows if r.get("min_soc_pct") is not None]
    return {
        "supplied_kwh": supplied,
        "consumed_kwh": consumed,
        "losses_kwh": losses,
        "losses_pct": (losses * 100 / supplied).quantize(TWO) if supplied else None,
        "pv_kwh": pv,
        "kwp": kwp,
        "specific_yield": (pv / kwp).quantize(TWO) if pv is not None and kwp else None,
        "min_soc_pct": min(socs) if socs else None,
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
