"""Writes of the metering app: gateways, meters and their lifecycle; all audited."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F

from customers.models import Customer
from mcoms.core import audit, clock
from mcoms.core.models import AuditEvent, Site
from metering import addressing, lifecycle
from metering.lifecycle import Status
from metering.models import BusSlot, Gateway, Meter, MeterAssignment, MeterEvent

CHINT_SERIAL = re.compile(r"^\d{12}$")
PHASES = {Meter.Model.DDSU666: 1, Meter.Model.DTSU666: 3}
METER_FIELDS = (
    "variant",
    "energy_register",
    "polling_enabled",
    "serial",
    "model",
    "phases",
    "site",
    "modbus_address",
    "gateway",
    "ct_ratio",
    "label",
    "status",
    "notes",
)


def _snap(meter: Meter) -> dict:
    return audit.snapshot(meter, METER_FIELDS)


def validate_serial(serial: str, model: str) -> str:
    """The serial, trimmed; CHINT serials are exactly 12 digits."""
    serial = (serial or "").strip()
    if not serial:
        raise ValidationError({"serial": "Enter the meter's serial number."})
    if model in PHASES and not CHINT_SERIAL.match(serial):
        raise ValidationError(
            {"serial": f"A CHINT serial is exactly 12 digits; {serial!r} is not."}
        )
    return serial


@transaction.atomic
def gateway_create(
    *,
    site: Site,
    name: str,
    description: str = "",
    meter_limit: int = 32,
    now: datetime | None = None,
) -> Gateway:
    """Register a gateway (one Pi on one bus) at a site."""
    gateway = Gateway(
        site=site,
        name=name,
        description=description,
        meter_limit=meter_limit,
        created_at=clock.resolve(now),
    )
    gateway.full_clean()
    gateway.save()
    audit.record(AuditEvent.Action.CREATE, gateway, after=audit.snapshot(gateway), site=site)
    return gateway


GATEWAY_FIELDS = {
    "description",
    "meter_limit",
    "poll_interval_s",
    "log_interval_s",
    "baudrate",
    "parity",
    "stopbits",
    "bytesize",
}
GATEWAY_POLLING = GATEWAY_FIELDS - {"description", "meter_limit"}


@transaction.atomic
def gateway_update(*, gateway: Gateway, **fields) -> Gateway:
    """Change a gateway's description, meter limit or polling settings."""
    unknown = set(fields) - GATEWAY_FIELDS
    if unknown:
        raise ValueError(f"gateway_update cannot change {sorted(unknown)}")
    before = audit.snapshot(gateway, GATEWAY_FIELDS)
    for name, value in fields.items():
        setattr(gateway, name, value)
    gateway.full_clean()
    gateway.save(update_fields=list(fields))
    changed = audit.record_changes(gateway, before, site=gateway.site_id)
    if changed and GATEWAY_POLLING & {f for f, _, _ in changed.changes()}:
        gateway_config_changed(gateway)
    return gateway


@transaction.atomic
def meter_create(
    *,
    serial: str,
    model: str,
    phases: int | None = None,
    ct_ratio: Decimal | int = 1,
    label: str = "",
    notes: str = "",
    by_name: str = "",
    now: datetime | None = None,
) -> Meter:
    """Add a meter to the inventory, Unassigned."""
    at = clock.resolve(now)
    serial = validate_serial(serial, model)
    if Meter.objects.filter(serial=serial).exists():
        raise ValidationError({"serial": f"Meter {serial} is already in the inventory."})
    phases = phases or PHASES.get(model, 1)
    if model in PHASES and phases != PHASES[model]:
        raise ValidationError({"phases": f"A {model} has {PHASES[model]} phase(s)."})
    meter = Meter(
        serial=serial,
        model=model,
        phases=phases,
        ct_ratio=Decimal(ct_ratio),
        label=label,
        notes=notes,
        status=Status.UNASSIGNED,
        status_changed_at=at,
        created_at=at,
    )
    meter.full_clean()
    meter.save()
    _event(meter, "", Status.UNASSIGNED, at=at, by_name=by_name, note="added to inventory")
    audit.record(AuditEvent.Action.CREATE, meter, after=_snap(meter))
    return meter


# Fields the Pi's config carries: changing them moves the gateway's config version.
POLLED_FIELDS = {"ct_ratio", "variant", "energy_register", "polling_enabled", "label"}


@transaction.atomic
def meter_update(*, meter: Meter, **fields) -> Meter:
    """Change a meter's descriptive or polling fields (label, notes, CT ratio, register map)."""
    allowed = POLLED_FIELDS | {"notes"}
    if set(fields) - allowed:
        raise ValueError(f"meter_update cannot change {sorted(set(fields) - allowed)}")
    before = _snap(meter)
    for name, value in fields.items():
        setattr(meter, name, value)
    meter.full_clean()
    meter.save()
    changed = audit.record_changes(meter, before, site=meter.site_id)
    if changed and meter.gateway_id and POLLED_FIELDS & {f for f, _, _ in changed.changes()}:
        gateway_config_changed(meter.gateway)
    return meter


def gateway_config_changed(gateway: Gateway) -> None:
    """Move the gateway's config version so its Pi fetches the new config."""
    Gateway.objects.filter(pk=gateway.pk).update(config_version=F("config_version") + 1)
    gateway.refresh_from_db(fields=["config_version"])


def _event(meter: Meter, old: str, new: str, *, at: datetime, by_name: str, note: str = "") -> None:
    actor = audit.current_actor()
    MeterEvent.objects.create(
        meter=meter,
        from_status=old,
        to_status=new,
        at=at,
        by=actor.user,
        by_name=by_name or (actor.user.get_full_name() if actor.user else "") or actor.label,
        note=note[:500],
    )


