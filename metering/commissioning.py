"""The commissioning portal's services: put meters on a gateway's bus, send bus work to
the Pi, act on scan discoveries, manage the gateway's token, review flagged readings.

Every write is atomic and audited. The lifecycle steps themselves go through
``metering.services`` (which opens the bus slot and moves the gateway's config
version); commands go through ``metering.edge``; tokens through ``metering.tokens``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models, transaction

from mcoms.core import audit, clock
from mcoms.core.models import AuditEvent, Site, User
from metering import addressing, edge, lifecycle, rollups, services, tokens
from metering.lifecycle import HOLDS_ADDRESS, ON_BUS, Status
from metering.models import (
    BusSlot,
    Discovery,
    EdgeCommand,
    Gateway,
    GatewayToken,
    Meter,
    MeterComms,
    Reading,
)

# Inventory meters that may be put on a bus from the gateway's page.
READY_FOR_BUS = (Status.ASSIGNED, Status.CONVERTED, Status.SHIPPED)
# Three missed heartbeats (every 5 minutes by default): the gateway is shown as silent.
HEARTBEAT_SILENT_AFTER = dt.timedelta(minutes=15)
MODBUS_ADDRESSES = range(1, 248)
CHINT_MODELS = (Meter.Model.DDSU666, Meter.Model.DTSU666)


# --- the bus ------------------------------------------------------------------------------


def _address_taken(gateway: Gateway, address: int | None, meter_pk: int | None) -> str:
    """Who already answers (or is planned to) at ``address`` on the bus; empty if nobody."""
    answering = (
        BusSlot.objects.filter(gateway=gateway, address=address, end__isnull=True)
        .exclude(meter_id=meter_pk)
        .select_related("meter")
        .first()
    )
    holder = (
        answering.meter
        if answering
        else gateway.meters.filter(status__in=HOLDS_ADDRESS, modbus_address=address)
        .exclude(pk=meter_pk)
        .first()
    )
    if holder is None:
        return ""
    return f"Address {address} is taken on bus {gateway.name} by meter {holder.serial}."


def _bus_problems(gateway: Gateway, address: int | None, meter: Meter | None) -> list[str]:
    """Why ``address`` on ``gateway``'s bus cannot take ``meter`` (empty when it can)."""
    meter_pk = meter.pk if meter else None
    problems = [p for p in [_address_taken(gateway, address, meter_pk)] if p]
    try:
        addressing.check_bus_room(gateway, meter_pk=meter_pk)
    except ValidationError as exc:
        problems.extend(exc.messages)
    return problems


def meters_ready_for_bus(gateway: Gateway):
    """The site's meters with a planned address that are not yet on any bus."""
    return Meter.objects.filter(
        site=gateway.site_id, status__in=READY_FOR_BUS, modbus_address__isnull=False
    ).order_by("modbus_address")


@transaction.atomic
def bus_install(
    *,
    gateway: Gateway,
    meter: Meter,
    by_name: str = "",
    note: str = "",
    now: dt.datetime | None = None,
) -> Meter:
    """Put an Assigned/Converted/Shipped meter on ``gateway``'s bus at its planned address.

    The steps up to Installed are recorded one by one (signed and dated); Installed
    opens the bus slot and moves the gateway's config version, so the Pi starts
    polling the meter, and its first valid readings commission it.
    """
    meter = Meter.objects.select_for_update().get(pk=meter.pk)
    if meter.site_id != gateway.site_id:
        where = meter.site.name if meter.site_id else "no site"
        raise ValidationError(
            f"Meter {meter.serial} is planned for {where}, not for {gateway.site.name}."
        )
    if meter.status not in READY_FOR_BUS:
        raise ValidationError(
            f"Meter {meter.serial} is {meter.get_status_display().lower()}: only assigned, "
            "converted or shipped meters can be put on a bus."
        )
    problems = addressing.address_problems(
        site=gateway.site,
        phases=meter.phases,
        address=meter.modbus_address,
        gateway=gateway,
        meter_pk=meter.pk,
    )
    problems += _bus_problems(gateway, meter.modbus_address, meter)
    if problems:
        raise ValidationError(list(dict.fromkeys(problems)))
    note = note or f"put on bus {gateway.name} from the commissioning portal"
    for step in lifecycle.forward_steps(meter.status, Status.INSTALLED) or []:
        meter = services.meter_move(
            meter=meter,
            status=step,
            gateway=gateway if step == Status.INSTALLED else None,
            by_name=by_name,
            note=note,
            now=now,
        )
    return meter


