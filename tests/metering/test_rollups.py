"""Hourly, daily and site rollups, fed through the ingest path as the edge API feeds them.

Each test stores batches with ``ingest.ingest`` and refreshes the rollups the way
the task after a batch does (``rollups.refresh`` over the batch's meters and
time span); one test goes through the HTTP endpoint end to end.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from mcoms.core.audit import acting_as
from metering import estimation, ingest, rollups, services
from metering.models import DailyUsage, HourlyUsage, Reading, SiteDailyUsage
from tests.metering.edge_fixtures import INSTALLED_AT, NOW, batch, install, reading

pytestmark = pytest.mark.django_db
DAY = dt.date(2026, 4, 4)


def at(hhmm: str, day: dt.date = DAY) -> str:
    return f"{day:%Y-%m-%d}T{hhmm}:00Z"


def feed(bus, *points, address: int = 10, gateway=None) -> ingest.Outcome:
    """Ingest ``(ts, energy)`` points as one batch and refresh rollups as the task does."""
    readings = [reading(address=address, ts=ts, energy=energy) for ts, energy in points]
    outcome = ingest.ingest(gateway=gateway or bus.gateway, readings=readings, now=NOW)
    if outcome.meters:
        rollups.refresh(meter_ids=sorted(outcome.meters), start=outcome.start, end=outcome.end)
    return outcome


def hours(meter) -> dict[int, tuple[str, str, int]]:
    """{UTC hour: (kwh, estimated_kwh, intervals)} of the meter on DAY."""
    rows = HourlyUsage.objects.filter(meter=meter, hour__date=DAY).order_by("hour")
    return {r.hour.hour: (str(r.kwh), str(r.estimated_kwh), r.intervals) for r in rows}


def day(meter, when: dt.date = DAY) -> tuple[str, str, int]:
    row = DailyUsage.objects.get(meter=meter, day=when)
    return str(row.kwh), str(row.estimated_kwh), row.intervals


def test_a_later_batch_completes_the_hour_an_earlier_batch_began(bus):
    feed(bus, (at("10:00"), 100.0), (at("10:15"), 100.1))
    assert hours(bus.single) == {10: ("0.100", "0.000", 1)}
    feed(bus, (at("10:30"), 100.2), (at("10:45"), 100.3), (at("11:00"), 100.4))
    # The 10:00-10:15 interval, stored by the first batch, stays counted.
    assert hours(bus.single) == {10: ("0.400", "0.000", 4)}
    assert day(bus.single) == ("0.400", "0.000", 4)


def test_late_out_of_order_readings_correct_earlier_hours_and_days(bus):
    feed(bus, (at("09:45"), 99.9), (at("10:00"), 100.0), (at("11:00"), 101.2))
    # 10:00→11:00 is a gap of four intervals: spread over the hour and estimated.
    assert hours(bus.single) == {9: ("0.100", "0.000", 1), 10: ("1.200", "1.200", 1)}
    # The missing readings arrive late, newest first, in two batches.
    feed(bus, (at("10:45"), 100.9), (at("10:30"), 100.6))
    feed(bus, (at("10:15"), 100.1))
    assert hours(bus.single) == {9: ("0.100", "0.000", 1), 10: ("1.200", "0.000", 4)}
    assert day(bus.single) == ("1.300", "0.000", 5)


def test_a_late_reading_moves_usage_between_hours(bus):
    feed(bus, (at("09:15"), 100.0), (at("09:30"), 100.3), (at("10:30"), 101.5))
    # 09:30→10:30 (1.2 kWh) is a gap: spread half into hour 9, half into hour 10.
    assert hours(bus.single) == {9: ("0.900", "0.600", 1), 10: ("0.600", "0.600", 1)}
    feed(bus, (at("10:00"), 100.4))
    # Measured: almost all of it was used after 10:00 (both halves still 30-minute gaps).
    assert hours(bus.single) == {9: ("0.400", "0.100", 2), 10: ("1.100", "1.100", 1)}
    assert day(bus.single)[0] == "1.500"


def test_a_gap_is_spread_linearly_and_marked_estimated(bus):
    feed(bus, (at("10:00"), 100.0), (at("13:00"), 103.0), (at("13:15"), 103.1))
    assert hours(bus.single) == {
        10: ("1.000", "1.000", 0),
        11: ("1.000", "1.000", 0),
        12: ("1.000", "1.000", 1),
        13: ("0.100", "0.000", 1),
    }
    assert day(bus.single) == ("3.100", "3.000", 2)
    site = SiteDailyUsage.objects.get(site=bus.gateway.site, day=DAY)
    assert (str(site.kwh), str(site.estimated_kwh)) == ("3.100", "3.000")


def test_a_flagged_reading_neither_counts_nor_erases_its_hour(bus):
    feed(bus, (at("10:00"), 100.0), (at("10:15"), 100.1))
    outcome = feed(bus, (at("10:30"), 99999.0))  # a decoding fault: impossible jump
    assert "exceeds the load limit" in outcome.flagged[0]["reason"]
    assert hours(bus.single) == {10: ("0.100", "0.000", 1)}


def test_a_register_reset_never_gives_negative_or_giant_usage(bus):
    feed(bus, (at("10:00"), 12345.0), (at("10:15"), 12345.2))
    # The meter was replaced or cleared: its register starts again near zero.
    outcome = feed(bus, (at("10:30"), 0.1))
    assert "went backwards" in outcome.flagged[0]["reason"]
    assert hours(bus.single) == {10: ("0.200", "0.000", 1)}
    # A person marks it as a reset: a new baseline, no usage across it.
    Reading.objects.filter(meter=bus.single, ts=at("10:30")).update(quality="reset")
    rollups.refresh(meter_ids=[bus.single.pk], start=NOW.replace(hour=10, minute=30), end=NOW)
    assert hours(bus.single) == {10: ("0.200", "0.000", 2)}
    # Readings after the reset count from the new baseline.
    outcome = feed(bus, (at("10:45"), 0.4), (at("11:00"), 0.6))
    assert outcome.flagged == []
    assert hours(bus.single) == {10: ("0.700", "0.000", 4)}
    assert all(row.kwh >= 0 for row in HourlyUsage.objects.all())


def test_a_backwards_reading_accepted_by_a_person_counts_zero_not_negative(bus):
    feed(bus, (at("10:00"), 500.0), (at("10:15"), 500.5))
    feed(bus, (at("10:30"), 400.0))
    Reading.objects.filter(meter=bus.single, ts=at("10:30")).update(quality="accepted")
    rollups.refresh(meter_ids=[bus.single.pk], start=NOW.replace(hour=10, minute=30), end=NOW)
    assert hours(bus.single) == {10: ("0.500", "0.000", 2)}


def test_site_daily_totals_add_up_the_meters(bus, org):
    feed(bus, (at("08:00"), 10.0), (at("08:15"), 10.5))
    feed(bus, (at("08:00"), 500.0), (at("08:15"), 502.25), address=100)
    site = SiteDailyUsage.objects.get(site=org.block_a, day=DAY)
    assert (str(site.kwh), site.meters) == ("2.750", 2)
    # A late reading of one meter updates the site's total.
    feed(bus, (at("08:30"), 11.0))
    site.refresh_from_db()
    assert (str(site.kwh), site.meters) == ("3.250", 2)
    with acting_as(label="test setup"):
        gateway = services.gateway_create(site=org.block_b, name="klb-1", now=INSTALLED_AT)
    other = install(org.block_b, gateway, 11)
    feed(bus, (at("08:00"), 1.0), (at("08:15"), 1.25), address=11, gateway=gateway)
    assert str(SiteDailyUsage.objects.get(site=org.block_b, day=DAY).kwh) == "0.250"
    assert DailyUsage.objects.get(meter=other, day=DAY).kwh == Decimal("0.25")
    site.refresh_from_db()
    assert str(site.kwh) == "3.250"


def test_days_are_the_sites_local_days_in_kampala(bus):
    assert bus.gateway.site.timezone == "Africa/Kampala"  # UTC+3 all year, no DST
    # A local day in Kampala runs from 21:00 UTC to 21:00 UTC.
    start = dt.datetime(2026, 4, 2, 21, 0, tzinfo=dt.UTC)
    points = [
        ((start + n * dt.timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M:%SZ"), 100 + 0.01 * n)
        for n in range(-1, 98)
    ]
    feed(bus, *points)
    # 3 April local: 96 intervals, 21:00Z on the 2nd to 21:00Z on the 3rd.
    assert day(bus.single, dt.date(2026, 4, 3)) == ("0.960", "0.000", 96)
    assert day(bus.single, dt.date(2026, 4, 2)) == ("0.010", "0.000", 1)
    assert day(bus.single, dt.date(2026, 4, 4)) == ("0.010", "0.000", 1)
    # Each day's hours are exactly 24 UTC hours.
    local = HourlyUsage.objects.filter(
        meter=bus.single, hour__gte=start, hour__lt=start + dt.timedelta(days=1)
    )
    assert local.count() == 24


def test_rollups_follow_batches_posted_to_the_edge_api(
    client, bus, django_capture_on_commit_callbacks
):
    def post(*points):
        body = batch(*[reading(ts=ts, energy=e) for ts, e in points])
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                "/api/v1/edge/readings",
                json.dumps(body),
                content_type="application/json",
                **bus.headers(),
            )
        assert response.status_code == 200

    post((at("14:00"), 50.0), (at("14:15"), 50.2))
    post((at("14:45"), 50.8), (at("15:00"), 51.0))
    # The 14:15→14:45 gap is estimated until the 14:30 reading arrives.
    assert hours(bus.single) == {14: ("1.000", "0.600", 3)}
    post((at("14:30"), 50.3))
    assert hours(bus.single) == {14: ("1.000", "0.000", 4)}


def test_usage_to_and_from_server_estimates_stays_estimated(bus):
    feed(bus, (at("10:00"), 100.0), (at("11:00"), 101.2))
    assert hours(bus.single) == {10: ("1.200", "1.200", 1)}
    # The server fills the gap with estimated readings at 10:15, 10:30 and 10:45.
    written = estimation.fill_gaps(
        meter_id=bus.single.pk,
        start=NOW.replace(hour=10),
        end=NOW.replace(hour=11),
        interval_s=900,
        now=NOW,
    )
    assert written == 3
    rollups.refresh(meter_ids=[bus.single.pk], start=NOW.replace(hour=10), end=NOW.replace(hour=11))
    assert hours(bus.single) == {10: ("1.200", "1.200", 4)}
    # A real reading replaces the 10:30 estimate: 10:15→10:30 still leans on an estimate.
    feed(bus, (at("10:30"), 100.5))
    assert hours(bus.single) == {10: ("1.200", "1.200", 4)}
    feed(bus, (at("10:15"), 100.2), (at("10:45"), 100.9))
    assert hours(bus.single) == {10: ("1.200", "0.000", 4)}


def test_readings_days_apart_are_joined_across_the_gap(bus):
    feed(bus, (at("10:00", dt.date(2026, 4, 2)), 100.0))
    feed(bus, (at("10:00"), 104.8))
    # 48 hours without readings: 0.1 kWh an hour, all of it estimated.
    assert day(bus.single, dt.date(2026, 4, 3)) == ("2.400", "2.400", 0)
    assert hours(bus.single)[9] == ("0.100", "0.100", 1)
    # A late reading in the middle of the gap, more than a day from either side.
    feed(bus, (at("10:00", dt.date(2026, 4, 3)), 101.2))
    # 0.05 kWh an hour before it (13 hours of local 3 April), 0.15 after (11 hours).
    assert day(bus.single, dt.date(2026, 4, 3)) == ("2.300", "2.300", 1)
    hour = HourlyUsage.objects.get(meter=bus.single, hour=NOW.replace(day=3, hour=10))
    assert (str(hour.kwh), str(hour.estimated_kwh)) == ("0.150", "0.150")
    total = sum(row.kwh for row in HourlyUsage.objects.filter(meter=bus.single))
    assert total == Decimal("4.800")
