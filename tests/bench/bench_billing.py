"""Benchmark: a monthly billing run for 10,000 postpaid accounts, against a floor.

    python tests/bench/bench_billing.py [--accounts 10000]

Needs PostgreSQL (``BENCH_POSTGRES``, default ``postgres://postgres@127.0.0.1:5432``).
It creates its own scratch database (``mcoms_bench_billing``), migrates it, and drops
it at the end.

Set-up (not timed): one site, three postpaid tariffs (a third of the accounts each on
a flat, an inclining-block with a levy, and a time-of-use tariff), one meter per
account, and a full month of hourly rollups (744 hours per meter, about 1% of them
estimated) written with one ``INSERT … SELECT``.

Timed: the whole run as the application does it: ``run_start``, ``preview`` (every
account priced, one row per account) and ``post`` (an invoice, its lines, one ledger
posting with its lines and the audit events per account), on one connection, in
this process.

The floor, measured in the same run: one SQL aggregate of the same consumption (the
month's hourly rows per account over its meter's assignment) plus a ``COPY`` into
empty copies of the tables of as many rows as the run wrote (invoices, invoice lines,
postings, posting lines). Goal: the run within 5x the floor and under 60 s.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import os
import sys
import time
import zoneinfo
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchkit import SERVER, admin  # noqa: E402

DB_NAME = "mcoms_bench_billing"
GOAL_RATIO = 5
GOAL_SECONDS = 60
ENV = {
    "DATABASE_URL": f"{SERVER}/{DB_NAME}",
    "DJANGO_SETTINGS_MODULE": "mcoms.settings",
    "DEBUG": "0",
    "SECRET_KEY": "bench-only-secret-key-not-used-anywhere-else-0123456789",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "CELERY_BROKER_URL": "memory://",
}
ZONE = zoneinfo.ZoneInfo("Africa/Kampala")
MONTH = dt.date(2026, 10, 1)
NEXT = dt.date(2026, 11, 1)
START = dt.datetime(2026, 10, 1, tzinfo=ZONE).astimezone(dt.UTC)
END = dt.datetime(2026, 11, 1, tzinfo=ZONE).astimezone(dt.UTC)
RUN_AT = dt.datetime(2026, 11, 1, 6, 0, tzinfo=dt.UTC)
TARIFFS = {
    "flat": {
        "fixed": [{"name": "Monthly standing charge", "amount": "3360"}],
        "energy": {"type": "flat", "rate": "800"},
        "vat_percent": "18",
    },
    "blocks": {
        "fixed": [{"name": "Monthly standing charge", "amount": "3360"}],
        "energy": {
            "type": "blocks",
            "blocks": [{"up_to": "15", "rate": "250", "lifeline": True}, {"rate": "775.7"}],
        },
        "levies": [{"name": "REA levy", "per_kwh": "10"}],
        "vat_percent": "18",
    },
    "tou": {
        "fixed": [{"name": "Monthly standing charge", "amount": "5000"}],
        "energy": {
            "type": "tou",
            "rates": {"peak": "900", "off_peak": "500"},
            "default": "peak",
            "windows": [
                {"days": ["everyday"], "from": "22:00", "to": "06:00", "period": "off_peak"},
                {"days": ["sunday", "holiday"], "from": "00:00", "to": "24:00",
                 "period": "off_peak"},
            ],
        },
        "vat_percent": "18",
    },
}


def setup(accounts: int):
    """The site, tariffs, packages, customers, meters, assignments and a month of hours."""
    from django.db import connection

    from billing.models import ServicePackage, Tariff, TariffVersion
    from customers.models import Customer, CustomerStatusChange
    from mcoms.core import services as core_services
    from mcoms.core.models import Cluster, PublicHoliday, Region, Site
    from mcoms.core.roles import Role
    from metering.models import Meter, MeterAssignment

    joined = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    region = Region.objects.create(name="Central", code="central")
    cluster = Cluster.objects.create(region=region, name="Kampala", code="kampala")
    site = Site.objects.create(cluster=cluster, name="Bench", code="bench-a")
    PublicHoliday.objects.create(site=site, date=dt.date(2026, 10, 9), name="Independence Day")
    officer = core_services.user_create(
        username="officer", password="x", role=Role.BILLING_OFFICER, sites=[site]
    )
    maker = core_services.user_create(username="maker", password="x", role=Role.ADMIN)
    packages = []
    for code, terms in TARIFFS.items():
        tariff = Tariff.objects.create(code=code, name=code, currency="UGX")
        TariffVersion.objects.create(
            tariff=tariff, effective_from=dt.date(2026, 1, 1), terms=terms, reason="bench",
            status="approved", proposed_by=maker, proposed_at=joined, decided_by=officer,
            decided_at=joined,
        )
        packages.append(
            ServicePackage.objects.create(
                code=code, name=code, load_limit_w=2000, payment_mode="postpaid", tariff=tariff
            )
        )
    customers = Customer.objects.bulk_create(
        [
            Customer(
                account_number=f"B{n:07d}", first_name="Bench", last_name=f"{n}",
                phone=f"+2567{n:08d}", site=site, package=packages[n % 3], status="active",
                status_changed_at=joined, created_at=joined,
            )
            for n in range(accounts)
        ],
        batch_size=2000,
    )
    CustomerStatusChange.objects.bulk_create(
        [
            CustomerStatusChange(
                customer=c, from_status="applicant", to_status="active", at=joined,
                by_label="bench",
            )
            for c in customers
        ],
        batch_size=2000,
    )
    meters = Meter.objects.bulk_create(
        [
            Meter(
                serial=f"9{n:011d}", model="DDSU666", phases=1, site=site, status="commissioned",
                status_changed_at=joined, created_at=joined,
            )
            for n in range(accounts)
        ],
        batch_size=2000,
    )
    MeterAssignment.objects.bulk_create(
        [
            MeterAssignment(meter=m, customer=c, start=joined)
            for m, c in zip(meters, customers, strict=True)
        ],
        batch_size=2000,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO metering_hourlyusage (meter_id, hour, kwh, estimated_kwh, intervals)
            SELECT m.id, h, u.kwh, CASE WHEN random() < 0.01 THEN u.kwh ELSE 0 END, 4
            FROM metering_meter m
            CROSS JOIN generate_series(%s::timestamptz, %s::timestamptz, '1 hour') AS h
            CROSS JOIN LATERAL (SELECT round((random() * 0.4)::numeric, 3) + m.id * 0 AS kwh) u
            WHERE m.site_id = %s
            """,
            [START, END - dt.timedelta(hours=1), site.pk],
        )
        cursor.execute("ANALYZE")
    return site, officer