# How the gateway page names the last values a meter sent (keys of MeterComms.last_values).
# (key, label, unit, decimals shown)
VALUE_LABELS = [
    ("energy_kwh", "Energy", "kWh", 3),
    ("export_kwh", "Export", "kWh", 3),
    ("power_kw", "Power", "kW", 3),
    ("voltage_l1", "V L1", "V", 1),
    ("voltage_l2", "V L2", "V", 1),
    ("voltage_l3", "V L3", "V", 1),
    ("current_l1", "I L1", "A", 2),
    ("current_l2", "I L2", "A", 2),
    ("current_l3", "I L3", "A", 2),
    ("power_factor", "PF", "", 2),
    ("frequency_hz", "f", "Hz", 2),
]


def describe_values(values: dict | None) -> list[str]:
    """Last values as short texts with units, in a fixed order ("Energy 12345.600 kWh")."""
    values = values or {}
    return [
        f"{label} {_rounded(values[key], places)} {unit}".strip()
        for key, label, unit, places in VALUE_LABELS
        if values.get(key) is not None
    ]


def _rounded(value, places: int) -> str:
    try:
        return f"{Decimal(str(value)):.{places}f}"
    except (ArithmeticError, ValueError):
        return str(value)


@dataclass(frozen=True)
class BusRow:
    """One meter on a bus as the gateway page shows it."""

    meter: Meter
    online: bool
    polled: bool
    last_reading_ts: dt.datetime | None
    values: list[str]
    errors: dict
    last_error: str
    last_ok_at: dt.datetime | None


def is_online(comms: MeterComms | None, gateway: Gateway, now: dt.datetime) -> bool:
    """A reading arrived within two log intervals of ``now``."""
    if comms is None or comms.last_reading_ts is None:
        return False
    return comms.last_reading_ts >= now - dt.timedelta(seconds=2 * gateway.log_interval_s)


def bus_rows(gateway: Gateway, *, now: dt.datetime | None = None) -> list[BusRow]:
    """The meters on ``gateway``'s bus, by address, with their health as of ``now``."""
    at = clock.resolve(now)
    meters = gateway.meters.filter(status__in=HOLDS_ADDRESS).order_by("modbus_address")
    comms = {c.meter_id: c for c in MeterComms.objects.filter(meter__in=meters)}
    rows = []
    for meter in meters:
        c = comms.get(meter.pk)
        rows.append(
            BusRow(
                meter=meter,
                online=is_online(c, gateway, at),
                polled=meter.status in ON_BUS and meter.polling_enabled,
                last_reading_ts=c.last_reading_ts if c else None,
                values=describe_values(c.last_values if c else None),
                errors={k: v for k, v in ((c.errors_24h or {}) if c else {}).items() if v},
                last_error=c.last_error if c else "",
                last_ok_at=c.last_ok_at if c else None,
            )
        )
    return rows


