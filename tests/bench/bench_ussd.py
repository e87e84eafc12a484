"""Benchmark: USSD menu latency, 50 concurrent sessions over 10,000 customers on PostgreSQL.

    python tests/bench/bench_ussd.py [--customers 10000] [--sessions 50] [--rounds 4]

Needs PostgreSQL (``BENCH_POSTGRES``, default ``postgres://postgres@127.0.0.1:5432``).
It creates its own scratch database (``mcoms_bench_ussd``), migrates it, and drops it
at the end. The data: 10,000 customers on 20 sites in all three languages, each
with a USSD PIN hashed by the settings' PIN hasher (``USSD_PIN_HASHER``; one hash
is computed and shared by every row — a check costs the same whatever the salt), a
meter with 100 days of daily usage, and one customer in ten with a posted bill.

The real app runs under gunicorn (gthread: 4 workers x 2 threads) on a free port;
50 client threads each play whole sessions with Africa's Talking's fields: dial,
choose, enter the PIN, look at balance, bill or usage, go back, mistype. Each client
starts at a random moment within the time of one session (people do not all dial in
the same second), so 50 sessions are open at once throughout. Every request is timed
from the client. Printed:

1. 50 sessions at once at a person's pace (a pause of ``--think`` seconds, 4-8 by
   default, between answers: reading a screen and typing on a keypad takes that
   long, and a session may last 180 s): p50/p99 of the menu steps
   (goal p99 < 150 ms) and of the one PIN-check step per session (goal < 600 ms),
   and the ``/healthz`` round trip each client makes before each session, as the
   reference measured under the same load, with the ratio menu p99 / healthz p99.
2. The same 50 sessions with no pause at all (every client always waiting on the
   server): the saturation figures, for information.
3. 100 sessions one at a time in the benchmark's own process (Django's test client,
   no HTTP): wall and CPU time per step. CPU time does not grow when other programs
   share the machine, so it separates what a step costs from time spent waiting.

The machine's load average is printed before and after: on a shared machine parts 1
and 2 measure the machine as much as the menu.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import itertools
import os
import random
import statistics
import sys
import threading
import time
import urllib.parse
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchkit import SERVER, Gunicorn, admin  # noqa: E402

DB_NAME = "mcoms_bench_ussd"
SITES = 20
USAGE_DAYS = 100
PIN = "2580"
MENU_GOAL_MS = 150
PIN_GOAL_MS = 600
TIMEOUT = 60
ENV = {
    "DATABASE_URL": f"{SERVER}/{DB_NAME}",
    "DJANGO_SETTINGS_MODULE": "mcoms.settings",
    "DEBUG": "0",
    "SECRET_KEY": "bench-only-secret-key-not-used-anywhere-else-0123456789",
    "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
    # Tasks (SMS after a lock, none expected here) are queued in memory and never run.
    "CELERY_BROKER_URL": "memory://",
    "LOG_LEVEL": "WARNING",
}

# Sessions: the answers after dialling, and which of them is the PIN.
SCRIPTS = [
    ["1", PIN],  # balance
    ["2", PIN],  # last bill
    ["3", PIN, "1"],  # usage today
    ["3", PIN, "3"],  # the last three months
    ["3", PIN, "0", "1"],  # usage menu, back, balance without a second PIN
    ["9", "3", PIN, "2"],  # a wrong choice first, then usage this month
    ["7", "0", "2", PIN],  # language menu, back, last bill
]


def _cost(hasher) -> str:
    if hasattr(hasher, "iterations"):
        return f"{hasher.iterations:,} iterations"
    return f"N={hasher.work_factor:,}, r={hasher.block_size}, p={hasher.parallelism}"


# --- data, by bulk inserts ------------------------------------------------------------------------


def build(count: int, now: dt.datetime) -> list[str]:
    """``count`` customers with PINs, meters, usage and some bills; returns their phones."""
    from django.conf import settings
    from django.contrib.auth.hashers import make_password
    from django.db import connection

    from billing import ledger
    from billing.models import Invoice
    from customers.models import Customer
    from mcoms.core.audit import acting_as
    from mcoms.core.models import Cluster, Region, Site
    from metering.lifecycle import Status
    from metering.models import Meter, MeterAssignment
    from notifications.selfservice.models import CustomerPin

    region = Region.objects.create(name="Bench", code="bench")
    cluster = Cluster.objects.create(region=region, name="Bench", code="bench")
    sites = Site.objects.bulk_create(
        [Site(cluster=cluster, name=f"Bench site {n}", code=f"bs{n:02d}") for n in range(SITES)]
    )
    since = now - dt.timedelta(days=400)
    languages = ("en", "sw", "lg")
    customers = Customer.objects.bulk_create(
        [
            Customer(
                account_number=f"BS{n:06d}",
                first_name=f"Name{n}",
                last_name="Bench",
                phone=f"+25677{1000000 + n:07d}",
                site=sites[n % SITES],
                language=languages[n % 3],
                status=Customer.Status.ACTIVE,
                status_changed_at=since,
                created_at=since,
            )
            for n in range(count)
        ],
        batch_size=2000,
    )
    shared_hash = make_password(PIN, hasher=settings.USSD_PIN_HASHER)
    CustomerPin.objects.bulk_create(
        [CustomerPin(customer=c, pin_hash=shared_hash, set_at=since) for c in customers],
        batch_size=2000,
    )
    meters = Meter.objects.bulk_create(
        [
            Meter(
                serial=f"9{n:011d}",
                model="DDSU666",
                phases=1,
                site_id=c.site_id,
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
            for m, c in zip(meters, customers, strict=True)
        ],
        batch_size=2000,
    )
    today = now.date()
    with connection.cursor() as cursor:
        raw = cursor.cursor if hasattr(cursor, "cursor") else cursor
        sql = "COPY metering_dailyusage (meter_id, day, kwh, estimated_kwh, intervals) FROM STDIN"
        with raw.copy(sql) as copy:
            for m in meters:
                for d in range(USAGE_DAYS):
                    kwh = Decimal(1 + (m.pk + d) % 7) / 2
                    copy.write_row((m.pk, today - dt.timedelta(days=d), kwh, Decimal(0), 96))
    with acting_as(label="bench setup"):
        for c in customers[::10]:
            number = f"INV-{c.account_number}"
            issued = today.replace(day=1)
            posting = ledger.invoice_post(
                customer=c, date=issued, energy=Decimal(24500), reference=number
            )
            Invoice.objects.create(
                number=number,
                customer=c,
                site_id=c.site_id,
                period_start=(issued - dt.timedelta(days=1)).replace(day=1),
                period_end=issued,
                issued_on=issued,
                due_on=issued + dt.timedelta(days=14),
                currency="UGX",
                kwh=Decimal("120.5"),
                subtotal=Decimal(24500),
                total=Decimal(24500),
                amount_due=Decimal(24500),
                posting=posting,
                created_at=now,
            )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return [c.phone for c in customers]


# --- the server and the phones -------------------------------------------------------------------


class Timings:
    def __init__(self) -> None:
        self.menu: list[float] = []
        self.pin: list[float] = []
        self.health: list[float] = []
        self.lock = threading.Lock()
        self.errors: list[str] = []
        self.timeouts = 0


_session_ids = itertools.count(1)


def play(port: int, phones: list[str], rounds: int, think: tuple[float, float], t: Timings, seed):
    """One client: ``rounds`` sessions of random scripts by random customers."""
    rng = random.Random(seed)

    def timed(method: str, path: str, body: str | None = None) -> tuple[float, str, int]:
        # A connection per request, as the gateway's requests arrive seconds apart.
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
        began = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            payload, status = response.read().decode(), response.status
        except OSError as exc:  # a timeout: the gateway would have given up long before
            payload, status = f"no answer: {exc}", 0
        finally:
            conn.close()
        return time.perf_counter() - began, payload, status

    # People dial at random moments, not all at once: each client starts within the
    # time of one session, so the 50 sessions overlap in steady state.
    time.sleep(rng.uniform(0, think[1] * 4))
    for _ in range(rounds):
        took, _, status = timed("GET", "/healthz")
        phone = rng.choice(phones)
        session = f"ATUid_bench_{next(_session_ids)}_{seed}"
        script = rng.choice(SCRIPTS)
        samples = [("health", took, status, "")]
        for step in range(len(script) + 1):
            if step and think[1] > 0:
                time.sleep(rng.uniform(*think))
            text = "*".join(script[:step])
            body = urllib.parse.urlencode(
                {
                    "sessionId": session,
                    "serviceCode": "*384*2026#",
                    "phoneNumber": phone,
                    "networkCode": "63902",
                    "text": text,
                }
            )
            took, reply, status = timed("POST", "/ussd/africastalking/", body)
            kind = "pin" if step and script[step - 1] == PIN else "menu"
            samples.append((kind, took, status, reply))
        with t.lock:
            for kind, took, status, reply in samples:
                if status == 0:
                    t.timeouts += 1
                elif status != 200 or (kind != "health" and not reply.startswith(("CON ", "END "))):
                    t.errors.append(f"{kind}: HTTP {status} {reply[:80]!r}")
                elif kind == "pin" and ("PIN" in reply or "locked" in reply):
                    t.errors.append(f"PIN refused: {reply[:80]!r}")
                getattr(t, kind).append(took)


def run(port: int, phones: list[str], clients: int, rounds: int, think) -> tuple[Timings, float]:
    t = Timings()
    threads = [
        threading.Thread(target=play, args=(port, phones, rounds, think, t, n))
        for n in range(clients)
    ]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if t.errors:
        raise SystemExit(f"{len(t.errors)} bad answers, e.g. {t.errors[:3]}")
    return t, time.perf_counter() - began


def p(values: list[float], q: int) -> float:
    """The ``q``-th percentile in milliseconds."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