def reset():
    """A kept database as set up: the previous run's rows and the floor's copies gone."""
    from django.db import connection

    from mcoms.core.models import Site, User

    with connection.cursor() as cursor:
        cursor.execute(
            "DROP TABLE IF EXISTS floor_billing_invoice, floor_billing_invoiceline, "
            "floor_billing_posting, floor_billing_postingline"
        )
        cursor.execute(
            "TRUNCATE billing_invoiceline, billing_billingrunitem, billing_invoice, "
            "billing_postingline, billing_posting, billing_billingrun, billing_ledgeraccount, "
            "core_auditevent CASCADE"
        )
        cursor.execute("VACUUM ANALYZE metering_hourlyusage")
    return Site.objects.get(code="bench-a"), User.objects.get(username="officer")


def timed_run(site, officer):
    from billing import runs
    from mcoms.core import audit

    began = time.perf_counter()
    with audit.acting_as(officer, channel="task"):
        run = runs.run_start(site=site, month=MONTH, by=officer, now=RUN_AT, queue=False)
        run = runs.preview(run.pk)
        previewed = time.perf_counter()
        run = runs.post(run.pk, by=officer, now=RUN_AT)
    ended = time.perf_counter()
    return run, previewed - began, ended - previewed


def floor(site) -> tuple[float, float, int]:
    """One SQL aggregate of the same consumption, and COPY of as many rows as written."""
    from django.db import connection

    tables = ["billing_invoice", "billing_invoiceline", "billing_posting", "billing_postingline"]
    with connection.cursor() as cursor:
        began = time.perf_counter()
        cursor.execute(
            """
            SELECT a.customer_id, SUM(h.kwh), SUM(h.estimated_kwh), COUNT(*)
            FROM metering_hourlyusage h
            JOIN metering_meterassignment a ON a.meter_id = h.meter_id
            JOIN customers_customer c ON c.id = a.customer_id
            WHERE c.site_id = %s AND h.hour >= %s AND h.hour < %s
              AND h.hour >= a.start AND (a."end" IS NULL OR h.hour < a."end")
            GROUP BY a.customer_id
            """,
            [site.pk, START, END],
        )
        cursor.fetchall()
        aggregate_s = time.perf_counter() - began
        dumps = {}
        for table in tables:
            buffer = io.BytesIO()
            with cursor.cursor.copy(f"COPY {table} TO STDOUT") as copy:
                for data in copy:
                    buffer.write(data)
            dumps[table] = buffer.getvalue()
            cursor.execute(f"CREATE TABLE floor_{table} (LIKE {table} INCLUDING ALL)")
    rows = sum(d.count(b"\n") for d in dumps.values())
    connection.commit() if not connection.get_autocommit() else None
    began = time.perf_counter()
    with connection.cursor() as cursor:
        for table, data in dumps.items():
            with cursor.cursor.copy(f"COPY floor_{table} FROM STDIN") as copy:
                copy.write(data)
    copy_s = time.perf_counter() - began
    return aggregate_s, copy_s, rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--profile", action="store_true", help="print where the run spends")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument(
        "--reuse", action="store_true", help="time again on a kept database (skips the set-up)"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    if not args.reuse:
        admin(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        admin(f"CREATE DATABASE {DB_NAME}")
    os.environ.update(ENV)
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        from billing.models import Invoice, InvoiceLine, Posting, PostingLine

        began = time.perf_counter()
        if args.reuse:
            site, officer = reset()
        else:
            call_command("migrate", verbosity=0)
            site, officer = setup(args.accounts)
        print(
            f"PostgreSQL {connection.pg_version // 10000}, database {DB_NAME}: "
            f"{args.accounts:,} postpaid accounts (a third each flat, blocks, time of use), "
            f"{args.accounts * 744:,} hourly rows, set up in {time.perf_counter() - began:.1f} s"
        )
        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            run, preview_s, post_s = profiler.runcall(timed_run, site, officer)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
        else:
            run, preview_s, post_s = timed_run(site, officer)
        run_s = preview_s + post_s
        written = {
            "invoices": Invoice.objects.count(),
            "invoice lines": InvoiceLine.objects.count(),
            "postings": Posting.objects.count(),
            "posting lines": PostingLine.objects.count(),
        }
        assert run.status == "posted" and written["invoices"] == run.total - run.held, run
        aggregate_s, copy_s, copied = floor(site)
        floor_s = aggregate_s + copy_s
        ratio = run_s / floor_s
        print(
            f"run: {run_s:.2f} s (preview {preview_s:.2f} s, post {post_s:.2f} s); "
            f"{run.total:,} accounts, {run.held} held; wrote "
            + ", ".join(f"{n:,} {k}" for k, n in written.items())
        )
        print(
            f"floor: {floor_s:.2f} s (aggregate {aggregate_s:.2f} s + COPY of "
            f"{copied:,} rows {copy_s:.2f} s)"
        )
        verdict = "meets" if ratio <= GOAL_RATIO and run_s < GOAL_SECONDS else "MISSES"
        print(
            f"ratio run / floor: {ratio:.1f}x ({verdict} the goal: <= {GOAL_RATIO}x and "
            f"< {GOAL_SECONDS} s)"
        )
    finally:
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if not args.keep:
            admin(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    print(f"\n(whole run {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