def heartbeat_summary(gateway: Gateway, *, now: dt.datetime | None = None) -> dict | None:
    """What the gateway's Pi last said about itself, or None when it never reported."""
    if gateway.last_heartbeat_at is None:
        return None
    body = gateway.last_heartbeat if isinstance(gateway.last_heartbeat, dict) else {}
    outbox = body.get("outbox") if isinstance(body.get("outbox"), dict) else {}
    bus = body.get("bus") if isinstance(body.get("bus"), dict) else {}
    reported = body.get("config_version")
    return {
        "at": gateway.last_heartbeat_at,
        "silent": clock.resolve(now) - gateway.last_heartbeat_at > HEARTBEAT_SILENT_AFTER,
        "agent_version": body.get("agent_version") or "unknown",
        "pending_readings": outbox.get("pending_readings"),
        "dead_letter_batches": outbox.get("dead_letter_batches"),
        "port_open": bus.get("port_open"),
        "clock_synced": body.get("clock_synced"),
        "config_version": reported,
        "config_current": reported == gateway.config_version,
    }


# --- commands to the Pi ----------------------------------------------------------------------


def _address(args: dict, key: str, label: str) -> int:
    value = args.get(key)
    if not isinstance(value, int) or value not in MODBUS_ADDRESSES:
        raise ValidationError(f"{label}: give an address between 1 and 247.")
    return value


def command_args(gateway: Gateway, type: str, raw: dict) -> dict:
    """The arguments the contract fixes for a command of ``type``, checked."""
    if type == EdgeCommand.Type.SCAN:
        start, end = _address(raw, "from", "Scan from"), _address(raw, "to", "Scan to")
        if start > end:
            raise ValidationError("Scan from must not be above scan to.")
        return {"from": start, "to": end}
    if type in (EdgeCommand.Type.READ, EdgeCommand.Type.PROBE):
        return {"address": _address(raw, "address", "Address")}
    if type == EdgeCommand.Type.SET_ADDRESS:
        model = raw.get("model")
        if model not in CHINT_MODELS:
            raise ValidationError("Changing an address needs the meter model (DDSU666 or DTSU666).")
        old, new = _address(raw, "from", "Current address"), _address(raw, "to", "New address")
        if new == 1:
            raise ValidationError("Address 1 is the factory default and is never planned.")
        if old == new:
            raise ValidationError("The new address is the same as the current one.")
        allowed = gateway.site.address_range(3 if model == Meter.Model.DTSU666 else 1)
        if new not in allowed:
            raise ValidationError(
                f"{new} is outside {gateway.site.name}'s range for a {model} "
                f"({allowed.start}–{allowed.stop - 1})."
            )
        taken = _address_taken(gateway, new, None)
        if taken:
            raise ValidationError(taken)
        return {"model": model, "from": old, "to": new}
    raise ValidationError(f"Unknown command {type!r}.")


@transaction.atomic
def command_issue(
    *,
    gateway: Gateway,
    type: str,
    args: dict,
    user: User | None = None,
    now: dt.datetime | None = None,
) -> EdgeCommand:
    """Queue bus work for the gateway's Pi (it rides on the next heartbeat answer)."""
    clean = command_args(gateway, type, args)
    return edge.command_create(gateway=gateway, type=type, args=clean, user=user, now=now)


# --- discoveries --------------------------------------------------------------------------------


def _new_discovery(discovery: Discovery) -> Discovery:
    discovery = (
        Discovery.objects.select_for_update().select_related("gateway__site").get(pk=discovery.pk)
    )
    if discovery.status != Discovery.Status.NEW:
        raise ValidationError(
            f"The discovery at address {discovery.address} is already "
            f"{discovery.get_status_display().lower()}."
        )
    return discovery


def _close_discovery(discovery: Discovery, status: str, meter: Meter | None = None) -> None:
    """Close the discovery, and earlier scans' open ones at the same address with it."""
    before = audit.snapshot(discovery, ["status", "meter"])
    discovery.status, discovery.meter = status, meter
    discovery.save(update_fields=["status", "meter"])
    earlier = Discovery.objects.filter(
        gateway=discovery.gateway_id, address=discovery.address, status=Discovery.Status.NEW
    ).update(status=status, meter=meter)
    audit.record(
        AuditEvent.Action.UPDATE,
        discovery,
        before=before,
        after={**audit.snapshot(discovery, ["status", "meter"]), "same_address_closed": earlier},
        site=discovery.gateway.site_id,
        note=f"discovery at address {discovery.address} {status}",
    )


