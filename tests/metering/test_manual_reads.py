"""Registers read by hand: checked like the edge's readings, stored among them, rolled up."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from mcoms.core.audit import acting_as
from mcoms.core.models import AuditEvent
from metering import commissioning, ingest, rollups
from metering.manual_reads import record_manual_reading, waiting_for_review
from metering.models import DailyUsage, ManualReading, QuarantinedReading, Reading
from tests.metering.edge_fixtures import NOW, reading

pytestmark = pytest.mark.django_db
DAY = dt.date(2026, 4, 4)


def edge(bus, ts: str, energy: float) -> None:
    outcome = ingest.ingest(
        gateway=bus.gateway, readings=[reading(address=10, ts=ts, energy=energy)], now=NOW
    )
    rollups.refresh(meter_ids=sorted(outcome.meters), start=outcome.start, end=outcome.end)


def utc(hhmm: str, day: dt.date = DAY) -> dt.datetime:
    h, m = map(int, hhmm.split(":"))
    return dt.datetime(day.year, day.month, day.day, h, m, tzinfo=dt.UTC)


def read(bus, org, hhmm: str, energy, **kwargs) -> ManualReading:
    kwargs.setdefault("by", org.agent)
    with acting_as(kwargs["by"], channel="agent_app"):
        return record_manual_reading(
            meter=bus.single, read_at=utc(hhmm), energy_kwh=energy, now=NOW, **kwargs
        )


def test_a_hand_reading_becomes_the_meters_reading_and_reaches_the_rollups(bus, org):
    edge(bus, "2026-04-04T08:00:00Z", 100.0)
    photo = SimpleUploadedFile("display.jpg", b"\xff\xd8 fake jpeg", content_type="image/jpeg")
    manual = read(bus, org, "10:00", "102.500", photo=photo, note="gateway down")
    assert manual.status == ManualReading.Status.STORED and not manual.flags
    assert manual.photo.name.startswith(f"metering/manual/{bus.single.pk}/")
    stored = Reading.objects.get(meter=bus.single, ts=utc("10:00"))
    assert stored.energy_kwh == Decimal("102.500")
    assert stored.kind == Reading.Kind.REAL and stored.quality == Reading.Quality.VALID
    # The day's usage now runs to the hand reading: billing and the card see 2.5 kWh.
    assert DailyUsage.objects.get(meter=bus.single, day=DAY).kwh == Decimal("2.500")
    event = AuditEvent.objects.get(object_type="metering.manualreading")
    assert event.actor == org.agent and event.channel == "agent_app"


def test_a_value_below_the_last_reading_is_refused_unless_sent_for_review(bus, org):
    edge(bus, "2026-04-04T08:00:00Z", 100.0)
    with pytest.raises(ValidationError, match="went backwards"):
        read(bus, org, "10:00", "99")
    assert not ManualReading.objects.exists()
    assert not Reading.objects.filter(ts=utc("10:00")).exists()
    manual = read(bus, org, "10:00", "99", review=True)
    assert manual.status == ManualReading.Status.FLAGGED and "backwards" in manual.flags
    stored = Reading.objects.get(meter=bus.single, ts=utc("10:00"))
    assert stored.quality == Reading.Quality.FLAGGED  # out of billing until a person accepts
    assert list(waiting_for_review([org.block_a.pk])) == [manual]
    assert DailyUsage.objects.get(meter=bus.single, day=DAY).kwh == Decimal("0.000")
    # Accepted in the flagged readings' review: no longer waiting.
    with acting_as(org.site_manager):
        commissioning.reading_review(reading=stored, action="reset", note="meter replaced")
    assert list(waiting_for_review([org.block_a.pk])) == []


def test_an_absurd_jump_is_refused(bus, org):
    edge(bus, "2026-04-04T08:00:00Z", 100.0)
    # One phase can carry about 25 kW: 200 kWh in two hours is a misread digit.
    with pytest.raises(ValidationError, match="exceeds the load limit"):
        read(bus, org, "10:00", "300")


def test_a_value_above_a_later_reading_is_refused(bus, org):
    edge(bus, "2026-04-04T12:00:00Z", 100.0)
    with pytest.raises(ValidationError, match="later reading"):
        read(bus, org, "10:00", "101")


def test_a_reading_in_the_future_is_refused(bus, org):
    with acting_as(org.agent), pytest.raises(ValidationError, match="future"):
        record_manual_reading(
            meter=bus.single,
            read_at=NOW + dt.timedelta(hours=1),
            energy_kwh="5",
            by=org.agent,
            now=NOW,
        )


def test_a_month_without_a_partition_keeps_the_value_in_quarantine(bus, org):
    day = dt.date(2026, 2, 10)  # the fixture's partitions run from March
    with acting_as(org.agent):
        manual = record_manual_reading(
            meter=bus.single, read_at=utc("10:00", day), energy_kwh="50", by=org.agent, now=NOW
        )
    assert manual.status == ManualReading.Status.FLAGGED and "no partition" in manual.flags
    held = QuarantinedReading.objects.get(meter=bus.single, source="manual")
    assert held.payload["energy_kwh"] == "50.000"
    assert not Reading.objects.filter(meter=bus.single).exists()


def test_a_hand_reading_replaces_a_server_estimate_but_not_a_measured_reading(bus, org):
    edge(bus, "2026-04-04T08:00:00Z", 100.0)
    Reading.objects.create(
        meter=bus.single,
        ts=utc("09:00"),
        energy_kwh=Decimal("100.4"),
        kind=Reading.Kind.ESTIMATED,
        received_at=NOW,
    )
    read(bus, org, "09:00", "101")
    replaced = Reading.objects.get(meter=bus.single, ts=utc("09:00"))
    assert replaced.kind == Reading.Kind.REAL and replaced.energy_kwh == Decimal("101.000")
    with pytest.raises(ValidationError, match="already has a measured reading"):
        read(bus, org, "08:00", "100")


def test_only_agents_of_the_meters_site_read_it(bus, org):
    with pytest.raises(PermissionDenied):
        read(bus, org, "10:00", "101", by=org.outsider_agent)
    with pytest.raises(PermissionDenied):
        read(bus, org, "10:00", "101", by=org.billing)  # no field work on meters
