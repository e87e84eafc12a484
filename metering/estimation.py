"""Estimation of missing reads (the E of VEE), linear on the cumulative register.

Between two billable readings of a meter, the register is taken to rise evenly
with time. ``fill_gaps`` writes the missing interval boundaries as readings of
kind *estimated* so that billing and charts have a value at every boundary; each
is marked, and a real reading that arrives later for the same timestamp replaces
it (see ``metering.ingest``). ``register_at`` gives the register at any instant
(billing periods start and end at midnight, not at a reading).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import transaction

from mcoms.core import clock
from metering.models import Reading

BILLABLE = (Reading.Quality.VALID, Reading.Quality.ACCEPTED, Reading.Quality.RESET)
KWH = Decimal("0.001")


def _bracket(meter_id: int, ts: dt.datetime):
    readings = Reading.objects.filter(
        meter_id=meter_id, quality__in=BILLABLE, energy_kwh__isnull=False
    )
    before = readings.filter(ts__lte=ts).order_by("-ts").values_list("ts", "energy_kwh").first()
    after = readings.filter(ts__gte=ts).order_by("ts").values_list("ts", "energy_kwh").first()
    return before, after


def interpolate(before: tuple, after: tuple, ts: dt.datetime) -> Decimal:
    """The register at ``ts`` on the straight line between two readings."""
    (t0, e0), (t1, e1) = before, after
    if t1 == t0:
        return e0
    share = Decimal((ts - t0).total_seconds()) / Decimal((t1 - t0).total_seconds())
    return (e0 + (e1 - e0) * share).quantize(KWH)


def register_at(meter_id: int, ts: dt.datetime) -> tuple[Decimal, bool] | None:
    """The meter's register at ``ts`` and whether it is estimated (None without both sides)."""
    before, after = _bracket(meter_id, ts)
    if before is None or after is None:
        return None
    if before[0] == ts:
        return before[1], False
    if after[0] == ts:
        return after[1], False
    return interpolate(before, after, ts), True


@transaction.atomic
def fill_gaps(
    *,
    meter_id: int,
    start: dt.datetime,
    end: dt.datetime,
    interval_s: int,
    now: dt.datetime | None = None,
) -> int:
    """Write estimated readings at missing interval boundaries between good reads.

    Returns how many were written. Boundaries with any reading (real, flagged or
    already estimated) are left alone; nothing is extrapolated past the last
    good reading.
    """
    at = clock.resolve(now)
    step = dt.timedelta(seconds=interval_s)
    before, _ = _bracket(meter_id, start)
    _, after = _bracket(meter_id, end)
    low = before[0] if before else start
    high = after[0] if after else end
    good = list(
        Reading.objects.filter(
            meter_id=meter_id,
            quality__in=BILLABLE,
            energy_kwh__isnull=False,
            ts__gte=low,
            ts__lte=high,
        )
        .order_by("ts")
        .values_list("ts", "energy_kwh")
    )
    taken = set(
        Reading.objects.filter(meter_id=meter_id, ts__gte=start, ts__lte=end).values_list(
            "ts", flat=True
        )
    )
    estimates = []
    for before, after in zip(good, good[1:], strict=False):
        if after[0] - before[0] <= step:
            continue
        ts = _first_boundary(before[0], step)
        while ts < after[0]:
            if start <= ts <= end and ts not in taken:
                estimates.append(
                    Reading(
                        meter_id=meter_id,
                        ts=ts,
                        energy_kwh=interpolate(before, after, ts),
                        kind=Reading.Kind.ESTIMATED,
                        quality=Reading.Quality.VALID,
                        flags="estimated: linear between good reads",
                        received_at=at,
                    )
                )
            ts += step
    Reading.objects.bulk_create(estimates, batch_size=1000, ignore_conflicts=True)
    return len(estimates)


def _first_boundary(after: dt.datetime, step: dt.timedelta) -> dt.datetime:
    midnight = after.replace(hour=0, minute=0, second=0, microsecond=0)
    intervals = int((after - midnight) / step) + 1
    return midnight + step * intervals
