"""Benchmark: readings per second through the edge API, against PostgreSQL COPY.

    python tests/bench/bench_ingest.py [--batches 50] [--gateways 500]

Needs PostgreSQL (``BENCH_POSTGRES``, default ``postgres://postgres@127.0.0.1:5432``).
It creates its own scratch database (``mcoms_bench``), migrates it, and drops it at
the end. Prints:

1. The ingest rate through the real HTTP endpoint: gunicorn with 2 workers on a free
   port, 1,000-reading batches (200 meters x 5 intervals, a gateway's backlog) with
   real gateway tokens, two clients posting at once; against ``COPY`` of the same
   rows into the same table, one COPY and commit per batch (the same unit of work),
   measured in the same run. The ratio API / COPY (goal >= 0.3) and the p95 latency
   of a batch.
2. The time to accept one interval for 100,000 meters: 500 gateways x 200 meters
   (a Modbus bus has addresses 1-247), set up with bulk inserts, then one 200-reading
   batch per gateway. The first interval is posted and timed too, but the figure is
   the second (every meter already has readings, as in steady operation).
3. What the Celery worker then spends refreshing the rollups of one such batch (run
   in this process, not through the broker).

Rollups are not part of 1 or 2: after a batch the endpoint queues them for
the Celery worker (here an in-memory broker nobody consumes). The meters are
commissioned already, so no batch commissions meters.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import http.client
import json
import os
import statistics
import sys
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchkit import SERVER, Gunicorn, admin  # noqa: E402

DB_NAME = "mcoms_bench"
METERS_PER_GATEWAY = 200
INTERVALS_PER_BATCH = 5
STEP = dt.timedelta(minutes=15)
GOAL_RATIO = 0.3
ENV = {
    "DATABASE_URL": f"{SERVER}/{DB_NAME}",
    "DJANGO_SETTINGS_MODULE": "mcoms.settings",
    "DEBUG": "0",
    "SECRET_KEY": "bench-only-secret-key-not-used-anywhere-else-0123456789",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    # Rollup tasks are queued in memory and never run: the figures are ingest only.
    "CELERY_BROKER_URL": "memory://",
}


# --- the organisation, gateways and meters, by bulk inserts ----------------------------------


def build(prefix: str, gateways: int, installed_at: dt.datetime) -> list[dict]:
    """``gateways`` sites with one gateway and 200 commissioned meters each, with tokens."""
    from mcoms.core.models import Cluster, Region, Site
    from metering.lifecycle import Status
    from metering.models import BusSlot, Gateway, GatewayToken, Meter

    region = Region.objects.create(name=f"Bench {prefix}", code=f"b{prefix}")
    cluster = Cluster.objects.create(region=region, name=f"Bench {prefix}", code=f"b{prefix}")
    sites = Site.objects.bulk_create(
        [
            Site(cluster=cluster, name=f"Bench {prefix} {n}", code=f"b{prefix}{n}")
            for n in range(gateways)
        ]
    )
    gws = Gateway.objects.bulk_create(
        [
            Gateway(site=site, name=f"bench-{prefix}-{n}", created_at=installed_at)
            for n, site in enumerate(sites)
        ]
    )
    tokens = [f"mcg_bench_{prefix}_{n}_{uuid.uuid4().hex}" for n in range(gateways)]
    GatewayToken.objects.bulk_create(
        [
            GatewayToken(
                gateway=gw,
                token_hash=hashlib.sha256(token.encode()).hexdigest(),
                prefix=token[:8],
                created_at=installed_at,
            )
            for gw, token in zip(gws, tokens, strict=True)
        ]
    )
    out = []
    serial = int(hashlib.sha256(prefix.encode()).hexdigest()[:6], 16) * 10**6
    for gw, token in zip(gws, tokens, strict=True):
        meters = [
            Meter(
                serial=str(serial + n),
                model=Meter.Model.DDSU666,
                phases=1,
                site_id=gw.site_id,
                modbus_address=n,
                gateway=gw,
                status=Status.COMMISSIONED,
                status_changed_at=installed_at,
                created_at=installed_at,
            )
            for n in range(1, METERS_PER_GATEWAY + 1)
        ]
        serial += 1000
        out.append({"gateway": gw, "token": token, "meters": meters})
    Meter.objects.bulk_create([m for g in out for m in g["meters"]], batch_size=5000)
    BusSlot.objects.bulk_create(
        [
            BusSlot(gateway=g["gateway"], address=m.modbus_address, meter=m, start=installed_at)
            for g in out
            for m in g["meters"]
        ],
        batch_size=5000,
    )
    return out


def reading(address: int, ts: dt.datetime, n: int) -> dict:
    """One reading of the edge contract: meter ``address`` at its ``n``-th interval."""
    return {
        "address": address,
        "ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "energy_kwh": round(1000 + address * 0.01 + n * 0.05, 3),
        "voltage_v": [230.0 + address % 7],
        "current_a": [0.9],
        "power_kw": 0.2,
        "power_factor": 0.97,
        "frequency_hz": 50.01,
    }


def batch_body(gateway, addresses, stamps: list[tuple[int, dt.datetime]]) -> bytes:
    """The JSON body of one batch: every address at every (n, ts) of ``stamps``."""
    body = {
        "batch_id": str(uuid.uuid4()),
        "gateway": gateway.name,
        "sent_at": stamps[-1][1].strftime("%Y-%m-%dT%H:%M:%SZ"),
        "readings": [reading(a, ts, n) for n, ts in stamps for a in addresses],
    }
    return json.dumps(body).encode()


def copy_rows(group: dict, stamps: list[tuple[int, dt.datetime]], received: dt.datetime):
    """The rows the endpoint would store for this batch, as COPY takes them."""
    for n, ts in stamps:
        for meter in group["meters"]:
            r = reading(meter.modbus_address, ts, n)
            yield (
                meter.pk,
                ts,
                Decimal(repr(r["energy_kwh"])).quantize(Decimal("0.001")),
                None,
                r["voltage_v"][0],
                None,
                None,
                r["current_a"][0],
                None,
                None,
                r["power_kw"],
                r["power_factor"],
                r["frequency_hz"],
                "real",
                "valid",
                "",
                group["gateway"].pk,
                received,
            )


# --- HTTP ----------------------------------------------------------------------------------


def post_all(port: int, jobs: list[tuple[str, bytes]], clients: int) -> tuple[float, list]:
    """POST every (token, body) with ``clients`` connections; wall time and latencies."""
    latencies: list[float] = []
    answers: list[dict] = []
    lock = threading.Lock()
    queue = list(reversed(jobs))

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                if not queue:
                    break
                token, body = queue.pop()
            began = time.perf_counter()
            conn.request(
                "POST",
                "/api/v1/edge/readings",
                body=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            response = conn.getresponse()
            payload = response.read()
            took = time.perf_counter() - began
            if response.status != 200:
                raise SystemExit(f"HTTP {response.status}: {payload[:300]!r}")
            with lock:
                latencies.append(took)
                answers.append(json.loads(payload))
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - began, [latencies, answers]


def check(answers: list[dict], expected: int) -> None:
    """Stop unless every reading was accepted clean."""
    accepted = sum(a["accepted"] for a in answers)
    flagged = sum(len(a["flagged"]) + len(a["rejected"]) for a in answers)
    if accepted != expected or flagged:
        raise SystemExit(f"expected {expected} accepted, got {accepted} ({flagged} not clean)")


# --- the two measurements ------------------------------------------------------------------------


def rate_against_copy(server: Gunicorn, groups: list[dict], batches: int, base: dt.datetime):
    """Part 1: the same batches by COPY, then through the endpoint; print both and the ratio."""
    import psycopg
    from django.db import connection

    from metering.ingest import COLUMNS

    per_gateway = -(-batches // len(groups))
    plan = []  # (group, stamps) in the order they are sent: gateways in turn
    for block in range(per_gateway):
        for group in groups:
            if len(plan) == batches:
                break
            first = block * INTERVALS_PER_BATCH
            stamps = [(n, base + n * STEP) for n in range(first, first + INTERVALS_PER_BATCH)]
            plan.append((group, stamps))
    readings = batches * METERS_PER_GATEWAY * INTERVALS_PER_BATCH
    received = dt.datetime.now(dt.UTC)

    # COPY of the same rows, one COPY and commit per batch.
    cols = ", ".join(COLUMNS)
    with psycopg.connect(ENV["DATABASE_URL"]) as conn:
        began = time.perf_counter()
        for group, stamps in plan:
            with conn.cursor() as cur, cur.copy(f"COPY metering_reading ({cols}) FROM STDIN") as cp:
                for row in copy_rows(group, stamps, received):
                    cp.write_row(row)
            conn.commit()
        copy_s = time.perf_counter() - began
        conn.execute("TRUNCATE metering_reading")
        conn.commit()
        # For reference: all rows in a single COPY.
        began = time.perf_counter()
        with conn.cursor() as cur, cur.copy(f"COPY metering_reading ({cols}) FROM STDIN") as cp:
            for group, stamps in plan:
                for row in copy_rows(group, stamps, received):
                    cp.write_row(row)
        conn.commit()
        one_copy_s = time.perf_counter() - began
        conn.execute("TRUNCATE metering_reading")
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE metering_reading")
    connection.close()

    jobs = [
        (group["token"], batch_body(group["gateway"], range(1, METERS_PER_GATEWAY + 1), stamps))
        for group, stamps in plan
    ]
    api_s, (latencies, answers) = post_all(server.port, jobs, clients=2)
    check(answers, readings)
    api_rate, copy_rate = readings / api_s, readings / copy_s
    p95 = statistics.quantiles(latencies, n=20)[18]
    print(
        f"\n1. {readings:,} readings in {batches} batches of "
        f"{METERS_PER_GATEWAY * INTERVALS_PER_BATCH:,} from {len(groups)} gateways"
    )
    print(f"   edge API (gunicorn, 2 workers, 2 clients): {api_rate:8,.0f} readings/s")
    print(f"   COPY, one per batch + commit:              {copy_rate:8,.0f} readings/s")
    print(f"   COPY, all rows at once (reference only):   {readings / one_copy_s:8,.0f} readings/s")
    print(
        f"   ratio API / COPY: {api_rate / copy_rate:.2f} (goal >= {GOAL_RATIO})"
        f"{'' if api_rate / copy_rate >= GOAL_RATIO else '  BELOW GOAL'}"
    )
    print(
        f"   batch latency: p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
    )


def one_interval_for_all(server: Gunicorn, groups: list[dict], base: dt.datetime, clients: int):
    """Part 2: one batch per gateway, twice; print the time of the second interval."""
    meters = len(groups) * METERS_PER_GATEWAY
    addresses = range(1, METERS_PER_GATEWAY + 1)
    figures = []
    for n in (0, 1):
        ts = base + n * STEP
        jobs = [(g["token"], batch_body(g["gateway"], addresses, [(n, ts)])) for g in groups]
        took, (latencies, answers) = post_all(server.port, jobs, clients=clients)
        check(answers, meters)
        figures.append((took, statistics.quantiles(latencies, n=20)[18]))
    (first, _), (second, p95) = figures
    print(
        f"\n2. one interval for {meters:,} meters ({len(groups)} gateways x "
        f"{METERS_PER_GATEWAY}, {clients} clients)"
    )
    print(
        f"   accepted in {second:.1f} s ({meters / second:,.0f} readings/s, "
        f"p95 batch {p95 * 1000:.0f} ms)"
    )
    print(f"   the very first interval (no history, meter state created): {first:.1f} s")


def rollup_cost(groups: list[dict], base: dt.datetime) -> None:
    """What the Celery worker then spends on one gateway's batch: its rollups refresh."""
    from django.db import connection

    from metering import rollups

    ts = base + STEP
    took = []
    for group in groups[:10]:
        ids = [m.pk for m in group["meters"]]
        began = time.perf_counter()
        rollups.refresh(meter_ids=ids, start=ts, end=ts)
        took.append(time.perf_counter() - began)
    connection.close()
    each = statistics.median(took)
    print(
        f"\n3. rollups after one {METERS_PER_GATEWAY}-reading batch (the Celery worker's share): "
        f"{each * 1000:.0f} ms median; for all {len(groups)} gateways about "
        f"{each * len(groups):.0f} s of one worker per interval"
    )


