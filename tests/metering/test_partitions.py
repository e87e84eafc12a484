"""Monthly partitions of the readings table: what PostgreSQL holds, and the task keeping it.

The catalogue tests run on PostgreSQL only (marked ``postgres``); the register and
the task are checked on every database.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import DatabaseError, connection, transaction

from mcoms.celery import app
from metering import partition_tasks, partitions
from metering.models import QuarantinedReading, Reading, ReadingPartition
from tests.metering.edge_fixtures import batch, reading

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 15, 12, 0, tzinfo=dt.UTC)
NOVEMBER_AHEAD = [
    dt.date(2026, 10, 1),
    dt.date(2026, 11, 1),
    dt.date(2026, 12, 1),
    dt.date(2027, 1, 1),
    dt.date(2027, 2, 1),
]


def catalogue_partitions() -> dict[str, str]:
    """{partition name: its bound expression} from pg_inherits."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT child.relname, pg_get_expr(child.relpartbound, child.oid)
            FROM pg_inherits
            JOIN pg_class parent ON parent.oid = pg_inherits.inhparent
            JOIN pg_class child ON child.oid = pg_inherits.inhrelid
            WHERE parent.relname = %s
            """,
            [partitions.TABLE],
        )
        return dict(cursor.fetchall())


@pytest.mark.postgres
def test_the_readings_table_is_range_partitioned_by_month_on_ts():
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT pt.partstrat, a.attname, pt.partdefid
            FROM pg_partitioned_table pt
            JOIN pg_class c ON c.oid = pt.partrelid
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = pt.partattrs[0]
            WHERE c.relname = %s
            """,
            [partitions.TABLE],
        )
        rows = cursor.fetchall()
    # Range strategy on ts, and no default partition (partdefid 0).
    assert rows == [("r", "ts", 0)]


@pytest.mark.postgres
def test_ensure_ahead_creates_monthly_partitions_ahead():
    created = partitions.ensure_ahead(now=NOW)
    assert created == NOVEMBER_AHEAD
    found = catalogue_partitions()
    assert sorted(found) == [f"metering_reading_p{m:%Y%m}" for m in NOVEMBER_AHEAD]
    assert found["metering_reading_p202612"] == (
        "FOR VALUES FROM ('2026-12-01 00:00:00+00') TO ('2027-01-01 00:00:00+00')"
    )
    assert not [bound for bound in found.values() if "DEFAULT" in bound]
    # The register agrees with the catalogue; running again creates nothing.
    assert list(ReadingPartition.objects.values_list("month", flat=True)) == NOVEMBER_AHEAD
    assert partitions.ensure_ahead(now=NOW) == []
    assert len(catalogue_partitions()) == len(NOVEMBER_AHEAD)


@pytest.mark.postgres
def test_rows_land_in_their_months_partition(bus):
    Reading.objects.create(
        meter=bus.single,
        ts=dt.datetime(2026, 4, 30, 23, 59, tzinfo=dt.UTC),
        energy_kwh=1,
        received_at=NOW,
    )
    Reading.objects.create(
        meter=bus.single,
        ts=dt.datetime(2026, 5, 1, 0, 0, tzinfo=dt.UTC),
        energy_kwh=2,
        received_at=NOW,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text, energy_kwh FROM metering_reading ORDER BY ts"
        )
        rows = [(table, int(energy)) for table, energy in cursor.fetchall()]
    assert rows == [("metering_reading_p202604", 1), ("metering_reading_p202605", 2)]


@pytest.mark.postgres
def test_a_reading_whose_month_has_no_partition_is_quarantined(client, bus):
    # Without a default partition the database itself refuses the row...
    with pytest.raises(DatabaseError, match="no partition"), transaction.atomic():
        Reading.objects.create(
            meter=bus.single,
            ts=dt.datetime(2026, 8, 1, tzinfo=dt.UTC),
            energy_kwh=1,
            received_at=NOW,
        )
    # ...and the ingest path keeps it in quarantine instead of failing the batch.
    body = batch(reading(ts="2026-04-04T15:15:00Z"), reading(ts="2026-08-01T00:00:00Z"))
    response = client.post(
        "/api/v1/edge/readings", json.dumps(body), content_type="application/json", **bus.headers()
    )
    answer = response.json()
    assert answer["accepted"] == 1
    assert answer["rejected"] == [
        {"index": 1, "reason": "no partition for 2026-08: kept in quarantine"}
    ]
    kept = QuarantinedReading.objects.get()
    assert (kept.meter, kept.ts) == (bus.single, dt.datetime(2026, 8, 1, tzinfo=dt.UTC))
    assert "metering_reading_p202608" not in catalogue_partitions()


def test_the_register_decides_quarantine_on_every_database(client, bus):
    body = batch(reading(ts="2026-06-01T00:00:00Z"))
    post = {"content_type": "application/json", **bus.headers()}
    answer = client.post("/api/v1/edge/readings", json.dumps(body), **post).json()
    assert answer["accepted"] == 0 and "no partition for 2026-06" in answer["rejected"][0]["reason"]
    # Once the month exists, the same reading (a new batch) is stored.
    partitions.ensure_months([dt.date(2026, 6, 1)])
    answer = client.post(
        "/api/v1/edge/readings", json.dumps(batch(reading(ts="2026-06-01T00:00:00Z"))), **post
    ).json()
    assert answer["accepted"] == 1 and answer["rejected"] == []


def test_the_scheduled_task_creates_the_coming_months():
    assert partition_tasks.SCHEDULE["task"] in app.tasks
    assert partition_tasks.SCHEDULE["every"] == dt.timedelta(days=1)
    result = partition_tasks.ensure_reading_partitions.delay(now=NOW.isoformat()).get()
    assert result == ["2026-10", "2026-11", "2026-12", "2027-01", "2027-02"]
    # The next day nothing is missing; a month later one more month is made.
    assert (
        partition_tasks.ensure_reading_partitions.apply(
            kwargs={"now": (NOW + dt.timedelta(days=1)).isoformat()}
        ).get()
        == []
    )
    later = (NOW + dt.timedelta(days=20)).isoformat()
    assert partition_tasks.ensure_reading_partitions.apply(kwargs={"now": later}).get() == [
        "2027-03"
    ]
    if connection.vendor == "postgresql":
        assert "metering_reading_p202703" in catalogue_partitions()