def report(title: str, t: Timings, wall: float, goals: bool) -> None:
    requests = len(t.menu) + len(t.pin)
    print(f"\n{title}")
    print(f"   {len(t.pin)} sessions, {requests} USSD requests in {wall:.0f} s")
    if t.timeouts:
        print(f"   {t.timeouts} requests got no answer within {TIMEOUT} s (counted at that time)")

    def line(name: str, values: list[float], goal: int | None) -> None:
        verdict = ""
        if goal is not None:
            verdict = f"  (goal p99 < {goal} ms: {'met' if p(values, 99) < goal else 'NOT MET'})"
        print(
            f"   {name:<24} p50 {p(values, 50):6.0f} ms   p99 {p(values, 99):6.0f} ms   "
            f"max {max(values) * 1000:6.0f} ms{verdict}"
        )

    line("menu steps", t.menu, MENU_GOAL_MS if goals else None)
    line("PIN-check step", t.pin, PIN_GOAL_MS if goals else None)
    line("/healthz (reference)", t.health, None)
    print(
        f"   ratio menu p99 / healthz p99: {p(t.menu, 99) / p(t.health, 99):.2f}; "
        f"PIN p99 / healthz p99: {p(t.pin, 99) / p(t.health, 99):.2f}"
    )


def one_at_a_time(phones: list[str], sessions: int, seed: int = 99) -> None:
    """Part 3: sessions one after another in this process: what a step costs in CPU.

    CPU time of the thread (``time.thread_time``) does not grow when other programs
    share the machine, so it tells the cost of a step apart from the waiting.
    """
    from django.test import Client

    rng = random.Random(seed)
    client = Client()
    wall: dict[str, list[float]] = {"menu": [], "pin": []}
    cpu: dict[str, list[float]] = {"menu": [], "pin": []}
    for n in range(sessions):
        phone, script = rng.choice(phones), rng.choice(SCRIPTS)
        for step in range(len(script) + 1):
            fields = {
                "sessionId": f"ATUid_seq_{n}",
                "serviceCode": "*384*2026#",
                "phoneNumber": phone,
                "networkCode": "63902",
                "text": "*".join(script[:step]),
            }
            began, began_cpu = time.perf_counter(), time.thread_time()
            reply = client.post("/ussd/africastalking/", fields).content.decode()
            kind = "pin" if step and script[step - 1] == PIN else "menu"
            wall[kind].append(time.perf_counter() - began)
            cpu[kind].append(time.thread_time() - began_cpu)
            if not reply.startswith(("CON ", "END ")):
                raise SystemExit(f"bad answer {reply[:80]!r}")
    print(f"\n3. {sessions} sessions one at a time, in this process (no HTTP server)")
    for kind, name in (("menu", "menu steps"), ("pin", "PIN-check step")):
        print(
            f"   {name:<24} wall p50 {p(wall[kind], 50):5.0f} ms  p99 {p(wall[kind], 99):5.0f} ms"
            f"   CPU p50 {p(cpu[kind], 50):5.0f} ms  p99 {p(cpu[kind], 99):5.0f} ms"
        )


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} CPUs"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--sessions", type=int, default=50, help="concurrent sessions (clients)")
    parser.add_argument("--rounds", type=int, default=4, help="sessions each client plays")
    parser.add_argument("--think", default="4,8", help="pause between answers, seconds (a,b)")
    parser.add_argument("--sequential", type=int, default=100, help="sessions for part 3")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    think = tuple(float(x) for x in args.think.split(","))

    started = time.perf_counter()
    admin(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    admin(f"CREATE DATABASE {DB_NAME}")
    os.environ.update(ENV)
    server = None
    try:
        import django

        django.setup()
        from django.contrib.auth.hashers import get_hasher
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        began = time.perf_counter()
        phones = build(args.customers, dt.datetime.now(dt.UTC))
        from django.conf import settings

        hasher = get_hasher(settings.USSD_PIN_HASHER)
        print(
            f"PostgreSQL {connection.pg_version // 10000}, database {DB_NAME}: "
            f"{len(phones):,} customers with PINs, meters and {USAGE_DAYS} days of usage, "
            f"bills for one in ten; set up in {time.perf_counter() - began:.0f} s"
        )
        print(
            f"PIN hasher: {hasher.algorithm} ({_cost(hasher)}); "
            f"gunicorn gthread {args.workers} workers x {args.threads} threads"
        )
        print(f"Before: {load_average()}")
        connection.close()
        server = Gunicorn(
            ["--worker-class", "gthread", "--workers", str(args.workers)]
            + ["--threads", str(args.threads)],
            ENV,
        )
        run(server.port, phones, 4, 1, (0, 0))  # warm up every worker's connections
        t, wall = run(server.port, phones, args.sessions, args.rounds, think)
        report(
            f"1. {args.sessions} concurrent sessions, {think[0]:g}-{think[1]:g} s between answers",
            t,
            wall,
            goals=True,
        )
        t, wall = run(server.port, phones, args.sessions, max(1, args.rounds // 2), (0, 0))
        report(
            f"2. {args.sessions} concurrent sessions with no pause (saturation, for information)",
            t,
            wall,
            goals=False,
        )
        print(f"\nAfter the server runs: {load_average()}")
        server.stop()
        server = None
        one_at_a_time(phones, args.sequential)
    finally:
        if server is not None:
            server.stop()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        admin(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    print(f"\n(whole run {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
