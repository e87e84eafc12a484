"""Changes to the plant's tables: assets, telemetry from the edge, hand logs, alerts.

Every change a person makes is audited (``mcoms.core.audit``); telemetry from a
gateway is recorded per batch (the batch and its answer), not per sample.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.dateparse import parse_datetime

from mcoms.core import audit, clock
from mcoms.core.models import AuditEvent, Site, User
from metering.models import Gateway, Meter
from metering.plant.models import PlantAlert, PlantAsset, PlantLog, TelemetrySample

MAX_CHANNEL_LEN = 100  # longer is not an OpenEMS channel address
SOC_CHANNELS = ("Soc",)


# --- assets ---------------------------------------------------------------------------------


def asset_create(
    *, site: Site, kind: str, name: str, source: str, now=None, **fields
) -> PlantAsset:
    """Register a plant asset; a supply meter must be a meter of the same site."""
    meter: Meter | None = fields.get("meter")
    if kind == PlantAsset.Kind.SUPPLY_METER:
        if meter is None:
            raise ValidationError(
                "A main/feeder meter needs the meter on the bus it is: choose it."
            )
        if meter.site_id != site.pk:
            raise ValidationError(f"Meter {meter.serial} is not a meter of {site}.")
        source = PlantAsset.Source.BUS_METER
    elif meter is not None:
        raise ValidationError("Only a main/feeder meter points at a meter.")
    asset = PlantAsset(
        site=site, kind=kind, name=name, source=source, created_at=clock.resolve(now), **fields
    )
    asset.full_clean()
    asset.save()
    audit.record(AuditEvent.Action.CREATE, asset, after=audit.snapshot(asset), site=site)
    return asset


def asset_update(*, asset: PlantAsset, **changes) -> PlantAsset:
    """Change an asset's description (audited)."""
    before = audit.snapshot(asset)
    for name, value in changes.items():
        setattr(asset, name, value)
    asset.full_clean()
    asset.save()
    audit.record_changes(asset, before, site=asset.site_id)
    return asset


# --- telemetry from the edge ------------------------------------------------------------------


@dataclass
class TelemetryOutcome:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict] = field(default_factory=list)
    start: dt.datetime | None = None
    end: dt.datetime | None = None

    def answer(self, batch_id: str) -> dict:
        return {
            "batch_id": batch_id,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
        }


def _sample_problem(item) -> tuple[str | None, tuple | None]:
    if not isinstance(item, dict):
        return "not an object", None
    channel = item.get("channel")
    if not isinstance(channel, str) or "/" not in channel or len(channel) > MAX_CHANNEL_LEN:
        return "channel must be component/Channel", None
    ts = parse_datetime(item["ts"]) if isinstance(item.get("ts"), str) else None
    if ts is None or ts.tzinfo is None:
        return "ts must be an RFC 3339 time with a zone", None
    value = item.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "value must be a number", None
    if channel.endswith(SOC_CHANNELS) and not 0 <= value <= 100:
        return "state of charge outside 0-100 %", None
    return None, (ts.astimezone(dt.UTC), channel, float(value))


def telemetry_ingest(*, gateway: Gateway, samples: list, now: dt.datetime) -> TelemetryOutcome:
    """Store a batch's samples; one per (gateway, ts, channel), duplicates counted."""
    outcome = TelemetryOutcome()
    parsed: dict[tuple, int] = {}
    for index, item in enumerate(samples):
        problem, key = _sample_problem(item)
        if problem:
            outcome.rejected.append({"index": index, "reason": problem})
            continue
        if key[:2] in parsed:
            outcome.duplicates += 1
            continue
        parsed[key[:2]] = index
        outcome.start = min(outcome.start or key[0], key[0])
        outcome.end = max(outcome.end or key[0], key[0])
    values = {}
    for item_index in parsed.values():
        _, (ts, channel, value) = _sample_problem(samples[item_index])
        values[(ts, channel)] = value
    if values:
        known = set(
            TelemetrySample.objects.filter(
                gateway=gateway, ts__gte=outcome.start, ts__lte=outcome.end
            )
            .filter(channel__in={c for _, c in values})
            .values_list("ts", "channel")
        )
        new = [
            TelemetrySample(
                gateway=gateway,
                site_id=gateway.site_id,
                ts=ts,
                channel=channel,
                value=value,
                received_at=now,
            )
            for (ts, channel), value in sorted(values.items())
            if (ts, channel) not in known
        ]
        TelemetrySample.objects.bulk_create(new, batch_size=2000, ignore_conflicts=True)
        outcome.accepted += len(new)
        outcome.duplicates += len(values) - len(new)
    return outcome


