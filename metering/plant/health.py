"""Plant health: the battery, the PV array, the generator — and the alerts that watch them.

Per local day (:func:`day_health`):

- **Battery**: lowest and highest state of charge (``_sum/EssSoc``), depth of discharge
  (100 % − the lowest SoC), and cycles: discharge energy (rise of
  ``_sum/EssActiveDischargeEnergy``) over the banks' capacity when the ESS reports it,
  else the sum of the SoC's falls over 100 %. Without telemetry, the hand logs' SoC
  readings stand in (min/max only).
- **PV**: production (rise of ``_sum/ProductionActiveEnergy``, else the hand-logged
  "today" value) and the specific yield, kWh per kWp of the site's PV arrays, which
  :func:`yields` lines up over days to compare.
- **Generator**: run hours from the hand-logged run-hour counter, and fuel added.

:func:`check` (every 15 minutes) opens, refreshes or clears three plant alerts per site:

- ``battery_low`` — the newest state of charge (telemetry, or a newer hand log) is under
  the site's floor (``battery_floor_pct``, default 20 %);
- ``no_pv`` — in daylight (site-local ``daylight_start_hour``..``daylight_end_hour``),
  the last hour's production power samples are all (near) zero; needs samples: no data
  is the next alert's business;
- ``inverter_silent`` — a site whose assets are read through OpenEMS has no sample newer
  than ``silent_after_minutes`` (default 60).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction

from mcoms.core import clock
from mcoms.core.models import Site
from metering.plant import alerts
from metering.plant import selectors as q
from metering.plant.models import PlantAlert, PlantAsset

TWO = Decimal("0.01")
# Production under this (W) per kWp installed counts as none (inverter standby noise).
NO_PV_W_PER_KWP = 5.0
NO_PV_MIN_W = 20.0


@dataclass
class DayHealth:
    day: dt.date
    soc_min: float | None = None
    soc_max: float | None = None
    depth_of_discharge: float | None = None
    cycles: Decimal | None = None
    pv_kwh: Decimal | None = None
    specific_yield: Decimal | None = None
    generator_hours: Decimal | None = None
    fuel_added_l: Decimal | None = None
    source: str = "none"


def day_health(site: Site, day: dt.date) -> DayHealth:
    """The plant's health figures of one local day."""
    start, end = q.day_bounds(day, site.zone)
    health = DayHealth(day=day)
    socs = [v for _, v in q.samples(site, q.SOC, start, end)]
    if socs:
        health.source = "openems"
    else:
        socs = [
            float(log.battery_soc_pct)
            for log in q.logs_of(site, start, end)
            if log.battery_soc_pct is not None
        ]
        health.source = "manual" if socs else "none"
    capacity = q.total(site, PlantAsset.Kind.BATTERY, "capacity_kwh")
    if socs:
        health.soc_min, health.soc_max = min(socs), max(socs)
        health.depth_of_discharge = round(100 - health.soc_min, 1)
        discharge = q.counter_delta_kwh(site, q.DISCHARGE_ENERGY, start, end)
        if discharge is not None and capacity:
            health.cycles = (discharge / capacity).quantize(TWO)
        elif health.source == "openems":
            falls = sum(max(a - b, 0.0) for a, b in zip(socs, socs[1:], strict=False))
            health.cycles = (Decimal(str(falls)) / 100).quantize(TWO)
    pv = q.counter_delta_kwh(site, q.PRODUCTION_ENERGY, start, end)
    if pv is None:
        logged = [
            log.pv_kwh_today for log in q.logs_of(site, start, end) if log.pv_kwh_today is not None
        ]
        pv = max(logged) if logged else None
    health.pv_kwh = pv
    kwp = q.total(site, PlantAsset.Kind.PV_ARRAY, "kwp")
    if pv is not None and kwp:
        health.specific_yield = (pv / kwp).quantize(TWO)
    health.generator_hours = q.generator_hours(site, start, end)
    fuel = [log.fuel_added_l for log in q.logs_of(site, start, end) if log.fuel_added_l]
    health.fuel_added_l = sum(fuel, Decimal("0")) if fuel else None
    return health


