"""Readings of a day at Block A for the plant tests, fed through metering's ingest path."""

from __future__ import annotations

import datetime as dt

import pytest

from mcoms.core.audit import acting_as
from metering import ingest, rollups
from metering.plant import services
from metering.plant.models import PlantAsset
from tests.metering.edge_fixtures import NOW, install, reading

DAY = dt.date(2026, 4, 3)  # a local day of Block A (Africa/Kampala, UTC+3)
STEP = dt.timedelta(minutes=15)


def local(day: dt.date, hh: int, mm: int = 0) -> dt.datetime:
    from zoneinfo import ZoneInfo

    return dt.datetime(day.year, day.month, day.day, hh, mm, tzinfo=ZoneInfo("Africa/Kampala"))


def feed(bus, address: int, kwh_per_step: float, *, start=None, end=None, skip=None, base=100.0):
    """Readings every 15 minutes from ``start`` to ``end`` (local), rising linearly."""
    start = start or local(DAY, 0) - STEP
    end = end or local(DAY + dt.timedelta(days=1), 0) + STEP
    points, ts, n = [], start, 0
    while ts <= end:
        if not (skip and skip(ts)):
            stamp = ts.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            points.append(reading(address=address, ts=stamp, energy=base + n * kwh_per_step))
        ts += STEP
        n += 1
    outcome = ingest.ingest(gateway=bus.gateway, readings=points, now=NOW)
    assert not outcome.rejected if hasattr(outcome, "rejected") else True
    rollups.refresh(meter_ids=sorted(outcome.meters), start=outcome.start, end=outcome.end)


@pytest.fixture
def grid(bus, org):
    """Block A: main meter at 100 (supply), customers at 10 (full day), 11 (a 4-hour gap),
    12 (silent all day), 13 (silent from noon)."""
    with acting_as(label="test setup"):
        services.asset_create(
            site=org.block_a,
            kind=PlantAsset.Kind.SUPPLY_METER,
            name="main_supply",
            source=PlantAsset.Source.BUS_METER,
            meter=bus.three,
        )
    m11 = install(org.block_a, bus.gateway, 11)
    m12 = install(org.block_a, bus.gateway, 12)
    m13 = install(org.block_a, bus.gateway, 13)
    return {"single": bus.single, "main": bus.three, 11: m11, 12: m12, 13: m13}


def feed_customers(bus, main_per_step: float):
    feed(bus, 100, main_per_step)
    feed(bus, 10, 0.4)
    feed(bus, 11, 0.3, skip=lambda ts: local(DAY, 10) < ts < local(DAY, 14))
    feed(bus, 13, 0.2, end=local(DAY, 12))