# --- hand logs --------------------------------------------------------------------------------


def plant_log_record(
    *,
    site: Site,
    by: User,
    read_at: dt.datetime,
    photo,
    pv_kwh_today: Decimal | None = None,
    battery_soc_pct: Decimal | None = None,
    battery_voltage_v: Decimal | None = None,
    generator_hours: Decimal | None = None,
    fuel_added_l: Decimal | None = None,
    asset: PlantAsset | None = None,
    note: str = "",
    now: dt.datetime | None = None,
) -> PlantLog:
    """Keep a field agent's plant log with its photo (audited)."""
    at = clock.resolve(now)
    values = (pv_kwh_today, battery_soc_pct, battery_voltage_v, generator_hours, fuel_added_l)
    if all(v is None for v in values):
        raise ValidationError("Enter at least one value read from the displays.")
    if not photo:
        raise ValidationError("A photo of the display is required.")
    if read_at > at + dt.timedelta(minutes=5):
        raise ValidationError("The reading time is in the future.")
    if asset is not None and asset.site_id != site.pk:
        raise ValidationError("That equipment is not at this site.")
    if generator_hours is not None:
        last = (
            PlantLog.objects.filter(site=site, generator_hours__isnull=False, read_at__lt=read_at)
            .order_by("-read_at")
            .first()
        )
        if last is not None and generator_hours < last.generator_hours:
            raise ValidationError(
                f"The generator's run-hour counter read {last.generator_hours} h on "
                f"{last.read_at.astimezone(site.zone):%d %b %H:%M}; it cannot go back."
            )
    log = PlantLog(
        site=site,
        asset=asset,
        read_at=read_at,
        pv_kwh_today=pv_kwh_today,
        battery_soc_pct=battery_soc_pct,
        battery_voltage_v=battery_voltage_v,
        generator_hours=generator_hours,
        fuel_added_l=fuel_added_l,
        note=note,
        logged_by=by,
        recorded_at=at,
    )
    with transaction.atomic():
        log.photo.save(getattr(photo, "name", "photo.jpg") or "photo.jpg", photo, save=False)
        log.full_clean()
        log.save()
        fields = [f.name for f in PlantLog._meta.concrete_fields if f.name != "photo"]
        after = {**audit.snapshot(log, fields), "photo": log.photo.name}
        audit.record(AuditEvent.Action.CREATE, log, after=after, site=site)
    return log


# --- alerts -----------------------------------------------------------------------------------


def alert_resolve(*, alert: PlantAlert, by: User | None, note: str, now=None) -> PlantAlert:
    """Close an alert (by a person, or by a check when its condition cleared); audited."""
    if alert.status == PlantAlert.Status.RESOLVED:
        raise ValidationError("This alert is already resolved.")
    before = audit.snapshot(alert, ["status", "resolved_at", "note"])
    alert.status = PlantAlert.Status.RESOLVED
    alert.resolved_at = clock.resolve(now)
    alert.resolved_by = by
    alert.note = note[:300]
    alert.save(update_fields=["status", "resolved_at", "resolved_by", "note"])
    audit.record(
        AuditEvent.Action.TRANSITION,
        alert,
        before=before,
        after=audit.snapshot(alert, ["status", "resolved_at", "note"]),
        site=alert.site_id,
    )
    return alert
