"""Benchmark: the hourly usage check over 10,000 meters x 30 days of hourly usage.

    python tests/bench/bench_anomalies.py [--meters 10000] [--days 30]

Needs PostgreSQL (``BENCH_POSTGRES``, default ``postgres://postgres@127.0.0.1:5432``).
It creates its own scratch database (``mcoms_bench_anomalies``), migrates it, fills
``metering_hourlyusage`` with ``meters`` x ``days`` x 24 rows (a household profile with
noise, made by one ``INSERT ... SELECT`` on the server, and a few meters given a spike in
the last hour), and drops the database at the end. Every site reads the whole 30 days
(``history_days = 30``). Prints:

1. the reference: one SQL aggregate (mean and standard deviation per meter, the plain
   chart's arithmetic) over the same rows the check reads;
2. ``metering.anomaly_tasks.check_usage``: every detector on every meter's last hour,
   alerts opened (first run) and seen again (second run); its time against the goal
   (< 30 s) and the ratio to the reference;
3. for scale, ``metering.power_quality.check`` over the same hour with four readings
   per meter (one meter in 50 on a weak supply).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchkit import SERVER, admin  # noqa: E402

DB_NAME = "mcoms_bench_anomalies"
METERS_PER_SITE = 200
GOAL_S = 30.0
SPIKED_EVERY = 500  # one meter in this many gets a spike in the checked hour
ENV = {
    "DATABASE_URL": f"{SERVER}/{DB_NAME}",
    "DJANGO_SETTINGS_MODULE": "mcoms.settings",
    "DEBUG": "0",
    "SECRET_KEY": "bench-only-secret-key-not-used-anywhere-else-0123456789",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "CELERY_BROKER_URL": "memory://",
}
# The checked hour is 16:00-17:00 UTC (19:00 in Kampala, the evening peak).
NOW = dt.datetime(2026, 3, 31, 17, 5, tzinfo=dt.UTC)
TARGET = dt.datetime(2026, 3, 31, 16, 0, tzinfo=dt.UTC)


def build(meters: int, days: int) -> tuple[int, float]:
    """Sites, commissioned meters and their hourly usage; returns (rows, seconds)."""
    from django.db import connection

    from mcoms.core.models import Cluster, Region, Site
    from metering.lifecycle import Status
    from metering.models import Meter, SiteWatchSettings

    began = time.perf_counter()
    region = Region.objects.create(name="Bench", code="bench")
    cluster = Cluster.objects.create(region=region, name="Bench", code="bench")
    n_sites = -(-meters // METERS_PER_SITE)
    sites = Site.objects.bulk_create(
        [Site(cluster=cluster, name=f"Bench {n}", code=f"bench{n}") for n in range(n_sites)]
    )
    SiteWatchSettings.objects.bulk_create(
        [SiteWatchSettings(site=s, history_days=days) for s in sites]
    )
    installed = TARGET - dt.timedelta(days=days + 5)
    Meter.objects.bulk_create(
        [
            Meter(
                serial=f"9{n:011d}",
                model=Meter.Model.DDSU666,
                phases=1,
                site=sites[n // METERS_PER_SITE],
                modbus_address=10 + n % METERS_PER_SITE,
                status=Status.COMMISSIONED,
                status_changed_at=installed,
                created_at=installed,
            )
            for n in range(meters)
        ],
        batch_size=5000,
    )
    start = TARGET - dt.timedelta(days=days) + dt.timedelta(hours=1)
    with connection.cursor() as cursor:
        # A household: little at night, an evening peak, a little more at weekends; noise.
        cursor.execute(
            """
            INSERT INTO metering_hourlyusage (meter_id, hour, kwh, estimated_kwh, intervals)
            SELECT m.id, h,
                   round((CASE
                       WHEN extract(hour FROM h + interval '3 hours') < 6 THEN 0.10
                       WHEN extract(hour FROM h + interval '3 hours') BETWEEN 18 AND 21 THEN 1.20
                       ELSE 0.30 END
                     + CASE WHEN extract(isodow FROM h + interval '3 hours') >= 6
                            THEN 0.10 ELSE 0 END
                     + (random() - 0.5) * 0.12
                     + CASE WHEN h = %s AND m.id %% %s = 0 THEN 4.0 ELSE 0 END)::numeric, 3),
                   0, 4
            FROM metering_meter m
            CROSS JOIN generate_series(%s::timestamptz, %s::timestamptz, interval '1 hour') h
            """,
            [TARGET, SPIKED_EVERY, start, TARGET],
        )
        rows = cursor.rowcount
    connection.commit() if not connection.get_autocommit() else None
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE metering_hourlyusage")
        cursor.execute("ANALYZE")
    return rows, time.perf_counter() - began


def readings(meters: int) -> tuple[int, float]:
    """Four 15-minute readings per meter in the checked hour, one meter in 50 with a weak
    supply (195 V); returns (rows, seconds)."""
    from django.db import connection

    from metering import partitions

    began = time.perf_counter()
    partitions.ensure_months([TARGET.date().replace(day=1)])
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO metering_reading (meter_id, ts, energy_kwh, voltage_l1, current_l1,
                power_kw, power_factor, frequency_hz, kind, quality, flags, received_at)
            SELECT m.id, t, 1000 + n, CASE WHEN m.id %% 50 = 0 THEN 195.0 ELSE 231.0 END,
                   2.0, 0.45, 0.97, 50.0, 'real', 'valid', '', t
            FROM metering_meter m
            CROSS JOIN generate_series(1, 4) n
            CROSS JOIN LATERAL (SELECT %s::timestamptz + n * interval '15 minutes' AS t) s
            """,
            [TARGET],
        )
        rows = cursor.rowcount
        cursor.execute("ANALYZE metering_reading")
    return rows, time.perf_counter() - began