def yields(site: Site, last_day: dt.date, days: int = 14) -> list[DayHealth]:
    """Day health of the ``days`` days up to ``last_day``, oldest first (for comparing)."""
    return [day_health(site, last_day - dt.timedelta(days=n)) for n in range(days - 1, -1, -1)]


def _uses_openems(site: Site) -> bool:
    return PlantAsset.objects.filter(
        site=site, active=True, source=PlantAsset.Source.OPENEMS
    ).exists()


def check_site(site: Site, *, now: dt.datetime) -> list[PlantAlert]:
    """Open, refresh or clear the site's battery, PV and inverter alerts; returns those open."""
    cfg = q.settings_for(site)
    opened: list[PlantAlert] = []
    silent_after = dt.timedelta(minutes=cfg.silent_after_minutes)
    newest = q.latest(site, before=now)
    silent = newest is None or now - newest.ts > silent_after
    if _uses_openems(site) and silent:
        since = f"since {newest.ts.astimezone(site.zone):%d %b %H:%M}" if newest else "ever"
        alert, _ = alerts.raise_alert(
            site,
            PlantAlert.Kind.INVERTER_SILENT,
            f"No data from the inverters (OpenEMS) {since}.",
            {"last_sample_at": newest.ts.isoformat() if newest else None},
            now=now,
        )
        opened.append(alert)
    elif not silent:
        alerts.clear(site, PlantAlert.Kind.INVERTER_SILENT, now=now, note="Inverter data again")

    soc_sample = q.latest(site, q.SOC, before=now)
    soc, soc_at, soc_from = None, None, "openems"
    if soc_sample is not None and now - soc_sample.ts <= silent_after:
        soc, soc_at = soc_sample.value, soc_sample.ts
    last_log = (
        q.logs_of(site, now - dt.timedelta(hours=24), now + dt.timedelta(minutes=5))
        .exclude(battery_soc_pct=None)
        .last()
    )
    if last_log is not None and (soc_at is None or last_log.read_at > soc_at):
        soc, soc_at, soc_from = float(last_log.battery_soc_pct), last_log.read_at, "hand log"
    if soc is not None and soc < cfg.battery_floor_pct:
        alert, _ = alerts.raise_alert(
            site,
            PlantAlert.Kind.BATTERY_LOW,
            f"Battery at {soc:.0f} % ({soc_from}, {soc_at.astimezone(site.zone):%H:%M}), "
            f"under its {cfg.battery_floor_pct} % floor.",
            {"soc_pct": soc, "at": soc_at.isoformat(), "floor_pct": cfg.battery_floor_pct},
            now=now,
        )
        opened.append(alert)
    elif soc is not None:
        alerts.clear(site, PlantAlert.Kind.BATTERY_LOW, now=now, note=f"Battery at {soc:.0f} %")

    local = now.astimezone(site.zone)
    if cfg.daylight_start_hour <= local.hour < cfg.daylight_end_hour:
        points = q.samples(site, q.PRODUCTION_POWER, now - dt.timedelta(hours=1), now)
        kwp = float(q.total(site, PlantAsset.Kind.PV_ARRAY, "kwp"))
        floor_w = max(NO_PV_MIN_W, NO_PV_W_PER_KWP * kwp)
        if len(points) >= 2 and all(v <= floor_w for _, v in points):
            alert, _ = alerts.raise_alert(
                site,
                PlantAlert.Kind.NO_PV,
                f"No PV production since {points[0][0].astimezone(site.zone):%H:%M} in daylight "
                f"({len(points)} samples at or under {floor_w:.0f} W).",
                {"samples": len(points), "floor_w": floor_w},
                now=now,
            )
            opened.append(alert)
        elif any(v > floor_w for _, v in points):
            alerts.clear(site, PlantAlert.Kind.NO_PV, now=now, note="PV producing again")
    return opened


def check(*, now: dt.datetime | None = None) -> dict[int, list[str]]:
    """Run :func:`check_site` for every site with a plant; {site: open alert kinds}."""
    at = clock.resolve(now)
    result = {}
    for site in Site.objects.filter(pk__in=q.plant_sites()):
        with transaction.atomic():
            result[site.pk] = [a.kind for a in check_site(site, now=at)]
    return result
