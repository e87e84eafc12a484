"""The site energy balance: energy supplied against the sum of the customer meters.

For one local calendar day of a site (:func:`day_balance`):

**Supplied** comes from the first source that covers the day:

1. ``meters`` — the site's main/feeder meters (``PlantAsset`` of kind ``supply_meter``):
   the sum of their ``DailyUsage`` (metering's rollups). Used only when every supply
   meter has the whole day (at least 90 % of its intervals); a supply meter with
   estimated energy is noted in ``detail``.
2. ``plant`` — OpenEMS telemetry: PV production (rise of ``_sum/ProductionActiveEnergy``)
   minus the battery's storage change, plus what the generator fed in (rise of
   ``_sum/GridBuyActiveEnergy``: on an off-grid site the inverter's AC input is the
   generator). The storage change is charge minus discharge energy
   (``_sum/EssActiveChargeEnergy`` / ``…DischargeEnergy``) when the ESS reports them,
   else the change of ``_sum/EssSoc`` times the battery banks' capacity; without
   either it is taken as zero and said so in ``detail``.
3. ``manual`` — the PV generation a field agent read off the inverter display that day
   (the highest "today" value logged); storage change unknown (caveat in ``detail``).
4. ``none`` — nothing: the balance keeps the consumption but no losses.

**Consumed** is the sum of ``DailyUsage`` of the site's meters *except* the supply
meters. (Metering's ``SiteDailyUsage`` sums every meter of the site, supply meters
included, so it is not used as is.)

**Uncertain meters**: every customer meter on one of the site's buses during the day is
expected. One whose day is missing, whose energy was partly estimated
(``DailyUsage.estimated_kwh > 0``: a gap spread over time by the rollups), or that
reported fewer than 90 % of the day's intervals while on the bus all day, is listed
with why, so that losses made of estimates or gaps are not mistaken for theft.

**Losses** = supplied − consumed, and their share of supplied. Above the site's
threshold (``PlantSettings.losses_threshold_pct``, default 15 %) :func:`check_losses`
opens a ``losses_high`` plant alert listing those meters; a day back under it resolves
the alert.

A month (:func:`month_balance`) adds up its days' balances: supplied over the days
whose supply is known, consumed over those same days (so a day without supply data
does not count as a loss), and the uncertain meters with how many days each.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from django.db import transaction
from django.db.models import Q

from mcoms.core import clock
from mcoms.core.models import Site
from metering.models import BusSlot, DailyUsage, Meter
from metering.plant import alerts
from metering.plant import selectors as q
from metering.plant.models import EnergyBalance, PlantAlert, PlantAsset

ZERO = Decimal("0")
KWH = Decimal("0.001")
TWO = Decimal("0.01")
COMPLETE_SHARE = Decimal("0.9")


def _pct(losses: Decimal | None, supplied: Decimal | None) -> Decimal | None:
    if losses is None or not supplied:
        return None
    return (losses * 100 / supplied).quantize(TWO)


def _expected_meters(site: Site, start: dt.datetime, end: dt.datetime) -> dict[int, dict]:
    """Meters on one of the site's buses during the period: {meter: {serial, full_day, …}}."""
    slots = (
        BusSlot.objects.filter(gateway__site=site, start__lt=end)
        .filter(Q(end__isnull=True) | Q(end__gt=start))
        .values_list("meter_id", "meter__serial", "start", "end", "gateway__log_interval_s")
    )
    found: dict[int, dict] = {}
    for meter_id, serial, s0, s1, interval in slots:
        entry = found.setdefault(
            meter_id, {"serial": serial, "full_day": False, "interval_s": interval or 900}
        )
        if s0 <= start and (s1 is None or s1 >= end):
            entry["full_day"] = True
    return found