def _meter_for_discovery(
    discovery: Discovery, serial: str, model: str, label: str, by_name: str, now
) -> Meter:
    """The inventory meter ``serial`` (created when unknown), planned at the discovery's address."""
    site, address = discovery.gateway.site, discovery.address
    meter = Meter.objects.filter(serial=serial).first()
    if meter is None:
        meter = services.meter_create(
            serial=serial, model=model, label=label, by_name=by_name, now=now
        )
    if meter.status == Status.UNASSIGNED:
        return services.meter_assign(
            meter=meter, site=site, address=address, by_name=by_name, now=now
        )
    if meter.site_id != site.pk:
        raise ValidationError(f"Meter {serial} is planned for another site.")
    if meter.modbus_address != address:
        raise ValidationError(
            f"Meter {serial} is planned at address {meter.modbus_address} but answered at "
            f"{address}: change its address on the bus first, or choose another serial."
        )
    return meter


@transaction.atomic
def discovery_accept(
    *,
    discovery: Discovery,
    serial: str,
    model: str,
    label: str = "",
    by_name: str = "",
    now: dt.datetime | None = None,
) -> Meter:
    """Accept a meter found by a scan: link or create the inventory meter and put it on the bus.

    A serial already in the inventory is linked (it must be unassigned, or planned
    on this site at the address it answered at); an unknown serial is added.
    """
    discovery = _new_discovery(discovery)
    gateway = discovery.gateway
    serial = services.validate_serial(serial, model)
    existing = Meter.objects.filter(serial=serial).first()
    if existing and existing.gateway_id == gateway.pk and existing.status in ON_BUS:
        if existing.modbus_address != discovery.address:
            raise ValidationError(
                f"Meter {serial} is already on this bus at address {existing.modbus_address}."
            )
        _close_discovery(discovery, Discovery.Status.ACCEPTED, existing)
        return existing
    problems = _bus_problems(gateway, discovery.address, existing)
    if problems:
        raise ValidationError(problems)
    meter = _meter_for_discovery(discovery, serial, model, label, by_name, now)
    meter = bus_install(
        gateway=gateway,
        meter=meter,
        by_name=by_name,
        note=f"found by a scan of bus {gateway.name} at address {discovery.address}",
        now=now,
    )
    _close_discovery(discovery, Discovery.Status.ACCEPTED, meter)
    return meter


@transaction.atomic
def discovery_dismiss(*, discovery: Discovery) -> Discovery:
    """Set a scan discovery aside (not a meter of ours, or already known)."""
    discovery = _new_discovery(discovery)
    _close_discovery(discovery, Discovery.Status.DISMISSED)
    return discovery


# --- the gateway's token -----------------------------------------------------------------------


@transaction.atomic
def gateway_register(
    *, site: Site, name: str, description: str = "", meter_limit: int = 32, now=None
) -> tuple[Gateway, str]:
    """Register a gateway and issue its first token (the caller shows the token once)."""
    gateway = services.gateway_create(
        site=site, name=name, description=description, meter_limit=meter_limit, now=now
    )
    return gateway, tokens.token_issue(gateway=gateway, now=now)


def active_tokens(gateway: Gateway, *, now: dt.datetime | None = None):
    """The gateway's tokens that still open the edge API (shown by prefix only)."""
    at = clock.resolve(now)
    return [
        t
        for t in GatewayToken.objects.filter(gateway=gateway, revoked_at__isnull=True)
        if t.expires_at is None or t.expires_at > at
    ]


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


