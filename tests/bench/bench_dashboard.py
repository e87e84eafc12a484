"""Benchmark: the site dashboard with 1,000 meters and a year of data on PostgreSQL.

    python tests/bench/bench_dashboard.py [--meters 1000] [--requests 50]

Needs PostgreSQL (``BENCH_POSTGRES``, default ``postgres://postgres@127.0.0.1:5432``).
It creates its own scratch database (``mcoms_bench_dashboard``), migrates it, and drops
it at the end. The data, written in bulk but shaped as the services write it:

- one site of 1,000 active customers (with their status history), each served by one
  commissioned meter: 238 CHINT meters fill the site's Modbus address plan on 8 gateways'
  buses (bus slots, comms: 95 % reported within the last quarter hour, the rest days
  ago), the rest are Calin smart meters (no bus); 20 customers on a second site;
- 365 days of ``DailyUsage`` per meter (365,000 rows, by ``COPY``), the site's
  ``SiteDailyUsage`` and ``SiteHourlyUsage`` (8,760 hours) as the rollups keep them;
- twelve monthly bills per customer (12,000 invoices, each an ``invoice`` posting with a
  receivable debit and a revenue credit) and the payments against them (a posting, a
  ``Payment`` and its ``Allocation``): most customers pay each bill in full within three
  weeks, one in ten pays half, one in twenty never pays — so arrears fill every bucket;
- open alerts, an open outage incident and open field tasks; a second site with a
  little data so scoping filters something;
- the site's plant for the year (:func:`plant`): PV array, battery, inverter, generator and
  a main meter (its 365 days and 8,760 hours of usage, left out of energy delivered),
  OpenEMS production counter and state of charge every five minutes (2 × 105,120
  samples), 365 daily and 12 monthly energy balances, weekly generator logs, an open
  plant alert; the Calin meters' concentrators as steering records them.

gunicorn (gthread, 2 workers × 2 threads) serves the platform; a signed-in site manager
asks for the site dashboard ``--requests`` times one after another for each period (this
year: the heaviest; the last 30 days: the default a manager opens), for its customer table
(which the page fetches through htmx as soon as it has loaded), for a page of that table
sorted by balance, and for page and table back to back (for information: what a manager
waits for in all); as reference the trivial ``/healthz`` page the same number of times in
the same run. Printed: p50/p95/max
of each, the ratio of the dashboard's p95 to ``/healthz``'s and to the 300 ms goal, and the
machine's load average (on a shared machine the figures measure the machine as much as the
page). Then the page in the benchmark's own process: wall and CPU time per request. The
run fails (exit 1) when the goal is not met.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import os
import random
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchkit import SERVER, Gunicorn, bench_env, create_scratch, drop_scratch  # noqa: E402

DB_NAME = "mcoms_bench_dashboard"
GOAL_MS = 300
GATEWAYS = 8
ENV = bench_env(f"{SERVER}/{DB_NAME}")


def copy_rows(table: str, columns: str, rows) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        raw = cursor.cursor if hasattr(cursor, "cursor") else cursor
        with raw.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def build(meters: int, now: dt.datetime, rng: random.Random):
    """The data (see the module's docstring); returns the site and the manager."""
    from billing import ledger
    from billing.models import Invoice, LedgerAccount, Posting, PostingLine
    from billing.payments.models import Allocation, Payment
    from customers.models import Customer, CustomerStatusChange
    from fieldops.models import FieldTask
    from mcoms.core import services as core_services
    from mcoms.core.audit import acting_as
    from mcoms.core.models import Cluster, Region, Site
    from mcoms.core.roles import Role
    from metering.lifecycle import Status
    from metering.models import (
        Alert,
        BusSlot,
        Gateway,
        Incident,
        Meter,
        MeterAssignment,
        MeterComms,
        SiteDailyUsage,
        SiteHourlyUsage,
    )

    region = Region.objects.create(name="Bench", code="bench")
    cluster = Cluster.objects.create(region=region, name="Bench", code="bench")
    site = Site.objects.create(cluster=cluster, name="Bench site", code="bsa")
    other = Site.objects.create(cluster=cluster, name="Other site", code="bsb")
    zone = site.zone
    today = now.astimezone(zone).date()
    first_day = today - dt.timedelta(days=364)
    since = now - dt.timedelta(days=400)
    with acting_as(label="bench setup", channel="system"):
        manager = core_services.user_create(
            username="bench-manager",
            password="bench-only-pass",
            role=Role.SITE_MANAGER,
            sites=[site],
        )

    customers = Customer.objects.bulk_create(
        [
            Customer(
                account_number=f"BSA-{n:05d}",
                first_name=f"Name{n}",
                last_name=f"Bench{n % 97}",
                phone=f"+25677{2000000 + n:07d}",
                site=other if n >= meters else site,
                status=Customer.Status.ACTIVE,
                status_changed_at=since + dt.timedelta(days=1),
                created_at=since,
            )
            for n in range(meters + 20)
        ],
        batch_size=2000,
    )
    CustomerStatusChange.objects.bulk_create(
        [
            CustomerStatusChange(
                customer=c,
                from_status=f,
                to_status=t,
                at=since + dt.timedelta(days=d),
                by_label="bench",
            )
            for c in customers
            for f, t, d in (("", "applicant", 0), ("applicant", "active", 1))
        ],
        batch_size=5000,
    )
    gateways = Gateway.objects.bulk_create(
        [
            Gateway(site=site, name=f"bsa-bus-{n}", created_at=since, last_heartbeat_at=now)
            for n in range(GATEWAYS)
        ]
    )
    ours = [c for c in customers if c.site_id == site.pk]
    placed = {c.pk: n for n, c in enumerate(ours)}

    def wired(c) -> tuple[str, int, int | None]:
        """CHINT meters fill the site's address plan (10-99 single-, 100-247 three-phase);
        the rest are Calin smart meters, read through Calin's cloud, on no bus."""
        n = placed.get(c.pk)
        if n is None or n >= 238:
            return "CALIN", 1, None
        return ("DDSU666", 1, 10 + n) if n < 90 else ("DTSU666", 3, 10 + n)

    mine = Meter.objects.bulk_create(
        [
            Meter(
                serial=f"8{n:011d}",
                model=wired(c)[0],
                phases=wired(c)[1],
                site_id=c.site_id,
                gateway=gateways[n % GATEWAYS] if wired(c)[2] else None,
                modbus_address=wired(c)[2],
                status=Status.COMMISSIONED,
                status_changed_at=since,
                created_at=since,
            )
            for n, c in enumerate(customers)
        ],
        batch_size=2000,
    )
    MeterAssignment.objects.bulk_create(
        [
            MeterAssignment(meter=m, customer=c, start=since)
            for m, c in zip(mine, customers, strict=True)
        ],
        batch_size=2000,
    )
    on_site = [m for m in mine if m.site_id == site.pk]
    on_bus = [m for m in on_site if m.gateway_id]
    BusSlot.objects.bulk_create(
        [
            BusSlot(gateway=m.gateway, address=m.modbus_address, meter=m, start=since)
            for m in on_bus
        ],
        batch_size=2000,
    )
    MeterComms.objects.bulk_create(
        [
            MeterComms(
                meter=m,
                last_reading_ts=now - dt.timedelta(minutes=5 if n % 20 else 60 * 24 * 3),
                ok=True,
                last_ok_at=now,
                updated_at=now,
            )
            for n, m in enumerate(on_bus)
        ],
        batch_size=2000,
    )

    # Usage: a household's day with an evening peak, more at weekends; 2 % estimated.
    shape = (
        [0.2] * 6
        + [0.6, 0.8, 0.5, 0.4, 0.4, 0.5, 0.6, 0.5, 0.4, 0.5, 0.7, 1.2, 2.0, 2.2, 1.8, 1.2]
        + [0.6, 0.3]
    )
    scale = {m.pk: Decimal(rng.uniform(0.04, 0.12)).quantize(Decimal("0.001")) for m in mine}
    days = [first_day + dt.timedelta(days=d) for d in range(365)]
    copy_rows(
        "metering_dailyusage",
        "meter_id, day, kwh, estimated_kwh, intervals",
        (
            (m.pk, d, (scale[m.pk] * Decimal(sum(shape))).quantize(Decimal("0.001")),
             Decimal(0) if (m.pk + d.toordinal()) % 50 else scale[m.pk], 96)
            for m in mine for d in days
        ),
    )  # fmt: skip
    site_scale = sum((scale[m.pk] for m in on_site), Decimal(0))
    SiteDailyUsage.objects.bulk_create(
        [
            SiteDailyUsage(
                site=site,
                day=d,
                kwh=(site_scale * Decimal(sum(shape))).quantize(Decimal("0.001")),
                estimated_kwh=(site_scale / 50).quantize(Decimal("0.001")),
                meters=len(on_site),
            )
            for d in days
        ],
    )
    hours = []
    for d in days:
        weekend = Decimal("1.2") if d.isoweekday() >= 6 else Decimal(1)
        for h in range(24):
            at = dt.datetime.combine(d, dt.time(h), tzinfo=zone).astimezone(dt.UTC)
            kwh = (site_scale * Decimal(shape[h]) * weekend).quantize(Decimal("0.001"))
            hours.append(SiteHourlyUsage(site=site, hour=at, kwh=kwh, meters=len(on_site)))
    SiteHourlyUsage.objects.bulk_create(hours, batch_size=5000)

    # Money: accounts as the ledger names them, then bills and payments in bulk.
    with acting_as(label="bench setup", channel="system"):
        revenue = ledger.account(site, LedgerAccount.Kind.REVENUE_ENERGY)
        momo = ledger.account(site, LedgerAccount.Kind.MOBILE_MONEY, provider="mtn")
        receivable = {c.pk: ledger.receivable(c) for c in ours}
    months = []
    month = today.replace(day=1)
    for _ in range(12):
        months.append(month)
        month = (month - dt.timedelta(days=1)).replace(day=1)
    bills = []
    for c in ours:
        habit = "never" if c.pk % 20 == 0 else "half" if c.pk % 10 == 0 else "full"
        for issued in sorted(months):
            total = Decimal(rng.randrange(5000, 40000, 100))
            paid_on = issued + dt.timedelta(days=rng.randrange(3, 21))
            paid = {"never": None, "half": total / 2, "full": total}[habit]
            if paid_on > today:
                paid = None
            bills.append((c, issued, total, paid, paid_on))
    posted_at = now
    invoice_postings = Posting.objects.bulk_create(
        [
            Posting(site=site, currency="UGX", kind=Posting.Kind.INVOICE, date=issued,
                    posted_at=posted_at, reference=f"INV-BSA-{issued:%Y%m}-{c.pk}", memo="Bill")
            for c, issued, *_ in bills
        ],
        batch_size=5000,
    )  # fmt: skip
    lines = []
    for (c, _issued, total, *_), p in zip(bills, invoice_postings, strict=True):
        lines += [
            PostingLine(posting=p, account=receivable[c.pk], amount=total),
            PostingLine(posting=p, account=revenue, amount=-total),
        ]
    invoices = Invoice.objects.bulk_create(
        [
            Invoice(
                number=f"INV-BSA-{issued:%Y%m}-{c.pk}", customer=c, site=site,
                period_start=(issued - dt.timedelta(days=1)).replace(day=1), period_end=issued,
                issued_on=issued, due_on=issued + dt.timedelta(days=14), currency="UGX",
                kwh=Decimal("42.5"), subtotal=total, total=total, amount_due=total,
                posting=p, created_at=posted_at,
            )
            for (c, issued, total, *_), p in zip(bills, invoice_postings, strict=True)
        ],
        batch_size=5000,
    )  # fmt: skip
    paying = [(b, inv) for b, inv in zip(bills, invoices, strict=True) if b[3]]
    payment_postings = Posting.objects.bulk_create(
        [
            Posting(site=site, currency="UGX", kind=Posting.Kind.PAYMENT, date=paid_on,
                    posted_at=posted_at, reference=f"mtn:BENCH{n}", memo="Payment")
            for n, ((c, _i, _t, _paid, paid_on), _inv) in enumerate(paying)
        ],
        batch_size=5000,
    )  # fmt: skip
    for ((c, _i, _t, paid, _on), _inv), p in zip(paying, payment_postings, strict=True):
        lines += [
            PostingLine(posting=p, account=momo, amount=paid),
            PostingLine(posting=p, account=receivable[c.pk], amount=-paid),
        ]
    PostingLine.objects.bulk_create(lines, batch_size=10000)
    payments = Payment.objects.bulk_create(
        [
            Payment(
                receipt_number=f"RC-BSA-{n:06d}", customer=c, site=site, method="mtn",
                amount=paid, currency="UGX", provider_txn_id=f"BENCH{n}",
                received_at=dt.datetime.combine(paid_on, dt.time(10), tzinfo=zone),
                posting=p,
            )
            for n, (((c, _i, _t, paid, paid_on), _inv), p) in enumerate(
                zip(paying, payment_postings, strict=True)
            )
        ],
        batch_size=5000,
    )  # fmt: skip
    Allocation.objects.bulk_create(
        [
            Allocation(payment=pay, invoice=inv, amount=pay.amount, created_at=posted_at)
            for pay, (_b, inv) in zip(payments, paying, strict=True)
        ],
        batch_size=5000,
    )

    # What is open today.
    Alert.objects.bulk_create(
        [
            Alert(kind=Alert.Kind.MISSING_READS, site=site, meter=m, message="not reporting",
                  opened_at=now - dt.timedelta(hours=n))
            for n, m in enumerate(on_site[::20])
        ]
    )  # fmt: skip
    Incident.objects.create(
        site=site, started_at=now - dt.timedelta(hours=3), watched_meters=len(on_site)
    )
    FieldTask.objects.bulk_create(
        [
            FieldTask(site=site, kind="fix", title=f"Fault {n}", created_at=now, updated_at=now)
            for n in range(25)
        ]
    )
    plant(site, gateways[0], mine, days, now, rng)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return site, manager, len(on_site), len(invoices), len(payments)


def plant(site, gateway, mine, days, now: dt.datetime, rng: random.Random) -> None:
    """The site's plant for the year: assets, a main meter with its daily and hourly usage,
    OpenEMS production counter and state of charge every five minutes (the edge agent's
    pace: 105,120 samples each), daily and monthly energy balances, weekly generator logs,
    open plant alerts; and steering's record of the Calin meters' concentrators."""
    from metering.lifecycle import Status
    from metering.models import DailyUsage, HourlyUsage, Meter
    from metering.plant.models import EnergyBalance, PlantAlert, PlantAsset, PlantLog
    from metering.plant.selectors import PRODUCTION_ENERGY, SOC
    from metering.steering.models import Concentrator, MeterState

    zone = site.zone
    main = Meter.objects.create(
        serial="800000099999", model="DTSU666", phases=3, site=site,
        status=Status.COMMISSIONED, status_changed_at=now, created_at=now,
    )  # fmt: skip
    assets = [
        ("pv_array", "Array", {"kwp": Decimal("30")}),
        ("battery", "Bank", {"capacity_kwh": Decimal("60"), "chemistry": "LiFePO4"}),
        ("inverter", "SRNE", {"rated_kw": Decimal("15")}),
        ("generator", "Genset", {"rated_kw": Decimal("20")}),
        ("supply_meter", "Main", {"meter": main}),
    ]
    PlantAsset.objects.bulk_create(
        PlantAsset(site=site, kind=kind, name=name, source="openems", created_at=now, **more)
        for kind, name, more in assets
    )
    DailyUsage.objects.bulk_create(
        DailyUsage(meter=main, day=d, kwh=Decimal("160"), intervals=96) for d in days
    )
    HourlyUsage.objects.bulk_create(
        (
            HourlyUsage(
                meter=main,
                hour=dt.datetime.combine(d, dt.time(h), tzinfo=zone).astimezone(dt.UTC),
                kwh=Decimal("6.667"),
                intervals=4,
            )
            for d in days
            for h in range(24)
        ),
        batch_size=5000,
    )
    start = dt.datetime.combine(days[0], dt.time(), tzinfo=zone).astimezone(dt.UTC)
    steps = int((now - start).total_seconds() // 300)

    def samples():
        energy = 5_000_000.0
        for n in range(steps):
            ts = start + dt.timedelta(minutes=5 * n)
            hour = ts.astimezone(zone).hour
            sun = max(0.0, 1 - abs(hour + (n % 12) / 12 - 13) / 6)
            energy += 30_000 * sun / 12
            yield (gateway.pk, site.pk, ts, PRODUCTION_ENERGY, round(energy, 1), ts)
            yield (gateway.pk, site.pk, ts, SOC, round(40 + 50 * sun, 1), ts)

    copy_rows("plant_telemetrysample", "gateway_id, site_id, ts, channel, value, received_at",
              samples())  # fmt: skip
    EnergyBalance.objects.bulk_create(
        EnergyBalance(
            site=site, period="day", start=d, method="meters", supplied_kwh=Decimal("160"),
            consumed_kwh=Decimal("140"), losses_kwh=Decimal("20"), losses_pct=Decimal("12.5"),
            estimated_kwh=Decimal("2.5"), customer_meters=len(mine), computed_at=now,
        )
        for d in days
    )  # fmt: skip
    months = sorted({d.replace(day=1) for d in days})
    EnergyBalance.objects.bulk_create(
        EnergyBalance(
            site=site, period="month", start=m, method="meters", supplied_kwh=Decimal("4800"),
            consumed_kwh=Decimal("4200"), losses_kwh=Decimal("600"), losses_pct=Decimal("12.5"),
            computed_at=now,
        )
        for m in months
    )  # fmt: skip
    PlantLog.objects.bulk_create(
        PlantLog(
            site=site, read_at=dt.datetime.combine(d, dt.time(9), tzinfo=zone),
            generator_hours=Decimal(1000 + n * 3), fuel_added_l=Decimal("20"),
            photo="plant/logs/bench.jpg", recorded_at=now,
        )
        for n, d in enumerate(days[::7])
    )  # fmt: skip
    PlantAlert.objects.create(site=site, kind="no_pv", message="no PV", opened_at=now)
    # Calin meters: four concentrators checked ten minutes ago (one offline); one in ten
    # meters not linked to any yet (never checked).
    concentrators = Concentrator.objects.bulk_create(
        Concentrator(number=f"BSA-C{n}", site=site, online=n != 3,
                     checked_at=now - dt.timedelta(minutes=10))
        for n in range(4)
    )  # fmt: skip
    calin = [m for m in mine if m.model == "CALIN" and m.site_id == site.pk]
    MeterState.objects.bulk_create(
        (
            MeterState(meter=m, concentrator=None if n % 10 == 0 else concentrators[n % 4])
            for n, m in enumerate(calin)
        ),
        batch_size=2000,
    )


def session_cookie(user) -> str:
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def timed(port: int, path: str, cookie: str, count: int) -> list[float]:
    took = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(count):
        began = time.perf_counter()
        conn.request("GET", path, headers={"Cookie": f"sessionid={cookie}"})
        response = conn.getresponse()
        body = response.read()
        took.append(time.perf_counter() - began)
        if response.status != 200:
            raise SystemExit(f"{path}: HTTP {response.status} {body[:200]!r}")
    conn.close()
    return took


def in_process(path: str, user, count: int) -> tuple[list[float], list[float]]:
    """The page through Django's test client in this process: wall and CPU time per request.

    CPU time (``time.thread_time``; PostgreSQL's own work is not in it) does not grow when
    other programs share the machine, so it tells what the page costs apart from waiting.
    """
    from django.test import Client

    client = Client()
    client.force_login(user)
    client.get(path)
    wall, cpu = [], []
    for _ in range(count):
        began, began_cpu = time.perf_counter(), time.thread_time()
        assert client.get(path).status_code == 200
        wall.append(time.perf_counter() - began)
        cpu.append(time.thread_time() - began_cpu)
    return wall, cpu


def report(label: str, took: list[float], ref: float, goal: bool = True) -> bool:
    """Print one line of figures; True when the page misses the goal."""
    p95 = pct(took, 95)
    verdict = f"(goal p95 < {GOAL_MS} ms: {'met' if p95 < GOAL_MS else 'NOT MET'})"
    print(
        f"   {label:<30} p50 {pct(took, 50):6.1f} ms   p95 {p95:6.1f} ms   "
        f"max {max(took) * 1000:6.1f} ms\n{'':36}p95 / healthz p95 {p95 / ref:5.1f}   "
        f"p95 / goal {p95 / GOAL_MS:4.2f} {verdict if goal else '(for information)'}"
    )
    return goal and p95 >= GOAL_MS


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} CPUs"


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meters", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    started = time.perf_counter()
    create_scratch(DB_NAME)
    os.environ.update(ENV)
    server = None
    failed = False
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        began = time.perf_counter()
        site, manager, on_site, invoices, payments = build(
            args.meters, dt.datetime.now(dt.UTC), random.Random(8)
        )
        print(
            f"PostgreSQL {connection.pg_version // 10000}, database {DB_NAME}: site with "
            f"{on_site:,} meters and customers, 365 days of daily usage per meter, "
            f"{invoices:,} bills and {payments:,} payments; a year of plant data (balances, "
            f"five-minute OpenEMS samples, a main meter's days and hours); "
            f"set up in {time.perf_counter() - began:.0f} s"
        )
        print(f"Before: {load_average()}")
        cookie = session_cookie(manager)
        connection.close()
        server = Gunicorn(["--worker-class", "gthread", "--workers", "2", "--threads", "2"], ENV)
        base = f"/dashboard/site/{site.pk}/"
        for path in (base, "/healthz"):
            timed(server.port, path, cookie, 5)  # warm both workers
        health = timed(server.port, "/healthz", cookie, args.requests)
        print(f"\n{args.requests} requests each, one after another, through gunicorn:")
        ref = pct(health, 95)
        print(f"   {'/healthz (reference)':<30} p50 {pct(health, 50):6.1f} ms   p95 {ref:6.1f} ms")
        pages = (
            ("site dashboard, this year", "preset=this_year"),
            ("site dashboard, last 30 days", "preset=last_30"),
            ("its customer table (htmx)", "preset=this_year&part=customers"),
            (
                "table sorted by balance, p. 3",
                "preset=this_year&part=customers&sort=balance&page=3",
            ),
        )
        for label, query in pages:
            took = timed(server.port, f"{base}?{query}", cookie, args.requests)
            failed |= report(label, took, ref)
        # What a manager waits for in all: the page, then the table it asks for on load.
        page = timed(server.port, f"{base}?preset=this_year", cookie, args.requests)
        table = timed(server.port, f"{base}?preset=this_year&part=customers", cookie, args.requests)
        both = [a + b for a, b in zip(page, table, strict=True)]
        report("page + table, this year", both, ref, goal=False)
        server.stop()
        server = None
        print(f"After the server runs: {load_average()}")
        wall, cpu = in_process(f"{base}?preset=this_year", manager, args.requests)
        print(
            f"\nThe same page in this process (test client, no HTTP), {args.requests} times: "
            f"wall p50 {pct(wall, 50):.0f} ms p95 {pct(wall, 95):.0f} ms; "
            f"Python CPU p50 {pct(cpu, 50):.0f} ms p95 {pct(cpu, 95):.0f} ms"
        )
    finally:
        if server is not None:
            server.stop()
        if not args.keep:
            drop_scratch(DB_NAME)
    print(f"\n(whole run {time.perf_counter() - started:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