def _supplied(site: Site, day: dt.date, start, end, supply_ids: set[int], detail: dict):
    """(method, supplied kWh or None, estimated part of it)."""
    if supply_ids:
        rows = {
            r.meter_id: r
            for r in DailyUsage.objects.filter(meter_id__in=supply_ids, day=day).select_related(
                "meter__gateway"
            )
        }
        missing = sorted(supply_ids - rows.keys())
        for meter_id, row in list(rows.items()):
            interval = (row.meter.gateway.log_interval_s if row.meter.gateway else None) or 900
            if row.intervals < Decimal(86400) / interval * COMPLETE_SHARE:
                # A supply meter that saw only part of the day would understate the supply.
                detail.setdefault("supply_meters_incomplete", []).append(row.meter.serial)
                del rows[meter_id]
        if rows.keys() == supply_ids:
            detail["supply_meters"] = [
                {
                    "meter": m,
                    "serial": r.meter.serial,
                    "kwh": str(r.kwh),
                    "estimated_kwh": str(r.estimated_kwh),
                }
                for m, r in sorted(rows.items())
            ]
            est = sum((r.estimated_kwh for r in rows.values()), ZERO)
            return EnergyBalance.Method.METERS, sum((r.kwh for r in rows.values()), ZERO), est
        if missing:
            detail["supply_meters_missing"] = [Meter.objects.get(pk=m).serial for m in missing]
    production = q.counter_delta_kwh(site, q.PRODUCTION_ENERGY, start, end)
    if production is not None:
        charge = q.counter_delta_kwh(site, q.CHARGE_ENERGY, start, end)
        discharge = q.counter_delta_kwh(site, q.DISCHARGE_ENERGY, start, end)
        if charge is not None and discharge is not None:
            storage = charge - discharge
            detail["storage_from"] = "ess_energy"
        else:
            storage = _soc_storage(site, start, end)
            detail["storage_from"] = "soc" if storage is not None else "unknown"
            storage = storage or ZERO
        generator = q.counter_delta_kwh(site, q.GRID_BUY_ENERGY, start, end) or ZERO
        detail.update(
            production_kwh=str(production), storage_kwh=str(storage), generator_kwh=str(generator)
        )
        return EnergyBalance.Method.PLANT, (production - storage + generator).quantize(KWH), ZERO
    pv = [log.pv_kwh_today for log in q.logs_of(site, start, end) if log.pv_kwh_today is not None]
    if pv:
        detail["caveat"] = "PV generation read off the inverter display; storage change unknown"
        return EnergyBalance.Method.MANUAL, max(pv), ZERO
    return EnergyBalance.Method.NONE, None, ZERO


def _soc_storage(site: Site, start, end) -> Decimal | None:
    capacity = q.total(site, PlantAsset.Kind.BATTERY, "capacity_kwh")
    points = q.samples(site, q.SOC, start, end)
    if not capacity or len(points) < 2:
        return None
    change = Decimal(str(points[-1][1] - points[0][1]))
    return (change * capacity / 100).quantize(KWH)


def day_balance(site: Site, day: dt.date, *, now: dt.datetime | None = None) -> EnergyBalance:
    """Compute (and keep) the site's balance of one local day."""
    at = clock.resolve(now)
    start, end = q.day_bounds(day, site.zone)
    supply_ids = q.supply_meter_ids(site)
    detail: dict = {}
    method, supplied, supply_est = _supplied(site, day, start, end, supply_ids, detail)
    if supply_est:
        detail["supply_estimated_kwh"] = str(supply_est)
    expected = _expected_meters(site, start, end)
    for meter_id in supply_ids:
        expected.pop(meter_id, None)
    rows = {
        r.meter_id: r
        for r in DailyUsage.objects.filter(meter__site=site, day=day)
        .exclude(meter_id__in=supply_ids)
        .select_related("meter")
    }
    consumed = sum((r.kwh for r in rows.values()), ZERO)
    estimated = sum((r.estimated_kwh for r in rows.values()), ZERO)
    uncertain = []
    for meter_id in sorted(set(expected) | set(rows)):
        row, slot = rows.get(meter_id), expected.get(meter_id)
        serial = row.meter.serial if row else slot["serial"]
        if row is None:
            uncertain.append({"meter": meter_id, "serial": serial, "why": "missing"})
        elif row.estimated_kwh > 0:
            uncertain.append(
                {
                    "meter": meter_id,
                    "serial": serial,
                    "why": "estimated",
                    "estimated_kwh": str(row.estimated_kwh),
                }
            )
        elif slot and slot["full_day"]:
            owed = Decimal(86400) / Decimal(slot["interval_s"])
            if row.intervals < owed * COMPLETE_SHARE:
                uncertain.append(
                    {
                        "meter": meter_id,
                        "serial": serial,
                        "why": "incomplete",
                        "intervals": row.intervals,
                        "owed": int(owed),
                    }
                )
    losses = (supplied - consumed).quantize(KWH) if supplied is not None else None
    balance, _ = EnergyBalance.objects.update_or_create(
        site=site,
        period=EnergyBalance.Period.DAY,
        start=day,
        defaults={
            "method": method,
            "supplied_kwh": supplied,
            "consumed_kwh": consumed,
            "losses_kwh": losses,
            "losses_pct": _pct(losses, supplied),
            "estimated_kwh": estimated,
            "customer_meters": len(set(expected) | set(rows)),
            "uncertain": uncertain,
            "detail": detail,
            "computed_at": at,
        },
    )
    return balance


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def month_balance(site: Site, month: dt.date, *, now: dt.datetime | None = None) -> EnergyBalance:
    """Add up the month's day balances (computed ones) into the month's balance."""
    at = clock.resolve(now)
    first = month_start(month)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    days = list(
        EnergyBalance.objects.filter(
            site=site, period=EnergyBalance.Period.DAY, start__gte=first, start__lt=following
        ).order_by("start")
    )
    known = [d for d in days if d.supplied_kwh is not None]
    supplied = sum((d.supplied_kwh for d in known), ZERO) if known else None
    consumed_known = sum((d.consumed_kwh for d in known), ZERO)
    consumed = sum((d.consumed_kwh for d in days), ZERO)
    losses = (supplied - consumed_known) if supplied is not None else None
    merged: dict[int, dict] = {}
    for d in days:
        for item in d.uncertain:
            entry = merged.setdefault(
                item["meter"], {"meter": item["meter"], "serial": item["serial"], "days": 0}
            )
            entry["days"] += 1
            entry.setdefault("why", [])
            if item["why"] not in entry["why"]:
                entry["why"].append(item["why"])
    methods = defaultdict(int)
    for d in known:
        methods[d.method] += 1
    method = max(methods, key=methods.get) if methods else EnergyBalance.Method.NONE
    balance, _ = EnergyBalance.objects.update_or_create(
        site=site,
        period=EnergyBalance.Period.MONTH,
        start=first,
        defaults={
            "method": method,
            "supplied_kwh": supplied,
            "consumed_kwh": consumed,
            "losses_kwh": losses,
            "losses_pct": _pct(losses, supplied),
            "estimated_kwh": sum((d.estimated_kwh for d in days), ZERO),
            "customer_meters": max((d.customer_meters for d in days), default=0),
            "uncertain": sorted(merged.values(), key=lambda e: (-e["days"], e["serial"])),
            "detail": {
                "days": len(days),
                "days_with_supply": len(known),
                "consumed_on_days_with_supply_kwh": str(consumed_known),
                "methods": dict(methods),
            },
            "computed_at": at,
        },
    )
    return balance


