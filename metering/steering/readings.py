"""Calin's daily data as meter readings, and the head-end's online status.

A day's ``TotalUnitsCounter`` (the cumulative kWh register frozen at the end of the
day) becomes one reading of the meter at the end of that day in the site's time, stored
the way gateway uploads are (:mod:`metering.ingest`): validated against the previous
billable reading by :mod:`metering.vee`, flagged rather than dropped, quarantined when
no partition holds its month, not stored twice, and followed by commissioning and the
hourly/daily rollups. The day's ``RelayStatus`` and credit register update the meter's
steering state.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal, InvalidOperation

from django.db import transaction

from mcoms.core import audit, clock
from mcoms.core.models import AuditEvent
from metering import ingest, partitions, tasks, vee
from metering.models import Meter, QuarantinedReading, Reading
from metering.steering import calin, engine
from metering.steering.models import Concentrator

SOURCE = "calin"
NO_VALUES = {"export_kwh": None, "power_kw": None, "power_factor": None, "frequency_hz": None}


def _decimal(value) -> Decimal | None:
    try:
        return None if value in (None, "") else Decimal(str(value)).quantize(Decimal("0.001"))
    except InvalidOperation:
        return None


def end_of_day(day: dt.date, zone: str) -> dt.datetime:
    """Midnight after ``day`` in the site's time, in UTC: when the daily register froze."""
    local = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zoneinfo.ZoneInfo(zone))
    return local.astimezone(dt.UTC)


@transaction.atomic
def store(meter: Meter, points: list[tuple[dt.datetime, Decimal]], *, now: dt.datetime):
    """Store cumulative-kWh points of one meter as readings; returns the ingest outcome."""
    outcome = ingest.Outcome()
    months = partitions.available_months()
    keep, quarantine = [], []
    for index, (ts, kwh) in enumerate(sorted(points)):
        raw = {"ts": ts.isoformat(), "energy_kwh": str(kwh), "meter": meter.serial}
        if partitions.month_start(ts) not in months:
            reason = f"no partition for {ts:%Y-%m}: kept in quarantine"
            outcome.rejected.append({"index": index, "reason": reason})
            quarantine.append(
                QuarantinedReading(
                    meter=meter, ts=ts, payload=raw, reason=reason, source=SOURCE, received_at=now
                )
            )
            continue
        values = {"energy_kwh": kwh, **NO_VALUES}
        keep.append(ingest.Parsed(index=index, address=0, ts=ts, values=values, raw=raw))
    QuarantinedReading.objects.bulk_create(quarantine)
    if not keep:
        return outcome
    previous = ingest.previous_readings({meter.pk}, keep[0].ts).get(meter.pk)
    limit = vee.load_limit_kw(
        package_limit_w=ingest.load_limits({meter.pk}).get(meter.pk),
        phases=meter.phases,
        ct_ratio=meter.ct_ratio,
    )
    rows = []
    for item in keep:
        reasons = vee.check(
            ts=item.ts,
            values=item.values,
            previous=previous,
            installed_at=None,
            limit_kw=limit,
            now=now,
        )
        quality = Reading.Quality.FLAGGED if reasons else Reading.Quality.VALID
        if reasons:
            outcome.flagged.append({"index": item.index, "reason": "; ".join(reasons)})
        else:
            outcome.meters_with_valid.add(meter.pk)
            previous = vee.Previous(ts=item.ts, energy_kwh=item.values["energy_kwh"])
        rows.append(ingest._row(meter.pk, item, quality, "; ".join(reasons), None, now))
    outcome.accepted = ingest._insert(rows)
    outcome.duplicates = len(rows) - outcome.accepted
    outcome.meters = {meter.pk}
    outcome.start, outcome.end = keep[0].ts, keep[-1].ts
    slot = ingest.SlotInfo(meter.pk, keep[0].ts, None, meter.phases, meter.ct_ratio, meter.status)
    ingest.note_latest_values([(item, slot, False) for item in keep], now)
    tasks.after_ingest(outcome, now=now)
    return outcome


def import_daily(
    meter: Meter,
    day: dt.date,
    *,
    now: dt.datetime | None = None,
    client: calin.Client | None = None,
):
    """Fetch one day of a Calin meter's daily data and store it; None when there is none."""
    now = clock.resolve(now)
    client = client or calin.Client()
    row = client.daily_data(meter.serial, day)
    if not row:
        return None
    zone = meter.site.timezone if meter.site_id else "UTC"
    relay = str(row.get("RelayStatus", "")).strip()
    if relay in ("0", "1"):
        engine.note_relay(
            meter.pk,
            relay == "1",
            at=now,
            source="daily data",
            credit=_decimal(row.get("CurrentCreditRegister")),
        )
    kwh = _decimal(row.get("TotalUnitsCounter"))
    if kwh is None:
        return None
    return store(meter, [(end_of_day(day, zone), kwh)], now=now)


def calin_meters():
    """Calin meters in service (on a site)."""
    return Meter.objects.filter(model=Meter.Model.CALIN, site__isnull=False).select_related("site")


def import_yesterday(*, now: dt.datetime | None = None, client: calin.Client | None = None):
    """Every Calin meter's previous local day; one meter's failure does not stop the rest."""
    now = clock.resolve(now)
    client = client or calin.Client()
    stored, failed = 0, []
    with audit.acting_as(label="calin daily import", channel=AuditEvent.Channel.TASK):
        for meter in calin_meters():
            day = now.astimezone(zoneinfo.ZoneInfo(meter.site.timezone)).date() - dt.timedelta(1)
            try:
                outcome = import_daily(meter, day, now=now, client=client)
            except calin.CalinError as exc:
                failed.append(f"{meter.serial}: {exc}")
                continue
            stored += outcome.accepted if outcome else 0
    return stored, failed


def refresh_online(*, now: dt.datetime | None = None, client: calin.Client | None = None) -> int:
    """Record each concentrator's online state as the head-end reports it."""
    now = clock.resolve(now)
    client = client or calin.Client()
    states = client.online_status()
    for number, online in states.items():
        Concentrator.objects.update_or_create(
            number=number, defaults={"online": online, "checked_at": now}
        )
    return len(states)
