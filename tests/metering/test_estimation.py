"""Gaps are estimated linearly on the register, marked, and replaced by real reads."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from metering import estimation
from metering.models import Reading
from tests.metering.edge_fixtures import batch, reading

pytestmark = pytest.mark.django_db
T = dt.datetime(2026, 4, 4, 10, 0, tzinfo=dt.UTC)


def real(bus, ts: dt.datetime, energy: float) -> None:
    Reading.objects.create(meter=bus.single, ts=ts, energy_kwh=Decimal(str(energy)), received_at=ts)


def test_gap_filled_with_marked_estimates(bus):
    real(bus, T, 100.0)
    real(bus, T + dt.timedelta(hours=1), 101.0)
    written = estimation.fill_gaps(
        meter_id=bus.single.pk, start=T, end=T + dt.timedelta(hours=1), interval_s=900
    )
    assert written == 3
    estimates = Reading.objects.filter(kind="estimated").order_by("ts")
    assert [(r.ts.minute, str(r.energy_kwh)) for r in estimates] == [
        (15, "100.250"),
        (30, "100.500"),
        (45, "100.750"),
    ]
    # Running again writes nothing new.
    assert (
        estimation.fill_gaps(
            meter_id=bus.single.pk, start=T, end=T + dt.timedelta(hours=1), interval_s=900
        )
        == 0
    )


def test_nothing_is_extrapolated_past_the_last_good_read(bus):
    real(bus, T, 100.0)
    assert (
        estimation.fill_gaps(
            meter_id=bus.single.pk, start=T, end=T + dt.timedelta(hours=5), interval_s=900
        )
        == 0
    )


def test_register_at_any_instant(bus):
    real(bus, T, 100.0)
    real(bus, T + dt.timedelta(hours=2), 102.0)
    assert estimation.register_at(bus.single.pk, T + dt.timedelta(minutes=30)) == (
        Decimal("100.500"),
        True,
    )
    assert estimation.register_at(bus.single.pk, T) == (Decimal("100.000"), False)
    assert estimation.register_at(bus.single.pk, T + dt.timedelta(hours=3)) is None


def test_flagged_reads_are_not_used(bus):
    real(bus, T, 100.0)
    Reading.objects.create(
        meter=bus.single,
        ts=T + dt.timedelta(minutes=30),
        energy_kwh=9999,
        quality="flagged",
        received_at=T,
    )
    real(bus, T + dt.timedelta(hours=1), 101.0)
    assert estimation.register_at(bus.single.pk, T + dt.timedelta(minutes=30)) == (
        Decimal("100.500"),
        True,
    )


def test_a_real_reading_replaces_the_estimate(client, bus):
    real(bus, T, 100.0)
    real(bus, T + dt.timedelta(hours=1), 101.0)
    estimation.fill_gaps(
        meter_id=bus.single.pk, start=T, end=T + dt.timedelta(hours=1), interval_s=900
    )
    late = reading(ts="2026-04-04T10:15:00Z", energy=100.2)
    response = client.post(
        "/api/v1/edge/readings",
        json.dumps(batch(late)),
        content_type="application/json",
        **bus.headers(),
    )
    assert response.json()["accepted"] == 1
    replaced = Reading.objects.get(meter=bus.single, ts=T + dt.timedelta(minutes=15))
    assert (replaced.kind, str(replaced.energy_kwh)) == ("real", "100.200")
    assert Reading.objects.filter(kind="estimated").count() == 2


def test_a_window_inside_a_gap_uses_the_good_reads_around_it(bus):
    real(bus, T, 100.0)
    real(bus, T + dt.timedelta(hours=2), 102.0)
    written = estimation.fill_gaps(
        meter_id=bus.single.pk,
        start=T + dt.timedelta(minutes=30),
        end=T + dt.timedelta(minutes=90),
        interval_s=900,
    )
    assert written == 5
    first = Reading.objects.filter(kind="estimated").order_by("ts").first()
    assert (first.ts, str(first.energy_kwh)) == (T + dt.timedelta(minutes=30), "100.500")
