"""Calin daily data as readings (through validation and rollups), online status, remote reads."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db.models import Sum

from metering import partitions
from metering.models import HourlyUsage, QuarantinedReading, Reading
from metering.steering import readings, remote_reads
from metering.steering.models import Concentrator, MeterState, RemoteRead
from tests.metering.steering.conftest import T0

DAY1, DAY2, DAY3 = dt.date(2026, 4, 4), dt.date(2026, 4, 5), dt.date(2026, 4, 6)


def test_daily_cumulative_kwh_becomes_validated_readings_and_rollups(
    fake, grid, django_capture_on_commit_callbacks
):
    partitions.ensure_months([dt.date(2026, 4, 1)])
    days = fake.meters[grid.calin.serial].daily
    days.update(
        {
            "2026-04-04": Decimal("100.0"),
            "2026-04-05": Decimal("112.5"),
            "2026-04-06": Decimal("50"),
        }
    )
    with django_capture_on_commit_callbacks(execute=True):
        first = readings.import_daily(grid.calin, DAY1, now=T0)
        second = readings.import_daily(grid.calin, DAY2, now=T0)
    assert first.accepted == second.accepted == 1
    stored = Reading.objects.filter(meter=grid.calin).order_by("ts")
    # each day's register at midnight after it, Kampala time (21:00 UTC)
    assert [r.ts for r in stored] == [
        dt.datetime(2026, 4, 4, 21, tzinfo=dt.UTC),
        dt.datetime(2026, 4, 5, 21, tzinfo=dt.UTC),
    ]
    assert [r.energy_kwh for r in stored] == [Decimal("100.000"), Decimal("112.500")]
    assert {r.quality for r in stored} == {"valid"}
    used = HourlyUsage.objects.filter(meter=grid.calin).aggregate(total=Sum("kwh"))["total"]
    assert abs(used - Decimal("12.5")) < Decimal("0.01")  # spread over the hours, rounded
    # the same day again is a duplicate, not a second reading
    again = readings.import_daily(grid.calin, DAY2, now=T0)
    assert again.accepted == 0 and again.duplicates == 1
    # a register going backwards is flagged by validation, kept out of billing
    flagged = readings.import_daily(grid.calin, DAY3, now=T0)
    assert "went backwards" in flagged.flagged[0]["reason"]
    last = Reading.objects.get(meter=grid.calin, ts=dt.datetime(2026, 4, 6, 21, tzinfo=dt.UTC))
    assert last.quality == "flagged"
    state = MeterState.objects.get(meter=grid.calin)
    assert state.relay == "on" and state.relay_source == "daily data"


def test_a_day_without_partition_is_quarantined(fake, grid):
    fake.meters[grid.calin.serial].total_kwh = Decimal("10")
    outcome = readings.import_daily(grid.calin, dt.date(2031, 1, 5), now=T0)
    assert outcome.accepted == 0 and outcome.rejected
    kept = QuarantinedReading.objects.get(meter=grid.calin)
    assert kept.source == "calin" and "no partition" in kept.reason


def test_yesterday_is_imported_for_calin_meters_only(fake, grid):
    partitions.ensure_months([dt.date(2026, 4, 1)])
    fake.meters[grid.calin.serial].total_kwh = Decimal("42")
    stored, failed = readings.import_yesterday(now=T0)
    assert stored == 1 and failed == []
    asked = [q["MeterNo"] for c in fake.calls("/COMM_DailyData") for q in c["QueryList"]]
    assert asked == [grid.calin.serial]
    assert fake.calls("/COMM_DailyData")[0]["QueryList"][0]["Day"] == 6  # Kampala's yesterday
    fake.fail_next("html", "/COMM_DailyData")
    stored, failed = readings.import_yesterday(now=T0)
    assert stored == 0 and "gateway error" in failed[0]


def test_online_status_of_concentrators(fake, db):
    fake.concentrators.update({"CN-01": True, "CN-02": False})
    assert readings.refresh_online(now=T0) == 2
    assert dict(Concentrator.objects.values_list("number", "online")) == {
        "CN-01": True,
        "CN-02": False,
    }


def test_a_remote_read_of_the_status_code_is_decoded(fake, grid):
    fake.meters[grid.calin.serial].status_code = "1005"
    read = remote_reads.request(grid.calin, remote_reads.STATUS_ITEM, now=T0)
    assert read.status == RemoteRead.Status.PENDING
    assert remote_reads.sweep(now=T0) == 0  # first poll after the delay
    remote_reads.sweep(now=T0 + dt.timedelta(seconds=15))
    remote_reads.sweep(now=T0 + dt.timedelta(seconds=45))
    read.refresh_from_db()
    assert read.status == RemoteRead.Status.DONE and read.value == "1005"
    assert MeterState.objects.get(meter=grid.calin).status_code == "1005"


def test_a_remote_read_of_the_credit_register_notes_the_relay(fake, grid):
    fake.meters[grid.calin.serial].relay_on = False
    fake.meters[grid.calin.serial].credit_kwh = Decimal("0.4")
    read = remote_reads.request(grid.calin, "Current Credit Register", now=T0)
    for s in (15, 45):
        remote_reads.sweep(now=T0 + dt.timedelta(seconds=s))
    read.refresh_from_db()
    state = MeterState.objects.get(meter=grid.calin)
    assert read.value == "0.4,OFF" and state.relay == "off" and state.credit_kwh == Decimal("0.4")