@transaction.atomic
def meter_assign(
    *,
    meter: Meter,
    site: Site,
    address: int,
    by_name: str = "",
    now: datetime | None = None,
) -> Meter:
    """Plan a meter for a site at a Modbus address (Unassigned → Assigned)."""
    meter = Meter.objects.select_for_update().get(pk=meter.pk)
    if not lifecycle.can_move(meter.status, Status.ASSIGNED):
        raise ValidationError(
            f"A meter that is {meter.get_status_display().lower()} cannot be assigned."
        )
    addressing.check_address(site=site, phases=meter.phases, address=address, meter_pk=meter.pk)
    before = _snap(meter)
    meter.site, meter.modbus_address = site, address
    return _move(meter, Status.ASSIGNED, before=before, by_name=by_name, now=now)


@transaction.atomic
def meter_move(
    *,
    meter: Meter,
    status: str,
    by_name: str = "",
    note: str = "",
    gateway: Gateway | None = None,
    now: datetime | None = None,
) -> Meter:
    """Take one lifecycle step (Converted, Shipped, Installed, …), signed and dated.

    Installing needs the gateway whose bus the meter is wired to; the address
    must be free on that bus and the bus must have room.
    """
    meter = Meter.objects.select_for_update().get(pk=meter.pk)
    if status == Status.ASSIGNED:
        raise ValidationError("Use assignment (with a site and address) to assign a meter.")
    if not lifecycle.can_move(meter.status, status):
        raise ValidationError(
            f"A meter that is {meter.get_status_display().lower()} cannot become "
            f"{Status(status).label.lower()}."
        )
    before = _snap(meter)
    if status == Status.INSTALLED:
        _attach_to_bus(meter, gateway)
    if status == Status.COMMISSIONED and meter.gateway_id is None:
        raise ValidationError(
            "A meter is commissioned only once it is installed on a gateway's bus."
        )
    if status == Status.UNASSIGNED:
        meter.site, meter.modbus_address, meter.gateway = None, None, None
    if status in (Status.REPLACED, Status.DECOMMISSIONED):
        meter.gateway = None
    return _move(meter, status, before=before, by_name=by_name, note=note, now=now)


def _attach_to_bus(meter: Meter, gateway: Gateway | None) -> None:
    gateway = gateway or meter.gateway
    if gateway is None:
        raise ValidationError({"gateway": "Say which gateway's bus the meter is wired to."})
    if gateway.site_id != meter.site_id:
        raise ValidationError({"gateway": f"Gateway {gateway.name} is not on the meter's site."})
    addressing.check_address(
        site=meter.site,
        phases=meter.phases,
        address=meter.modbus_address,
        gateway=gateway,
        meter_pk=meter.pk,
    )
    addressing.check_bus_room(gateway, meter_pk=meter.pk)
    meter.gateway = gateway


def _update_bus_slot(meter: Meter, old: str, new: str, at: datetime) -> None:
    """Keep the record of which meter answers at which address on which bus."""
    was_on_bus, on_bus = old in lifecycle.ON_BUS, new in lifecycle.ON_BUS
    if on_bus and not was_on_bus:
        BusSlot.objects.create(
            gateway=meter.gateway, address=meter.modbus_address, meter=meter, start=at
        )
        gateway_config_changed(meter.gateway)
    elif was_on_bus and not on_bus:
        slots = BusSlot.objects.filter(meter=meter, end__isnull=True)
        for slot in slots.select_related("gateway"):
            gateway_config_changed(slot.gateway)
        slots.update(end=at)


def _move(
    meter: Meter,
    status: str,
    *,
    before: dict,
    by_name: str,
    note: str = "",
    now: datetime | None = None,
) -> Meter:
    at = clock.resolve(now)
    old = meter.status
    meter.status, meter.status_changed_at = status, at
    meter.full_clean()
    meter.save()
    _update_bus_slot(meter, old, status, at)
    _event(meter, old, status, at=at, by_name=by_name, note=note)
    audit.record(
        AuditEvent.Action.TRANSITION,
        meter,
        before=before,
        after=_snap(meter),
        site=meter.site_id,
        note=note or f"{old} → {status}",
    )
    return meter


@transaction.atomic
def meter_serve_customer(
    *,
    meter: Meter,
    customer: Customer,
    reason: str = "",
    now: datetime | None = None,
) -> MeterAssignment:
    """From ``now`` the meter serves ``customer``; any previous assignment of it ends."""
    at = clock.resolve(now)
    if meter.site_id is not None and meter.site_id != customer.site_id:
        raise ValidationError("The meter and the customer are on different sites.")
    current = (
        MeterAssignment.objects.select_for_update().filter(meter=meter, end__isnull=True).first()
    )
    if current is not None:
        if current.customer_id == customer.pk:
            return current
        meter_release(meter=meter, reason=reason or "moved to another customer", now=at)
    assignment = MeterAssignment.objects.create(
        meter=meter, customer=customer, start=at, reason=reason
    )
    audit.record(
        AuditEvent.Action.CREATE,
        assignment,
        after=audit.snapshot(assignment),
        site=customer.site_id,
    )
    return assignment


@transaction.atomic
def meter_release(*, meter: Meter, reason: str = "", now: datetime | None = None) -> None:
    """End the meter's current customer assignment, if any."""
    at = clock.resolve(now)
    current = (
        MeterAssignment.objects.select_for_update().filter(meter=meter, end__isnull=True).first()
    )
    if current is None:
        return
    before = audit.snapshot(current)
    current.end = at
    current.save(update_fields=["end"])
    audit.record(
        AuditEvent.Action.UPDATE,
        current,
        before=before,
        after=audit.snapshot(current),
        site=current.customer.site_id,
        note=reason,
    )
