"""Retention: old months of raw readings go to verified gzip CSV files, then leave the database.

Readings of two sites (and a meter in stock, without a site) in January and February
2024 and in March 2026; "now" is mid-April 2026 and readings are kept 24 months, so
the two 2024 months are due and March 2026 is not.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import json
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection

from mcoms.core.models import AuditEvent
from metering import partitions, retention, rollups
from metering.models import DailyUsage, HourlyUsage, Reading, ReadingPartition
from tests import factories

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 4, 15, 12, 0, tzinfo=dt.UTC)
JAN, FEB, MAR26 = dt.date(2024, 1, 1), dt.date(2024, 2, 1), dt.date(2026, 3, 1)
ALL = retention.COLUMNS


def _readings(meter, month: dt.date, n: int, *, start_kwh: str) -> list[Reading]:
    first = dt.datetime.combine(month, dt.time(), tzinfo=dt.UTC) + dt.timedelta(hours=3)
    out = []
    for i in range(n):
        flagged = i == 3
        out.append(
            Reading(
                meter=meter,
                ts=first + dt.timedelta(minutes=15 * i),
                energy_kwh=Decimal(start_kwh) + Decimal("0.125") * i,
                export_kwh=None if i % 2 else Decimal("0.000"),
                voltage_l1=231.4 + i / 7,
                voltage_l2=None,
                current_l1=1.0 / 3,
                power_kw=0.1 * i,
                power_factor=0.97,
                frequency_hz=50.02,
                kind=Reading.Kind.ESTIMATED if i == 5 else Reading.Kind.REAL,
                quality=Reading.Quality.FLAGGED if flagged else Reading.Quality.VALID,
                flags='voltage 310 V > 300 V; "jump", big' if flagged else "",
                gateway_id=None if i == 6 else 77,
                received_at=first + dt.timedelta(minutes=15 * i, seconds=2, microseconds=513),
            )
        )
    return out


@pytest.fixture
def history(org, settings, tmp_path):
    settings.READINGS_ARCHIVE_DIR = tmp_path / "archive"
    settings.READINGS_RETENTION_MONTHS = 24
    partitions.ensure_months([JAN, FEB, MAR26])
    a = factories.assigned_meter(org.block_a, 10)
    b = factories.assigned_meter(org.block_b, 11)
    stock = factories.meter()
    rows = []
    for month in (JAN, FEB, MAR26):
        rows += _readings(a, month, 12, start_kwh="100.5")
        rows += _readings(b, month, 9, start_kwh="2000")
    rows += _readings(stock, JAN, 4, start_kwh="7")
    Reading.objects.bulk_create(rows)
    # Rollups of the first hours of January (what pages and bills go on reading).
    rollups.refresh(
        meter_ids=[a.pk, b.pk],
        start=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        end=dt.datetime(2024, 1, 1, 4, tzinfo=dt.UTC),
    )
    return {"a": a, "b": b, "stock": stock, "root": tmp_path / "archive"}


def month_rows(month: dt.date) -> list[tuple]:
    start, end = retention._month_range(month)
    return list(
        Reading.objects.filter(ts__gte=start, ts__lt=end)
        .order_by("meter_id", "ts")
        .values_list(*ALL)
    )


def partition_exists(month: dt.date) -> bool:
    if connection.vendor != "postgresql":
        return ReadingPartition.objects.filter(month=month).exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [f"metering_reading_p{month:%Y%m}"])
        return cursor.fetchone()[0] is not None


def rollup_state():
    return (
        list(HourlyUsage.objects.order_by("meter", "hour").values_list("meter", "hour", "kwh")),
        list(DailyUsage.objects.order_by("meter", "day").values_list("meter", "day", "kwh")),
    )


def test_old_months_go_to_verified_files_and_their_partitions_are_dropped(history):
    root = history["root"]
    jan_before = month_rows(JAN)
    mar_before = month_rows(MAR26)
    rollups_before = rollup_state()
    assert rollups_before[0], "the fixture has rollups to keep"

    assert retention.months_due(now=NOW) == [JAN, FEB]
    done = retention.archive_due(now=NOW)

    assert [r.month for r in done] == [JAN, FEB]
    assert done[0].files == {
        "kla/2024-01.csv.gz": 12,
        "klb/2024-01.csv.gz": 9,
        "_nosite/2024-01.csv.gz": 4,
    }
    assert done[1].files == {"kla/2024-02.csv.gz": 12, "klb/2024-02.csv.gz": 9}
    # The raw rows and the partitions are gone; the recent month is as it was.
    assert month_rows(JAN) == [] and month_rows(FEB) == []
    assert not partition_exists(JAN) and not partition_exists(FEB)
    assert set(partitions.available_months()) == {MAR26}
    assert month_rows(MAR26) == mar_before
    # Rollups are kept exactly.
    assert rollup_state() == rollups_before

    # The files hold exactly the rows, and the manifest their checksums.
    manifest = json.loads((root / "manifest.json").read_text())
    with gzip.open(root / "kla/2024-01.csv.gz", "rt", newline="") as f:
        lines = list(csv.reader(f))
    assert lines[0] == ALL and len(lines) == 13
    assert lines[4][ALL.index("flags")] == 'voltage 310 V > 300 V; "jump", big'
    for relative, info in manifest["files"].items():
        assert hashlib.sha256((root / relative).read_bytes()).hexdigest() == info["sha256"]
    assert manifest["months"]["2024-01"]["rows"] == 25
    assert sum(done[0].files.values()) == len(jan_before)

    # Audited: who dropped which month, with what.
    events = AuditEvent.objects.filter(action=AuditEvent.Action.DELETE, note__contains="archived")
    assert events.count() == 2
    assert "2024-01" in events.order_by("at", "pk").first().note
    # Nothing is due any more.
    assert retention.months_due(now=NOW) == []


def test_an_archived_month_loads_back_exactly_and_is_held(history):
    before = month_rows(JAN)
    retention.archive_month(JAN, now=NOW)
    assert month_rows(JAN) == []

    loaded = retention.load_month(JAN, now=NOW)

    assert loaded == len(before) == 25
    assert month_rows(JAN) == before  # every column, to the microsecond and the last digit
    assert partition_exists(JAN)
    assert JAN in partitions.available_months()
    # Held: the daily run leaves it alone for a while, then archives it again.
    assert retention.months_due(now=NOW) == [FEB]
    assert JAN in retention.months_due(now=NOW + dt.timedelta(days=31))
    assert AuditEvent.objects.filter(note__contains="loaded back").count() == 1
    # Loading into a month that holds readings is refused.
    with pytest.raises(retention.ArchiveError, match="already holds readings"):
        retention.load_month(JAN, now=NOW)


def test_archive_files_are_deterministic(history, tmp_path):
    retention.archive_month(JAN, now=NOW)
    first = (history["root"] / "kla/2024-01.csv.gz").read_bytes()
    retention.load_month(JAN, now=NOW)
    retention.archive_month(JAN, root=tmp_path / "again", now=NOW + dt.timedelta(days=3))
    assert (tmp_path / "again/kla/2024-01.csv.gz").read_bytes() == first


def test_a_file_that_cannot_be_written_keeps_the_month(history):
    root = history["root"]
    root.mkdir(parents=True)
    (root / "klb").write_text("a file where the site's folder should be")
    before = month_rows(JAN)
    with pytest.raises(OSError):
        retention.archive_month(JAN, now=NOW)
    assert month_rows(JAN) == before
    assert partition_exists(JAN) and JAN in partitions.available_months()
    assert not AuditEvent.objects.filter(note__contains="archived").exists()


def test_a_damaged_archive_is_not_loaded(history):
    retention.archive_month(JAN, now=NOW)
    path = history["root"] / "klb/2024-01.csv.gz"
    data = bytearray(path.read_bytes())
    data[-12] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(retention.ArchiveError, match="checksum"):
        retention.load_month(JAN, now=NOW)
    assert month_rows(JAN) == [] and JAN not in partitions.available_months()


def test_retention_zero_keeps_everything(history, settings):
    settings.READINGS_RETENTION_MONTHS = 0
    assert retention.months_due(now=NOW) == []


def test_the_daily_task_and_the_command(history, settings):
    from mcoms.ops import schedules, tasks

    assert schedules.SCHEDULES[0]["task"] == "mcoms.ops.tasks.archive_old_readings"
    # Real time is later than NOW: 2024's months are due, March 2026 is not (24 months).
    assert tasks.archive_old_readings.delay().get() == ["2024-01", "2024-02"]
    event = AuditEvent.objects.filter(note__contains="archived").first()
    assert event.actor_label == "readings retention"

    call_command("readings_archive", "load", "2024-02")
    assert len(month_rows(FEB)) == 21
    out = []
    call_command("readings_archive", "list", stdout=type("W", (), {"write": out.append})())
    assert any("Archived 2024-02: 21 rows in 2 files, held until" in line for line in out)


def test_a_reading_of_an_archived_month_arriving_later_is_quarantined(bus, settings, tmp_path):
    from metering import ingest
    from metering.models import QuarantinedReading
    from tests.metering.edge_fixtures import NOW as EDGE_NOW
    from tests.metering.edge_fixtures import reading

    settings.READINGS_ARCHIVE_DIR = tmp_path
    march = dt.date(2026, 3, 1)
    retention.archive_month(march, now=EDGE_NOW)
    outcome = ingest.ingest(
        gateway=bus.gateway, readings=[reading(ts="2026-03-31T10:00:00Z")], now=EDGE_NOW
    )
    assert outcome.accepted == 0
    assert outcome.rejected == [
        {"index": 0, "reason": "no partition for 2026-03: kept in quarantine"}
    ]
    assert QuarantinedReading.objects.filter(reason__contains="2026-03").count() == 1
