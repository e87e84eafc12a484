"""The platform's side of the edge contract, apart from readings (see ``ingest``):
the config document, heartbeats, commands to the Pi and scan discoveries."""

from __future__ import annotations

import datetime as dt
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction

from mcoms.core import audit, clock
from mcoms.core.models import AuditEvent, User
from metering.lifecycle import ON_BUS
from metering.models import BusSlot, Discovery, EdgeCommand, Gateway, MeterComms

COMMAND_LIFETIME = timedelta(days=1)


def config_document(gateway: Gateway) -> dict:
    """What ``GET /api/v1/edge/config`` answers: the meters on this bus and how to poll."""
    slots = (
        BusSlot.objects.filter(gateway=gateway, end__isnull=True, meter__status__in=ON_BUS)
        .select_related("meter")
        .order_by("address")
    )
    meters = []
    for slot in slots:
        meter = slot.meter
        entry = {
            "address": slot.address,
            "name": meter.label or meter.serial,
            "model": meter.model,
            "serial": meter.serial,
            "enabled": meter.polling_enabled,
        }
        if meter.variant:
            entry["variant"] = meter.variant
        if meter.energy_register:
            entry["energy_register"] = meter.energy_register
        if meter.phases == 3 or meter.ct_ratio != 1:
            entry["ct_ratio"] = float(meter.ct_ratio)
        meters.append(entry)
    return {
        "gateway": gateway.name,
        "version": gateway.config_version,
        "poll_interval_s": gateway.poll_interval_s,
        "log_interval_s": gateway.log_interval_s,
        "serial": {
            "baudrate": gateway.baudrate,
            "parity": gateway.parity,
            "stopbits": gateway.stopbits,
            "bytesize": gateway.bytesize,
        },
        "meters": meters,
    }


def _time(value) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


@transaction.atomic
def heartbeat(*, gateway: Gateway, body: dict, now: dt.datetime | None = None) -> dict:
    """Record a heartbeat and answer with the config version and pending commands."""
    at = clock.resolve(now)
    Gateway.objects.filter(pk=gateway.pk).update(last_heartbeat_at=at, last_heartbeat=body)
    _note_meter_health(gateway, body.get("meters") or [], at)
    pending = EdgeCommand.objects.filter(
        gateway=gateway, status__in=[EdgeCommand.Status.PENDING, EdgeCommand.Status.SENT]
    ).order_by("created_at")
    expired = pending.filter(created_at__lt=at - COMMAND_LIFETIME)
    expired.update(status=EdgeCommand.Status.EXPIRED, error="the gateway did not run it in time")
    commands = list(pending.exclude(status=EdgeCommand.Status.EXPIRED))
    EdgeCommand.objects.filter(
        pk__in=[c.pk for c in commands], status=EdgeCommand.Status.PENDING
    ).update(status=EdgeCommand.Status.SENT, sent_at=at)
    return {
        "config_version": gateway.config_version,
        "commands": [{"id": c.wire_id, "type": c.type, "args": c.args} for c in commands],
    }


def _note_meter_health(gateway: Gateway, meters: list, at: dt.datetime) -> None:
    by_address = dict(
        BusSlot.objects.filter(gateway=gateway, end__isnull=True).values_list("address", "meter_id")
    )
    for entry in meters:
        if not isinstance(entry, dict) or entry.get("address") not in by_address:
            continue
        meter_id = by_address[entry["address"]]
        comms, _ = MeterComms.objects.get_or_create(meter_id=meter_id, defaults={"updated_at": at})
        comms.ok = bool(entry.get("ok"))
        comms.last_ok_at = _time(entry.get("last_ok_at")) or comms.last_ok_at
        comms.last_error = str(entry.get("last_error") or "")[:100]
        errors = entry.get("errors_24h")
        comms.errors_24h = errors if isinstance(errors, dict) else comms.errors_24h
        comms.updated_at = at
        comms.save()


@transaction.atomic
def command_create(
    *,
    gateway: Gateway,
    type: str,
    args: dict,
    user: User | None = None,
    now: dt.datetime | None = None,
) -> EdgeCommand:
    """Ask the gateway to do bus work; it rides on the next heartbeat answer."""
    if type not in EdgeCommand.Type.values:
        raise ValidationError(f"Unknown command {type!r}.")
    command = EdgeCommand.objects.create(
        gateway=gateway, type=type, args=args, created_at=clock.resolve(now), created_by=user
    )
    audit.record(
        AuditEvent.Action.CREATE, command, after={"type": type, "args": args}, site=gateway.site_id
    )
    return command


def command_by_wire_id(gateway: Gateway, wire_id: str) -> EdgeCommand | None:
    """The gateway's command with id ``c-<n>``."""
    number = wire_id.removeprefix("c-")
    if not number.isdigit():
        return None
    return EdgeCommand.objects.filter(gateway=gateway, pk=int(number)).first()


@transaction.atomic
def command_result(*, command: EdgeCommand, body: dict) -> EdgeCommand:
    """Record what the Pi reports for a command (posting the same result again is harmless)."""
    status = body.get("status")
    if status not in ("done", "failed"):
        raise ValidationError("status must be 'done' or 'failed'")
    command = EdgeCommand.objects.select_for_update().get(pk=command.pk)
    command.status = status
    command.started_at = _time(body.get("started_at"))
    command.finished_at = _time(body.get("finished_at"))
    result = body.get("result")
    command.result = result if isinstance(result, dict) else None
    command.error = str(body.get("error") or "")[:2000]
    command.save()
    return command


@transaction.atomic
def discoveries_record(*, gateway: Gateway, body: dict, now: dt.datetime | None = None) -> int:
    """Store what a bus scan found, for a person to accept as meters."""
    scanned_at = _time(body.get("scanned_at")) or clock.resolve(now)
    found = body.get("found")
    if not isinstance(found, list):
        raise ValidationError("found must be a list")
    rows = []
    for entry in found:
        if not isinstance(entry, dict) or not isinstance(entry.get("address"), int):
            raise ValidationError("each discovery needs an integer address")
        voltage = entry.get("voltage_v")
        rows.append(
            Discovery(
                gateway=gateway,
                scanned_at=scanned_at,
                address=entry["address"],
                model_guess=str(entry.get("model_guess") or "")[:20],
                voltage_v=voltage if isinstance(voltage, int | float) else None,
                serial=str(entry.get("serial") or "")[:20],
            )
        )
    Discovery.objects.bulk_create(rows)
    return len(rows)