def main() -> int:
    """Set up, measure, print, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=50, help="1,000-reading batches")
    parser.add_argument("--gateways", type=int, default=500, help="for the 100,000-meter part")
    parser.add_argument("--clients", type=int, default=4, help="for the 100,000-meter part")
    args = parser.parse_args()

    started = time.perf_counter()
    admin(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    admin(f"CREATE DATABASE {DB_NAME}")
    os.environ.update(ENV)
    server = None
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        from metering import partitions

        call_command("migrate", verbosity=0)
        now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
        base = now.replace(minute=now.minute - now.minute % 15) - dt.timedelta(days=3)
        partitions.ensure_ahead(now=base, back=1, ahead=3)
        installed = base - dt.timedelta(days=30)
        rate_groups = build("r", 10, installed)
        began = time.perf_counter()
        wide_groups = build("w", args.gateways, installed)
        setup_s = time.perf_counter() - began
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        print(
            f"PostgreSQL {connection.pg_version // 10000}, database {DB_NAME}; "
            f"{len(wide_groups) * METERS_PER_GATEWAY:,} meters set up in {setup_s:.1f} s"
        )
        connection.close()
        server = Gunicorn(["--workers", "2"], ENV)
        rate_against_copy(server, rate_groups, args.batches, base)
        one_interval_for_all(server, wide_groups, base + dt.timedelta(days=1), args.clients)
        rollup_cost(wide_groups, base + dt.timedelta(days=1))
    finally:
        if server is not None:
            server.stop()
        with contextlib.suppress(Exception):  # Django may not be set up yet
            from django.db import connections

            connections.close_all()
        admin(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    print(f"\n(whole run {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
