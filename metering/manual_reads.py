"""Registers read by hand: a field agent reads a meter's display and photographs it.

A meter that stopped reporting (a dead gateway, a cut bus) still has a register on its
front. :func:`record_manual_reading` turns what the agent read into one of the meter's
readings, so billing and the usage pages see it like any other measured reading:

- the value is checked the way the edge's readings are (``metering.vee``): not below the
  meter's last billable reading, not above what the meter could have carried since then
  at its load limit, not in the future, and not below a later reading;
- a value that fails those checks is refused with the reason, unless the agent says it is
  what the display shows (``review=True``; a replaced meter, a register reset): then it is
  stored *flagged*, kept out of billing, and listed with the other flagged readings for a
  person to accept (``metering.commissioning.reading_review``);
- the reading is stored as a ``Reading`` of kind *real* at ``read_at``. As at ingest, a
  server estimate at that time is replaced and an existing real reading is left alone;
  a month with no partition of the readings table keeps the value in the quarantine
  (``source="manual"``) rather than losing it, and the hand reading waits for review;
- the meter's hourly, daily and site rollups are recomputed around it at once (one meter,
  a few rows), so the customer card and the next bill see it;
- the hand reading itself (value, photo, who, when, flags) is a ``ManualReading``, and
  its creation is audited.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef

from mcoms.core import audit, clock
from mcoms.core.models import AuditEvent, User
from mcoms.core.permissions import require
from mcoms.core.roles import Cap
from metering import ingest, partitions, rollups, vee
from metering.lifecycle import ON_BUS
from metering.models import ManualReading, Meter, QuarantinedReading, Reading

# Registers show at most a few decimals; the readings table keeps three.
PLACES = Decimal("0.001")


def _energy(value) -> Decimal:
    try:
        energy = Decimal(str(value)).quantize(PLACES)
    except (InvalidOperation, ValueError, TypeError) as exc:
        raise ValidationError({"energy_kwh": "Give the register's value in kWh."}) from exc
    if energy < 0 or not energy.is_finite():
        raise ValidationError({"energy_kwh": "A register's value cannot be negative."})
    if energy >= ingest.MAX_REGISTER_KWH:
        raise ValidationError({"energy_kwh": "That value is too large for a register."})
    return energy


def _later_reading(meter: Meter, read_at: dt.datetime) -> Reading | None:
    return (
        Reading.objects.filter(
            meter=meter, ts__gt=read_at, quality__in=ingest.BILLABLE, energy_kwh__isnull=False
        )
        .order_by("ts")
        .first()
    )


def problems(meter: Meter, read_at: dt.datetime, energy: Decimal, now: dt.datetime) -> list[str]:
    """Why this value does not fit the meter's other readings (empty when it fits)."""
    previous = ingest.previous_readings({meter.pk}, read_at).get(meter.pk)
    limit = vee.load_limit_kw(
        package_limit_w=ingest.load_limits({meter.pk}).get(meter.pk),
        phases=meter.phases,
        ct_ratio=meter.ct_ratio,
    )
    reasons = vee.check(
        ts=read_at,
        values={"energy_kwh": energy},
        previous=previous,
        installed_at=None,
        limit_kw=limit,
        now=now,
    )
    later = _later_reading(meter, read_at)
    if later is not None and later.energy_kwh < energy:
        reasons.append(
            f"above the later reading of {later.energy_kwh} kWh at {later.ts:%Y-%m-%d %H:%M}Z"
        )
    return reasons


def _store_reading(
    meter: Meter, read_at: dt.datetime, energy: Decimal, quality: str, flags: str, now
) -> str:
    """Put the value among the meter's readings; returns "" or why it was not stored."""
    if partitions.month_start(read_at) not in partitions.available_months():
        reason = f"no partition for {read_at:%Y-%m}: kept in quarantine"
        QuarantinedReading.objects.create(
            meter=meter,
            ts=read_at,
            payload={"energy_kwh": str(energy), "ts": read_at.isoformat()},
            reason=reason,
            source="manual",
            received_at=now,
        )
        return reason
    fields = {
        "energy_kwh": energy,
        "kind": Reading.Kind.REAL,
        "quality": quality,
        "flags": flags[:300],
        "gateway_id": None,
        "received_at": now,
    }
    existing = Reading.objects.select_for_update().filter(meter=meter, ts=read_at)
    found = existing.first()
    if found is None:
        Reading.objects.create(meter=meter, ts=read_at, **fields)
    elif found.kind == Reading.Kind.ESTIMATED:
        existing.update(**fields)  # a measured value replaces the server's estimate
    else:
        raise ValidationError(
            {"read_at": "The meter already has a measured reading at that time; read it again."}
        )
    return ""