def _listing(uncertain: list[dict], limit: int = 8) -> str:
    names = [f"{u['serial']} ({u['why']})" for u in uncertain]
    text = ", ".join(names[:limit])
    if len(names) > limit:
        text += f" and {len(names) - limit} more"
    return text


def check_losses(balance: EnergyBalance, *, now: dt.datetime) -> PlantAlert | None:
    """Open (or refresh) the losses alert when a day's losses pass the threshold; clear it
    when a later day is back under. Returns the open alert, if any."""
    site = balance.site
    threshold = q.settings_for(site).losses_threshold_pct
    if balance.losses_pct is None:
        return None
    if balance.losses_pct <= threshold:
        alerts.clear(
            site,
            PlantAlert.Kind.LOSSES_HIGH,
            now=now,
            note=f"Losses {balance.losses_pct} % on {balance.start}, under {threshold} %",
        )
        return None
    count = len(balance.uncertain)
    message = (
        f"Losses {balance.losses_pct} % on {balance.start:%d %b %Y} "
        f"({balance.losses_kwh} of {balance.supplied_kwh} kWh supplied; threshold {threshold} %)."
    )
    if count:
        message += (
            f" {count} meter{'s' if count != 1 else ''} with estimated or missing data — "
            f"check them before suspecting theft: {_listing(balance.uncertain)}"
        )
    else:
        message += " No meter's data was estimated: possible theft or a faulty meter."
    details = {
        "period": balance.period,
        "day": balance.start.isoformat(),
        "supplied_kwh": str(balance.supplied_kwh),
        "consumed_kwh": str(balance.consumed_kwh),
        "losses_kwh": str(balance.losses_kwh),
        "losses_pct": str(balance.losses_pct),
        "threshold_pct": str(threshold),
        "method": balance.method,
        "estimated_meters": balance.uncertain,
    }
    alert, _ = alerts.raise_alert(site, PlantAlert.Kind.LOSSES_HIGH, message, details, now=now)
    return alert


@transaction.atomic
def run_site(site: Site, day: dt.date, *, now: dt.datetime) -> EnergyBalance:
    """The day's balance, its month's, and the losses alert."""
    balance = day_balance(site, day, now=now)
    month_balance(site, day, now=now)
    check_losses(balance, now=now)
    return balance