@transaction.atomic
def token_rotate(*, gateway: Gateway, now: dt.datetime | None = None) -> str:
    """A new token; the current ones keep working for the grace period (7 days)."""
    at = clock.resolve(now)
    current = active_tokens(gateway, now=at)
    before = {t.prefix: _iso(t.expires_at) for t in current}
    token = tokens.token_rotate(gateway=gateway, now=at)
    after = {
        t.prefix: _iso(t.expires_at)
        for t in GatewayToken.objects.filter(pk__in=[t.pk for t in current])
    }
    audit.record(
        AuditEvent.Action.UPDATE,
        gateway,
        before={"tokens_expire": before},
        after={"tokens_expire": after, "new_token": token[:8]},
        site=gateway.site_id,
        note="token rotated",
    )
    return token


@transaction.atomic
def token_revoke(*, gateway: Gateway, now: dt.datetime | None = None) -> int:
    """End every token of the gateway at once (a stolen Pi); audited by ``tokens``."""
    return tokens.token_revoke(gateway=gateway, now=now)


# --- flagged readings -----------------------------------------------------------------------------


class Review(models.TextChoices):
    """What a person may do with a flagged reading."""

    ACCEPT = "accept", "Accept as read"
    RESET = "reset", "Register reset (new baseline)"
    CORRECT = "correct", "Correct the energy value"


REVIEW_FIELDS = ["ts", "energy_kwh", "quality", "flags"]


@transaction.atomic
def reading_review(
    *,
    reading: Reading,
    action: str,
    energy_kwh: Decimal | None = None,
    note: str = "",
) -> Reading:
    """Accept a flagged reading, mark it a register reset, or correct its energy value.

    The change is audited with before and after, and the meter's rollups around the
    reading are recomputed so consumption follows. The audit event's subject is the
    meter (a reading's composite key does not fit an audit object id); the reading's
    ``ts`` is in the snapshots.
    """
    rows = Reading.objects.select_for_update().filter(meter_id=reading.meter_id, ts=reading.ts)
    reading = rows.get()
    if reading.quality != Reading.Quality.FLAGGED:
        raise ValidationError(
            f"This reading is {reading.get_quality_display().lower()}, not flagged: "
            "it was reviewed already."
        )
    note = (note or "").strip()
    before = audit.snapshot(reading, REVIEW_FIELDS)
    changes: dict = {}
    if action == Review.ACCEPT:
        changes["quality"] = Reading.Quality.ACCEPTED
    elif action == Review.RESET:
        changes["quality"] = Reading.Quality.RESET
    elif action == Review.CORRECT:
        if energy_kwh is None or energy_kwh < 0:
            raise ValidationError("Give the corrected energy value in kWh (0 or more).")
        if not note:
            raise ValidationError("Say why the value is corrected (a note is required).")
        changes = {"quality": Reading.Quality.ACCEPTED, "energy_kwh": energy_kwh}
    else:
        raise ValidationError(f"Unknown review action {action!r}.")
    rows.update(**changes)
    reading = rows.get()
    audit.record(
        AuditEvent.Action.UPDATE,
        reading.meter,
        before=before,
        after=audit.snapshot(reading, REVIEW_FIELDS),
        site=reading.meter.site_id,
        note=note or f"flagged reading of {reading.ts:%Y-%m-%d %H:%M} UTC: {Review(action).label}",
    )
    rollups.refresh(meter_ids=[reading.meter_id], start=reading.ts, end=reading.ts)
    if reading.meter.status == Status.INSTALLED:
        # An accepted reading is valid data: the meter is polled and logging.
        services.meter_move(
            meter=reading.meter,
            status=Status.COMMISSIONED,
            note="first readings accepted by a person",
        )
    return reading


def flagged_readings(site: Site, *, gateway: Gateway | None = None):
    """The site's flagged readings, newest first (optionally only one gateway's)."""
    readings = Reading.objects.filter(
        meter__site=site, quality=Reading.Quality.FLAGGED
    ).select_related("meter")
    if gateway is not None:
        readings = readings.filter(gateway_id=gateway.pk)
    return readings.order_by("-ts", "meter_id")