@transaction.atomic
def record_manual_reading(
    *,
    meter: Meter,
    read_at: dt.datetime,
    energy_kwh,
    photo=None,
    by: User,
    note: str = "",
    review: bool = False,
    now: dt.datetime | None = None,
) -> ManualReading:
    """Store a register read by hand as the meter's reading at ``read_at`` (see the module).

    Raises ``ValidationError`` for a value that does not fit, unless ``review`` says to
    keep it flagged for a person to look at.
    """
    require(by, Cap.METERS_FIELD, meter.site_id)
    now = clock.resolve(now)
    meter = Meter.objects.select_for_update().get(pk=meter.pk)
    if meter.status not in ON_BUS:
        raise ValidationError(
            f"Meter {meter.serial} is {meter.get_status_display().lower()}: only installed "
            "meters are read."
        )
    energy = _energy(energy_kwh)
    read_at = read_at.astimezone(dt.UTC).replace(microsecond=0)
    if read_at > now + vee.FUTURE_TOLERANCE:
        raise ValidationError({"read_at": "The time of the reading cannot be in the future."})
    reasons = problems(meter, read_at, energy, now)
    if reasons and not review:
        raise ValidationError(
            {
                "energy_kwh": "This value does not fit the meter's readings: "
                + "; ".join(reasons)
                + ". Read the display again, or tick “send for review” if it really shows this."
            }
        )
    flags = "; ".join(reasons)
    quality = Reading.Quality.FLAGGED if reasons else Reading.Quality.VALID
    not_stored = _store_reading(meter, read_at, energy, quality, flags, now)
    if not_stored:
        flags = "; ".join(filter(None, [flags, not_stored]))
    manual = ManualReading(
        meter=meter,
        read_at=read_at,
        energy_kwh=energy,
        note=(note or "").strip()[:300],
        status=ManualReading.Status.FLAGGED if flags else ManualReading.Status.STORED,
        flags=flags[:300],
        read_by=by if by.pk else None,
        recorded_at=now,
    )
    if photo:
        manual.photo.save(getattr(photo, "name", "photo.jpg") or "photo.jpg", photo, save=False)
    manual.save()
    audit.record(
        AuditEvent.Action.CREATE,
        manual,
        after=audit.snapshot(manual, ["meter", "read_at", "energy_kwh", "status", "flags"]),
        site=meter.site_id,
        note="meter read by hand" + (f" (flagged: {flags})" if flags else ""),
    )
    if not not_stored:
        rollups.refresh(meter_ids=[meter.pk], start=read_at, end=read_at)
    return manual


def manual_readings_of(meter: Meter, limit: int = 5):
    """The meter's latest hand readings, newest first."""
    return ManualReading.objects.filter(meter=meter).select_related("read_by")[:limit]


def _reviewed():
    """A flagged hand reading whose stored reading a person has since accepted (or reset)."""
    return Exists(
        Reading.objects.filter(meter_id=OuterRef("meter_id"), ts=OuterRef("read_at")).exclude(
            quality=Reading.Quality.FLAGGED
        )
    )


def waiting_for_review(site_ids):
    """Hand readings flagged and not yet reviewed on the given sites, newest first.

    The review itself is the flagged readings' review (``commissioning.reading_review``); a
    hand reading whose reading was accepted there is no longer waiting.
    """
    return (
        ManualReading.objects.filter(
            meter__site_id__in=list(site_ids), status=ManualReading.Status.FLAGGED
        )
        .exclude(_reviewed())
        .select_related("meter", "read_by")
    )


def is_waiting(manual: ManualReading) -> bool:
    """True while a flagged hand reading has not been reviewed."""
    return waiting_for_review([manual.meter.site_id]).filter(pk=manual.pk).exists()