def reference(days: int) -> float:
    """One SQL aggregate over the rows the check reads: mean and sigma per meter."""
    from django.db import connection

    start = TARGET - dt.timedelta(days=days)
    began = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT meter_id, avg(kwh), stddev_pop(kwh), count(*) FROM metering_hourlyusage "
            "WHERE hour >= %s AND hour < %s AND estimated_kwh = 0 GROUP BY meter_id",
            [start, TARGET + dt.timedelta(hours=1)],
        )
        out = cursor.fetchall()
    took = time.perf_counter() - began
    print(f"   ({len(out):,} meters, {sum(r[3] for r in out):,} rows aggregated)")
    return took


def main() -> int:
    """Set up, measure, print, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meters", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()

    started = time.perf_counter()
    admin(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    admin(f"CREATE DATABASE {DB_NAME}")
    os.environ.update(ENV)
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        from mcoms.core import audit
        from metering import anomaly_tasks
        from metering.models import Alert

        call_command("migrate", verbosity=0)
        rows, setup_s = build(args.meters, args.days)
        print(
            f"PostgreSQL {connection.pg_version // 10000}, database {DB_NAME}: "
            f"{args.meters:,} meters x {args.days} days = {rows:,} hourly rows "
            f"(set up in {setup_s:.1f} s)"
        )

        print("\n1. reference: one SQL aggregate (avg, stddev_pop per meter) over the same rows")
        ref_s = min(reference(args.days) for _ in range(2))
        print(f"   {ref_s:.2f} s (best of two)")

        print("\n2. metering.anomaly_tasks.check_usage over every meter's last hour")
        figures = []
        for label in ("first run (alerts opened)", "second run (alerts seen again)"):
            with audit.acting_as(label="bench"):
                result = anomaly_tasks.check_usage(now=NOW)
            figures.append(result.seconds)
            print(
                f"   {label}: {result.seconds:.1f} s; {result.with_data:,} meters with data, "
                f"findings {dict(result.findings)}, opened {len(result.opened)}"
            )
        best = min(figures)
        spiked = Alert.objects.filter(
            kind="usage_high",
            meter_id__in=[m for m in range(SPIKED_EVERY, args.meters + SPIKED_EVERY, SPIKED_EVERY)],
        ).count()
        print(f"   spiked meters alerted: {spiked} of {args.meters // SPIKED_EVERY}")
        verdict = "within" if best < GOAL_S else "ABOVE"
        print(
            f"\n   check: {best:.1f} s ({verdict} the goal of < {GOAL_S:.0f} s); "
            f"ratio check / SQL aggregate: {best / ref_s:.1f}x"
        )

        from metering import power_quality

        n, took = readings(args.meters)
        print(
            f"\n3. metering.power_quality.check over the same hour ({n:,} readings, "
            f"stored in {took:.1f} s)"
        )
        with audit.acting_as(label="bench"):
            pq = power_quality.check(now=NOW)
        print(
            f"   {pq.seconds:.1f} s; {pq.with_readings:,} meters with readings, findings "
            f"{dict(pq.findings)}, opened {len(pq.opened)}"
        )
    finally:
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        admin(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    print(f"\n(whole run {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
