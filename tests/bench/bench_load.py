"""Load test: 1,000 simulated gateways send readings and heartbeats while staff use the
dashboards; no errors, and latencies within the goals of the earlier issues.

    python tests/bench/bench_load.py [--duration 90] [--gateways 1000] [--staff 4]
                                     [--speedup 10] [--database-url postgres://…/name]

Needs PostgreSQL (``BENCH_POSTGRES``, default ``postgres://postgres@127.0.0.1:5432``, or
``--database-url`` naming the scratch database). It creates the database, migrates it,
and drops it at the end (``--keep`` keeps it). Bounded in time: ``--duration`` seconds of
load, at most ``--drain`` more for the requests still under way, and a hard ``--timeout``
for the whole run (set-up included).

The data:

- the dashboard benchmark's site, built by its own builder
  (:func:`bench_dashboard.build`): ``--customers`` customers and meters (CHINT meters on 8
  gateways' buses, the rest Calin), a year of daily usage, bills, payments, plant data;
- the dashboard site's 8 gateways get their token from ``metering.tokens.token_issue`` (as
  registration issues it: shown once, stored hashed, audited);
- the rest of the fleet up to ``--gateways`` gateways, in bulk but as registration leaves
  them: on sites of 1-4 gateways in four regions (one of them the dashboard site's), each
  with its token (``mcg_`` + 32 random bytes; its hash and prefix stored, as
  ``metering.tokens`` does); 1-20 commissioned CHINT meters on each bus (a three-phase
  main meter at 100+ from five meters up), with their bus slots;
- staff: ``--staff`` regional managers of the dashboard site's region (no second factor).

gunicorn serves the platform as docker-compose.yml does: a web pool for staff pages and
``/healthz`` (``--workers`` sync workers, default 2) and the gateways' edge API in a pool
of its own (``--edge-workers``, default 3, at ``--edge-nice`` 10: compose gives it a quarter
of the CPU weight); ``--edge-workers 0`` serves everything from one pool. Rollups are
queued to an in-memory broker nobody consumes, as in bench_ingest (bench_ingest measures
what they cost).

The simulated gateways (one asyncio process, one ``httpx.AsyncClient`` with at most
``--connections`` connections) behave like ``edge_agent``: at each log interval boundary
(900 s, compressed ``--speedup`` times) every gateway posts one batch of one reading per
meter, gzip-compressed, after the next sweep (within ``--spread`` 11 s of the boundary: the
poll interval of 10 s, the sweep and the link's 1-s tick) and the gateway's own delay
(``edge_agent.uploader.upload_offset`` of its name, below ``--upload-spread``: the agent's
``upload_spread_s``, 60 s; 0 sends every batch within the 11 s, as agents did before it);
that burst is at the real pace; a heartbeat every
300 s (compressed the same), listing every meter in its first one; one config fetch each,
spread over the first heartbeat interval (as after a config change). ``--backlog`` of the
gateways come back from an outage: their first batch carries the readings of the past
intervals, about 1,000 (the size of bench_ingest's batches). Answers are honoured as the
agent does: 200 done; 409 dropped (dead letter); 429 and 5xx retried with backoff, never
before ``Retry-After``; no answer retried likewise.

Meanwhile each staff session signs in through the login form (CSRF token and session
cookie, as a browser) and goes round the dashboards with 2-5 s of think time: the
overview, the region, the site (this year, last 30 days, this month at random), the
customer table htmx asks for (sorted or paged at times), a customer. And ``--ussd``
customers (default 10 at a time) use the USSD menu through Africa's Talking's callback as in
bench_ussd: its scripts, the PIN once a session, 4-8 s between answers.

Printed: per kind of request the count, errors (any answer but 2xx, other than a 409 or a
429; transport errors; requests left unanswered at the end), p50/p95/p99/max; readings
accepted per second and the real-world rate they correspond to; the references measured
in the same run (``/healthz`` every half second under load, each dashboard page without
load before it) and the ratios; load average and the CPU the harness itself used; each
goal, hard or for information, and whether it was met: the latency goals of the earlier
issues are hard (the site dashboard's p95 under 300 ms; the USSD menu steps' p99 under
150 ms and the PIN check's under 600 ms). Exit 1 on any error or a missed hard goal
(``--no-latency-goals`` makes the latency goals informational: the short test).
``--json PATH`` writes the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import faulthandler
import gzip
import json
import math
import os
import random
import re
import resource
import secrets
import signal
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ussd import PIN as USSD_PIN  # noqa: E402
from benchkit import SERVER, Gunicorn, bench_env, create_scratch, drop_scratch  # noqa: E402

from edge_agent.config import AgentConfig  # noqa: E402
from edge_agent.uploader import upload_offset  # noqa: E402

DB_NAME = "mcoms_bench_load"
LOG_INTERVAL_S = 900  # the agent's default log_interval_s (the contract's example)
HEARTBEAT_S = 300  # the agent's default heartbeat_interval_s (the contract: every 5 min)
# After a boundary a reading waits for the next sweep (the poll interval, 10 s: the agents'
# phases are spread), the sweep itself (~0.1 s a meter) and the link's 1-s tick...
SWEEP_SPREAD_S = 11.0
# ... then the gateway's own delay, below the agent's upload_spread_s.
UPLOAD_SPREAD_S = AgentConfig.upload_spread_s
AGENT_TIMEOUT_S = 30.0  # edge_agent.uploader.Api: no answer within it is no answer
BACKLOG_READINGS = 1000
GOAL_DASHBOARD_MS = 300  # docs/dashboards.md: site dashboard p95 < 300 ms
# docs/metering.md: p95 of a 1,000-reading batch, measured 176-299 ms (no fixed goal).
BATCH_REFERENCE_MS = 300
PASSWORD = "bench-only-pass-0123"
# docs/ussd.md (bench_ussd): p99 of the menu steps < 150 ms, the one PIN check < 600 ms.
USSD_MENU_GOAL_MS = 150
USSD_PIN_GOAL_MS = 600
USSD_KINDS = ("USSD menu step", "USSD PIN check")
DASHBOARD_KINDS = ("overview", "region", "site", "site table (htmx)", "customer")


# --- the set-up ---------------------------------------------------------------------------


@dataclass
class Gw:
    name: str
    token: str
    meters: list[tuple[int, int]]  # (address, phases)
    backlog: bool = False


@dataclass
class Fleet:
    gateways: list[Gw]
    region_id: int
    site_id: int
    customer_ids: list[int]
    staff: list[str]
    meters: int
    phones: list[str] = field(default_factory=list)  # customers with a USSD PIN


def fleet(count: int, staff: int, customers: int, now: dt.datetime, rng: random.Random) -> Fleet:
    """The dashboard site (its benchmark's builder), then the rest of the gateways."""
    from bench_dashboard import build

    from customers.models import Customer
    from mcoms.core import services as core_services
    from mcoms.core.audit import acting_as
    from mcoms.core.models import Cluster, Region, Site
    from mcoms.core.roles import Role
    from metering import partitions, tokens
    from metering.lifecycle import Status
    from metering.models import BusSlot, Gateway, GatewayToken, Meter

    # The readings' monthly partitions, as the beat task keeps them (last month, 3 ahead).
    partitions.ensure_ahead(now=now, back=1, ahead=3)
    bench_site, _manager, *_ = build(customers, now, rng)
    region = bench_site.cluster.region
    installed = now - dt.timedelta(days=30)
    out: list[Gw] = []
    with acting_as(label="bench setup", channel="system"):
        for gateway in Gateway.objects.filter(site=bench_site).order_by("name"):
            slots = BusSlot.objects.filter(gateway=gateway, end__isnull=True)
            meters = [(s.address, s.meter.phases) for s in slots.select_related("meter")]
            if meters:
                out.append(Gw(gateway.name, tokens.token_issue(gateway=gateway), meters))
        clusters = [Cluster.objects.create(region=region, name="Bench east", code="beast")]
        for name in ("North", "West", "South"):
            other = Region.objects.create(name=f"Load {name}", code=f"load-{name.lower()}")
            clusters.append(
                Cluster.objects.create(region=other, name=f"{name} 1", code=f"{name.lower()}1")
            )
    # The rest in bulk, shaped as registration leaves them: sites, gateways, and each
    # gateway's token as metering.tokens issues it (mcg_ + 32 random bytes, only its hash
    # and prefix stored).
    sizes = []
    while len(out) + sum(sizes) < count:
        sizes.append(min(rng.randint(1, 4), count - len(out) - sum(sizes)))
    sites = Site.objects.bulk_create(
        Site(cluster=clusters[n % 4], name=f"Load site {n}", code=f"ld{n}")
        for n in range(len(sizes))
    )
    gateways = Gateway.objects.bulk_create(
        Gateway(site=site, name=f"ld{n}-bus{g}", created_at=installed)
        for n, (site, size) in enumerate(zip(sites, sizes, strict=True))
        for g in range(size)
    )
    secrets_ = [f"mcg_{secrets.token_urlsafe(32)}" for _ in gateways]
    GatewayToken.objects.bulk_create(
        GatewayToken(gateway=gw, token_hash=tokens._hash(t), prefix=t[:8], created_at=installed)
        for gw, t in zip(gateways, secrets_, strict=True)
    )
    serial = 700_000_000_000
    meters, plan = [], []
    for gateway, token in zip(gateways, secrets_, strict=True):
        g = int(gateway.name.rsplit("bus", 1)[1])
        k = rng.randint(1, 20)
        # The site's address plan: single-phase 10-99, three-phase 100-247.
        single = [(10 + 20 * g + a, 1) for a in range(k - 1)]
        wiring = single + [(100 + g, 3) if k >= 5 else (9 + 20 * g + k, 1)]
        for address, phases in wiring:
            serial += 1
            meters.append(
                Meter(
                    serial=str(serial),
                    model="DTSU666" if phases == 3 else "DDSU666",
                    phases=phases,
                    site_id=gateway.site_id,
                    gateway=gateway,
                    modbus_address=address,
                    status=Status.COMMISSIONED,
                    status_changed_at=installed,
                    created_at=installed,
                )
            )
        plan.append(Gw(gateway.name, token, wiring))
    Meter.objects.bulk_create(meters, batch_size=5000)
    BusSlot.objects.bulk_create(
        [
            BusSlot(gateway=m.gateway, address=m.modbus_address, meter=m, start=installed)
            for m in meters
        ],
        batch_size=5000,
    )
    out += plan
    with acting_as(label="bench setup", channel="system"):
        staff_names = []
        for s in range(staff):
            user = core_services.user_create(
                username=f"load-regional-{s}",
                password=PASSWORD,
                role=Role.REGIONAL_MANAGER,
                regions=[region],
            )
            staff_names.append(user.username)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    customer_ids = list(Customer.objects.filter(site=bench_site).values_list("pk", flat=True))
    phones = ussd_pins(bench_site, now)
    return Fleet(
        gateways=out,
        region_id=region.pk,
        site_id=bench_site.pk,
        customer_ids=customer_ids,
        staff=staff_names,
        meters=sum(len(g.meters) for g in out),
        phones=phones,
    )


def ussd_pins(site, now: dt.datetime) -> list[str]:
    """The dashboard site's customers get a USSD PIN (bench_ussd's: one hash by the settings'
    PIN hasher, shared by every row); returns their phone numbers."""
    from django.conf import settings
    from django.contrib.auth.hashers import make_password

    from customers.models import Customer
    from notifications.selfservice.models import CustomerPin

    customers = list(Customer.objects.filter(site=site).exclude(phone=""))
    shared_hash = make_password(USSD_PIN, hasher=settings.USSD_PIN_HASHER)
    CustomerPin.objects.bulk_create(
        [CustomerPin(customer=c, pin_hash=shared_hash, set_at=now) for c in customers],
        batch_size=2000,
    )
    return [c.phone for c in customers]


# --- what is measured ---------------------------------------------------------------------


@dataclass
class Kind:
    took: list[float] = field(default_factory=list)
    codes: Counter = field(default_factory=Counter)
    errors: int = 0
    expected: int = 0  # 409, 429: answers the contract expects a gateway to handle
    samples: list[str] = field(default_factory=list)


class Stats:
    def __init__(self) -> None:
        self.kinds: dict[str, Kind] = {}
        self.accepted = 0
        self.duplicates = 0
        self.rejected = 0
        self.accepted_backlog = 0
        self.flagged = 0
        self.reasons: Counter = Counter()
        self.readings_sent = 0
        self.served: set[str] = set()
        self.in_flight = 0
        self.most_in_flight = 0
        self.loop_lag: list[float] = []
        self.pool_wait: list[float] = []
        self.bursts: dict[int, float] = {}  # interval: its last batch answered, s after it
        self.due: Counter = Counter()  # interval: batches made
        self.answered: Counter = Counter()  # interval: batches answered 200

    def kind(self, name: str) -> Kind:
        return self.kinds.setdefault(name, Kind())

    def record(
        self, name: str, took: float, status: int | None, error: str = "", ok: bool | None = None
    ) -> None:
        """One answer (``status`` None: none came); ``ok`` overrides the rule by status."""
        k = self.kind(name)
        k.took.append(took)
        k.codes[status or "no answer"] += 1
        if ok is None:
            ok = status is not None and (200 <= status < 300 or status in (409, 429))
        if ok:
            k.expected += status in (409, 429)
            return
        k.errors += 1
        if len(k.samples) < 5:
            k.samples.append(f"{status or 'no answer'} {error}"[:300])

    def error(self, name: str, message: str) -> None:
        k = self.kind(name)
        k.errors += 1
        if len(k.samples) < 5:
            k.samples.append(message[:300])


def pct(values: list[float], q: float) -> float:
    """The q-th percentile in ms (nearest rank; the value itself with one sample)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)] * 1000


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} CPUs"


# --- the gateways -------------------------------------------------------------------------


def iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def reading(address: int, phases: int, ts: dt.datetime, k: int, rng: random.Random) -> dict:
    """One reading of the contract: meter ``address`` at interval ``k`` (energy rising)."""
    return {
        "address": address,
        "ts": iso(ts),
        "energy_kwh": round(1000 + address * 3.7 + k * (0.05 + address % 7 * 0.03), 3),
        "voltage_v": [round(rng.uniform(215, 245), 1) for _ in range(phases)],
        "current_a": [round(rng.uniform(0.2, 5.0), 2) for _ in range(phases)],
        "power_kw": round(rng.uniform(0.05, 1.0) * phases, 3),
        "power_factor": 0.97,
        "frequency_hz": 50.01,
    }


class Gateway:
    """One Pi's link: an outbox of batches sent one at a time, heartbeats, one config fetch."""

    def __init__(self, gw: Gw, run: Run, rng: random.Random) -> None:
        self.gw, self.run, self.rng = gw, run, rng
        self.outbox: list[tuple[str, dict, int]] = []  # (kind, body, interval)
        self.failures = 0
        self.retry_at = 0.0
        self.wake = asyncio.Event()
        self.closed = False  # no more batches: the load is over
        self.heartbeats = 0
        self.config_version: int | None = None
        self.headers = {
            "Authorization": f"Bearer {gw.token}",
            "Accept": "application/json",
            "User-Agent": "mcoms-edge (load test)",
        }

    def add_batch(self, k: int) -> None:
        """The readings of interval ``k`` (and, with a backlog, of the ones before it)."""
        first = k
        if self.gw.backlog and not self.outbox and k == 0:
            first = -math.ceil(BACKLOG_READINGS / len(self.gw.meters)) + 1
        readings = [
            reading(a, p, self.run.boundary(i), i, self.rng)
            for i in range(first, k + 1)
            for a, p in self.gw.meters
        ]
        body = {
            "batch_id": str(uuid.uuid4()),
            "gateway": self.gw.name,
            "sent_at": iso(self.run.boundary(k) + dt.timedelta(seconds=5)),
            "readings": readings,
        }
        self.outbox.append(("readings, backlog" if first < k else "readings", body, k))
        self.run.stats.due[k] += 1
        self.wake.set()

    async def post(self, kind: str, path: str, body: dict):
        data = gzip.compress(json.dumps(body, separators=(",", ":")).encode(), mtime=0)
        headers = {
            **self.headers,
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        }
        return await self.run.call(kind, "POST", path, headers=headers, content=data)

    async def uploads(self) -> None:
        """Send the outbox's batches in order, as ``edge_agent.uploader`` does."""
        run = self.run
        # After the load, what is still in the outbox is sent (within the run's drain time).
        while not run.aborted and (self.outbox or not self.closed):
            if not self.outbox:
                self.wake.clear()
                await self.wake.wait()
                continue
            wait = self.retry_at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            kind, body, k = self.outbox[0]
            status, answer, retry_after = await self.post(kind, "/api/v1/edge/readings", body)
            if status == 200:
                done = time.monotonic() - run.boundary_at(k)
                run.stats.bursts[k] = max(run.stats.bursts.get(k, 0.0), done)
                run.stats.answered[k] += 1
                self.outbox.pop(0)
                self.failures = 0
                run.stats.readings_sent += len(body["readings"])
                if isinstance(answer, dict):
                    run.stats.accepted += answer.get("accepted", 0)
                    if kind != "readings":
                        run.stats.accepted_backlog += answer.get("accepted", 0)
                    run.stats.duplicates += answer.get("duplicates", 0)
                    rejected = answer.get("rejected") or []
                    run.stats.rejected += len(rejected)
                    run.stats.flagged += len(answer.get("flagged") or [])
                    for item in (rejected + (answer.get("flagged") or []))[:3]:
                        run.stats.reasons[str(item.get("reason"))[:80]] += 1
                run.stats.served.add(self.gw.name)
            elif status is not None and 400 <= status < 500 and status not in (429,):
                self.outbox.pop(0)  # dead letter (409 included: kept for a person)
            else:
                self.failures += 1
                delay = min(300.0, 2.0 * 2 ** (self.failures - 1)) * (0.5 + 0.5 * self.rng.random())
                self.retry_at = time.monotonic() + max(delay, retry_after or 0.0)

    async def heartbeat(self) -> None:
        body = {
            "gateway": self.gw.name,
            "agent_version": "1.0.0",
            "config_version": self.config_version,
            "uptime_s": 86400 + self.heartbeats * HEARTBEAT_S,
            "clock_synced": True,
            "outbox": {
                "pending_readings": sum(len(b["readings"]) for _, b, _ in self.outbox),
                "oldest_pending_ts": None,
                "dead_letter_batches": 0,
                "dropped_readings": 0,
                "disk_free_mb": 5120,
                "upload_held_401": False,
                "last_upload_error": None,
            },
            "bus": {"port_open": True, "last_sweep_s": round(0.06 * len(self.gw.meters), 2)},
            # Only meters whose state changed since the last heartbeat: all of them at first.
            "meters": [
                {
                    "address": a,
                    "ok": True,
                    "last_ok_at": iso(dt.datetime.now(dt.UTC)),
                    "errors_24h": {"timeout": 0, "crc": 0, "exception": 0, "implausible": 0},
                    "last_error": None,
                }
                for a, _ in (self.gw.meters if self.heartbeats == 0 else self.gw.meters[:1])
            ]
            if self.heartbeats == 0 or self.rng.random() < 0.1
            else [],
        }
        self.heartbeats += 1
        status, answer, _ = await self.post("heartbeat", "/api/v1/edge/heartbeat", body)
        if status == 200 and isinstance(answer, dict):
            self.config_version = answer.get("config_version")

    async def live(self) -> None:
        run = self.run
        uploads = asyncio.create_task(self.uploads())
        hb_every = HEARTBEAT_S / run.speedup
        next_hb = run.t0 + self.rng.uniform(0, hb_every)
        config_at = next_hb
        boundary = 0
        # The agent: the next sweep after the boundary, then the gateway's own delay.
        delay = upload_offset(self.gw.name, run.args.upload_spread, LOG_INTERVAL_S)
        next_batch = run.boundary_at(0) + self.rng.uniform(0, run.args.spread) + delay
        while True:
            when = min(next_hb, next_batch, config_at)
            if when >= run.stop_at:
                break
            await asyncio.sleep(max(0.0, when - time.monotonic()))
            if when == config_at:
                config_at = math.inf
                status, answer, _ = await run.call(
                    "config", "GET", "/api/v1/edge/config", headers=self.headers
                )
                if status == 200 and isinstance(answer, dict):
                    self.config_version = answer.get("version")
            elif when == next_hb:
                next_hb += hb_every
                await self.heartbeat()
            else:
                self.add_batch(boundary)
                boundary += 1
                next_batch = (
                    run.boundary_at(boundary) + self.rng.uniform(0, run.args.spread) + delay
                )
        self.closed = True
        self.wake.set()
        await uploads


# --- the staff ----------------------------------------------------------------------------


async def sign_in(client, run: Run, username: str) -> bool:
    began = time.perf_counter()
    try:
        page = await client.get("/accounts/login/")
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content)
        answer = await client.post(
            "/accounts/login/",
            data={
                "username": username,
                "password": PASSWORD,
                "csrfmiddlewaretoken": token.group(1).decode() if token else "",
            },
            headers={"Referer": f"{run.base}/accounts/login/"},
        )
    except Exception as exc:  # noqa: BLE001 - any failure is an error to report
        run.stats.record("sign-in", time.perf_counter() - began, None, repr(exc))
        return False
    # Signed in: a redirect away from the form, with a session cookie.
    ok = answer.status_code == 302 and "sessionid" in client.cookies
    run.stats.record(
        "sign-in", time.perf_counter() - began, answer.status_code, "no session", ok=ok
    )
    return ok


def pages(fleet: Fleet, rng: random.Random) -> list[tuple[str, str, dict]]:
    """One round of a manager's visit: (kind, path, extra headers)."""
    preset = rng.choice(("this_year", "last_30", "this_month"))
    site = f"/dashboard/site/{fleet.site_id}/?preset={preset}"
    table = f"{site}&part=customers"
    roll = rng.random()
    if roll < 0.3:
        table += f"&sort={rng.choice(('balance', 'name', 'energy'))}"
    elif roll < 0.5:
        table += f"&page={rng.randint(2, 5)}"
    htmx = {"HX-Request": "true", "HX-Target": "customers"}
    return [
        ("overview", f"/dashboard/?preset={preset}", {}),
        ("region", f"/dashboard/region/{fleet.region_id}/?preset={preset}", {}),
        ("site", site, {}),
        ("site table (htmx)", table, htmx),
        ("customer", f"/dashboard/customer/{rng.choice(fleet.customer_ids)}/", {}),
    ]


async def staff_session(run: Run, username: str, rng: random.Random) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=run.base, timeout=60) as client:
        await asyncio.sleep(rng.uniform(0, 3))
        if not await sign_in(client, run, username):
            return
        while not run.stopping:
            for kind, path, headers in pages(run.fleet, rng):
                if run.stopping:
                    return
                await run.call(kind, "GET", path, client=client, headers=headers)
                # The page and the table it asks for come back to back; think time otherwise.
                pause = 0.05 if kind == "site" else rng.uniform(2, 5)
                await run.until_stopped(asyncio.sleep(pause))


async def ussd_session(run: Run, rng: random.Random) -> None:
    """A customer on a feature phone after another, through Africa's Talking's callback:
    bench_ussd's scripts (balance, last bill, usage, a wrong choice, the language menu),
    the PIN once a session, ``--ussd-think`` seconds between answers (reading a screen,
    typing on a keypad). A reply must be 200 and start ``CON ``/``END ``; a PIN refused is
    an error."""
    import httpx
    from bench_ussd import SCRIPTS

    low, high = run.args.ussd_think
    async with httpx.AsyncClient(base_url=run.base, timeout=60) as client:
        await run.until_stopped(asyncio.sleep(rng.uniform(0, high * 4)))
        sessions = 0
        while not run.stopping:
            phone = rng.choice(run.fleet.phones)
            script = rng.choice(SCRIPTS)
            sessions += 1
            session = f"ATUid_load_{id(rng)}_{sessions}"
            for step in range(len(script) + 1):
                if step:
                    await run.until_stopped(asyncio.sleep(rng.uniform(low, high)))
                if run.stopping:
                    return
                kind = USSD_KINDS[1] if step and script[step - 1] == USSD_PIN else USSD_KINDS[0]
                body = {
                    "sessionId": session,
                    "serviceCode": "*384*2026#",
                    "phoneNumber": phone,
                    "networkCode": "63902",
                    "text": "*".join(script[:step]),
                }
                began = time.perf_counter()
                try:
                    answer = await client.post("/ussd/africastalking/", data=body)
                except Exception as exc:  # noqa: BLE001 - transport errors count
                    run.stats.record(kind, time.perf_counter() - began, None, repr(exc))
                    break
                took, reply = time.perf_counter() - began, answer.text
                ok = answer.status_code == 200 and reply.startswith(("CON ", "END "))
                refused = kind == USSD_KINDS[1] and ("PIN" in reply or "locked" in reply)
                run.stats.record(
                    kind, took, answer.status_code, f"{body['text']!r}: {reply[:120]!r}",
                    ok=ok and not refused,
                )  # fmt: skip
                if not ok or reply.startswith("END "):
                    break


# --- the run ------------------------------------------------------------------------------


class Run:
    def __init__(self, args, fleet: Fleet, port: int, edge_port: int) -> None:
        self.args, self.fleet = args, fleet
        self.base = f"http://127.0.0.1:{port}"  # staff pages and /healthz
        self.edge_base = f"http://127.0.0.1:{edge_port}"  # the gateways' edge API
        self.speedup = args.speedup
        self.interval_s = LOG_INTERVAL_S / args.speedup
        self.first_boundary_s = min(10.0, args.duration / 4)
        last_due = self.first_boundary_s + args.spread + args.upload_spread
        if last_due >= args.duration:
            print(
                f"Note: the first interval's batches are due until {last_due:g} s, past the "
                f"{args.duration:g} s of load: some gateways will send none (shorten --spread "
                "or --upload-spread)"
            )
        self.stats = Stats()
        self.stopping = False
        self.aborted = False
        self.stop_event: asyncio.Event | None = None
        self.left_unsent = 0
        # Simulated clock: interval 0 is the boundary just before now less the run's
        # compressed span, so no reading is in the future.
        span = dt.timedelta(seconds=(args.duration + 60) * args.speedup)
        start = dt.datetime.now(dt.UTC) - span
        self.sim_start = start - dt.timedelta(seconds=start.timestamp() % LOG_INTERVAL_S)
        self.t0 = self.stop_at = 0.0
        self.client = None

    def boundary_at(self, k: int) -> float:
        """When interval ``k``'s boundary passes in the run (monotonic clock)."""
        return self.t0 + self.first_boundary_s + k * self.interval_s

    def boundary(self, k: int) -> dt.datetime:
        return self.sim_start + dt.timedelta(seconds=k * LOG_INTERVAL_S)

    async def until_stopped(self, awaitable) -> None:
        """Wait for ``awaitable`` or the end of the load, whichever comes first."""
        task = asyncio.ensure_future(awaitable)
        stop = asyncio.ensure_future(self.stop_event.wait())
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        for t in (task, stop):
            if not t.done():
                t.cancel()

    async def call(self, kind: str, method: str, path: str, *, client=None, **kw):
        """One request, timed and recorded: (status, JSON answer, Retry-After in seconds)."""
        s = self.stats
        # The gateways share a bounded pool; its slots are handed out here (httpx's own
        # queue of waiting requests grows costly with a thousand of them). A gateway's
        # latency counts its wait for a slot, as a Pi's would count the server's backlog.
        shared = client is None
        client = client or self.client
        began = time.perf_counter()
        # A gateway gives up after the agent's 30 s, its wait for a slot included. The
        # deadline is httpx's own timeout, not a cancellation: a request cancelled half
        # way leaves a connection open with nothing sent, and a sync worker that accepted
        # it waits on it until gunicorn kills the worker (30 s).
        acquired = False
        try:
            if shared:
                await asyncio.wait_for(self.slots.acquire(), AGENT_TIMEOUT_S)
                acquired = True
                s.pool_wait.append(time.perf_counter() - began)
            left = AGENT_TIMEOUT_S - (time.perf_counter() - began) if shared else 60.0
            s.in_flight += 1
            s.most_in_flight = max(s.most_in_flight, s.in_flight)
            try:
                response = await client.request(method, path, timeout=max(left, 1.0), **kw)
            finally:
                s.in_flight -= 1
        except Exception as exc:  # noqa: BLE001 - transport errors and timeouts count
            if not self.aborted:  # not the requests cut short when the run is given up
                s.record(kind, time.perf_counter() - began, None, repr(exc))
            return None, None, None
        finally:
            if acquired:
                self.slots.release()
        took = time.perf_counter() - began
        code = response.status_code
        s.record(kind, took, code, "" if code < 300 else f"{path}: {response.text[:200]}")
        retry_after = None
        with contextlib.suppress(ValueError):
            retry_after = float(response.headers.get("Retry-After", ""))
        if not response.headers.get("Content-Type", "").startswith("application/json"):
            return code, None, retry_after
        try:
            return code, response.json(), retry_after
        except ValueError:
            return code, None, retry_after

    async def healthz(self) -> None:
        import httpx

        async with httpx.AsyncClient(base_url=self.base, timeout=30) as client:
            while not self.stopping:
                await self.call("/healthz (reference)", "GET", "/healthz", client=client)
                await self.until_stopped(asyncio.sleep(0.5))

    async def lag(self) -> None:
        """How late the event loop wakes: the harness's own delay in every figure."""
        while not self.stopping:
            began = time.perf_counter()
            await asyncio.sleep(0.1)
            self.stats.loop_lag.append(time.perf_counter() - began - 0.1)

    async def main(self) -> None:
        import httpx

        self.stop_event = asyncio.Event()
        self.slots = asyncio.Semaphore(self.args.connections)
        limits = httpx.Limits(
            max_connections=self.args.connections, max_keepalive_connections=self.args.connections
        )
        rng = random.Random(10)
        for n in rng.sample(range(len(self.fleet.gateways)), self.args.backlog):
            self.fleet.gateways[n].backlog = True
        async with httpx.AsyncClient(
            base_url=self.edge_base, timeout=httpx.Timeout(30, pool=None), limits=limits
        ) as client:
            self.client = client
            self.t0 = time.monotonic()
            self.stop_at = self.t0 + self.args.duration
            gateways = [
                Gateway(g, self, random.Random(n)) for n, g in enumerate(self.fleet.gateways)
            ]
            tasks = [asyncio.create_task(g.live()) for g in gateways]
            tasks += [
                asyncio.create_task(staff_session(self, u, random.Random(f"staff{u}")))
                for u in self.fleet.staff
            ]
            tasks += [
                asyncio.create_task(ussd_session(self, random.Random(f"ussd{n}")))
                for n in range(self.args.ussd)
            ]
            tasks += [asyncio.create_task(self.healthz()), asyncio.create_task(self.lag())]
            await asyncio.sleep(self.args.duration)
            self.stopping = True
            self.stop_event.set()
            done, pending = await asyncio.wait(tasks, timeout=self.args.drain)
            self.left_unsent = sum(len(b["readings"]) for g in gateways for _, b, _ in g.outbox)
            self.aborted = True  # a cancellation swallowed by wait_for must not loop on
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending, timeout=10)
            if pending:
                self.stats.error(
                    "end of run", f"{len(pending)} tasks still waiting {self.args.drain} s after"
                )
            for t in done:
                if t.exception() is not None:
                    self.stats.error("harness", repr(t.exception()))
            self.elapsed = time.monotonic() - self.t0


def without_load(base: str, fleet: Fleet, username: str, count: int) -> dict[str, list[float]]:
    """Each dashboard page (and /healthz) ``count`` times one after another, before the load."""
    import httpx

    async def go():
        run = type("R", (), {})()
        run.base = base
        stats = Stats()
        run.stats = stats
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            if not await sign_in(client, run, username):
                raise SystemExit("sign-in failed before the load")
            rng = random.Random(1)
            for _ in range(2):  # warm every worker's caches
                for _kind, path, headers in pages(fleet, rng):
                    await client.get(path, headers=headers)
            took: dict[str, list[float]] = {}
            for n in range(count):
                for kind, path, headers in pages(fleet, rng) + [("/healthz", "/healthz", {})]:
                    began = time.perf_counter()
                    response = await client.get(path, headers=headers)
                    took.setdefault(kind, []).append(time.perf_counter() - began)
                    if response.status_code != 200:
                        raise SystemExit(f"{path}: HTTP {response.status_code} before the load")
                del n
            return took

    return asyncio.run(go())


def pools(args) -> str:
    if not args.edge_workers:
        return f"one gunicorn pool of {args.workers} sync workers"
    return (
        f"gunicorn: web pool {args.workers} sync workers (staff, /healthz), edge pool "
        f"{args.edge_workers} (gateways, nice {args.edge_nice})"
    )


def report(args, run: Run, fleet: Fleet, quiet: dict[str, list[float]], loads: dict) -> dict:
    s = run.stats
    elapsed = run.elapsed
    order = ["readings", "readings, backlog", "heartbeat", "config", "sign-in"]
    order += list(DASHBOARD_KINDS) + list(USSD_KINDS) + ["/healthz (reference)"]
    order += [k for k in s.kinds if k not in order]
    print(
        f"\n{len(fleet.gateways):,} gateways ({fleet.meters:,} meters), {len(fleet.staff)} staff "
        f"sessions, {args.ussd} USSD sessions at a time, {args.duration} s of load "
        f"(+{elapsed - args.duration:.1f} s to finish), "
        f"{pools(args)}; client pool {args.connections} connections "
        f"(latency counts the wait for one)"
    )
    print(
        f"\n   {'kind':<22}{'requests':>9}{'errors':>7}{'409/429':>8}"
        f"{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}  (ms)"
    )
    figures: dict = {"kinds": {}}
    errors = 0
    for name in order:
        k = s.kinds.get(name)
        if k is None:
            continue
        errors += k.errors
        figures["kinds"][name] = {
            "requests": len(k.took),
            "errors": k.errors,
            "expected_409_429": k.expected,
            "codes": {str(c): n for c, n in k.codes.items()},
            "p50_ms": pct(k.took, 50),
            "p95_ms": pct(k.took, 95),
            "p99_ms": pct(k.took, 99),
            "max_ms": max(k.took) * 1000 if k.took else float("nan"),
            "samples": k.samples,
        }
        f = figures["kinds"][name]
        print(
            f"   {name:<22}{f['requests']:>9,}{k.errors:>7}{k.expected:>8}"
            f"{f['p50_ms']:>9.1f}{f['p95_ms']:>9.1f}{f['p99_ms']:>9.1f}{f['max_ms']:>9.1f}"
        )
    for name, k in s.kinds.items():
        for sample in k.samples:
            print(f"   ! {name}: {sample}")
    real_readings = fleet.meters / LOG_INTERVAL_S
    rate = s.accepted / elapsed
    steady = (s.accepted - s.accepted_backlog) / elapsed
    print(
        f"\nReadings: {s.accepted:,} accepted ({rate:,.1f}/s), {s.duplicates} duplicates, "
        f"{s.rejected} rejected, {s.flagged} flagged; {run.left_unsent:,} left unsent at the end; "
        f"{len(s.served):,} of {len(fleet.gateways):,} gateways had a batch stored."
    )
    for reason, n in s.reasons.most_common(5):
        print(f"   ! rejected or flagged ({n}+): {reason}")
    real_hb = len(fleet.gateways) / HEARTBEAT_S
    hb = len(s.kind("heartbeat").took) / elapsed
    batches = sum(len(s.kind(k).took) for k in ("readings", "readings, backlog")) / elapsed
    print(
        f"Real world: {len(fleet.gateways):,} gateways x {fleet.meters / len(fleet.gateways):.1f} "
        f"meters at a {LOG_INTERVAL_S // 60}-minute interval = {real_readings:.1f} readings/s "
        f"({len(fleet.gateways) / LOG_INTERVAL_S:.2f} batches/s, each burst of "
        f"{len(fleet.gateways):,} batches within {SWEEP_SPREAD_S + UPLOAD_SPREAD_S:.0f} s of "
        "the boundary), "
        f"{real_hb:.2f} heartbeats/s.\nThis run: {rate:,.1f} readings/s, "
        f"{steady:,.1f}/s without the backlogs ({steady / real_readings:.1f}x), "
        f"{batches:.1f} batches/s, {hb:.1f} heartbeats/s "
        f"({hb / real_hb:.1f}x); intervals {args.speedup:g}x faster, each one's batches within "
        f"{args.spread + args.upload_spread:g} s (real: {SWEEP_SPREAD_S + UPLOAD_SPREAD_S:g} s: "
        f"the sweep's {SWEEP_SPREAD_S:g} and the agents' spread of {UPLOAD_SPREAD_S:g})."
    )
    for k, due in sorted(s.due.items()):
        print(
            f"Interval {k}: {s.answered[k]:,} of its {due:,} batches answered, the last "
            f"{s.bursts.get(k, math.nan):.1f} s after the boundary (the next boundary "
            f"{run.interval_s:.0f} s later here, {LOG_INTERVAL_S} s in the real world)"
        )
    lag = s.loop_lag or [0.0]
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    harness_cpu = cpu.ru_utime + cpu.ru_stime - loads["cpu_before"]
    print(
        f"Harness: most requests in flight {s.most_in_flight}; a gateway's wait for a pool "
        f"slot p95 {pct(s.pool_wait, 95):.1f} ms; event-loop lag p95 "
        f"{pct(lag, 95):.1f} ms, max {max(lag) * 1000:.1f} ms; its CPU {harness_cpu:.0f} s "
        f"in {elapsed:.0f} s ({harness_cpu / elapsed:.2f} of a CPU)"
    )
    print(
        f"Load average: before set-up {loads['setup']}; before the load {loads['before']}; "
        f"at its end {loads['after']}"
    )

    health = s.kind("/healthz (reference)").took
    ref_quiet = pct(quiet["/healthz"], 95)
    print(
        f"\nReferences in the same run: /healthz p95 {ref_quiet:.1f} ms without load, "
        f"{pct(health, 95):.1f} ms under load ({pct(health, 95) / ref_quiet:.1f}x)."
    )
    print(f"   {'page':<22}{'p95 without load':>18}{'p95 under load':>16}{'ratio':>7}")
    for name in DASHBOARD_KINDS:
        a, b = pct(quiet[name], 95), pct(s.kind(name).took, 95)
        print(f"   {name:<22}{a:>15.1f} ms{b:>13.1f} ms{b / a:>7.1f}")
        figures.setdefault("without_load_p95_ms", {})[name] = a

    site_p95 = pct(s.kind("site").took, 95)
    batch_p95 = pct(s.kind("readings").took, 95)
    backlog = s.kind("readings, backlog").took
    goals = [
        (
            "hard",
            "no errors (any answer but 2xx/409/429, no answer, unanswered)",
            errors == 0,
            f"{errors} errors",
        ),
        (
            "hard",
            "every gateway had its readings stored",
            len(s.served) == len(fleet.gateways),
            f"{len(s.served):,} of {len(fleet.gateways):,}",
        ),
        (
            "hard",
            "the server kept pace: no reading left unsent at the end",
            run.left_unsent == 0,
            f"{run.left_unsent:,} unsent",
        ),
        (
            "hard",
            "each interval's batches all answered before the next boundary",
            all(s.answered[k] == due and s.bursts[k] < run.interval_s for k, due in s.due.items()),
            ", ".join(
                f"{s.answered[k]:,}/{due:,} in {s.bursts.get(k, math.nan):.1f} s"
                for k, due in sorted(s.due.items())
            )
            or "none",
        ),
        (
            "hard" if not args.no_latency_goals else "info",
            f"site dashboard p95 < {GOAL_DASHBOARD_MS} ms under load (docs/dashboards.md)",
            site_p95 < GOAL_DASHBOARD_MS,
            f"p95 {site_p95:.0f} ms",
        ),
        (
            "info",
            f"a gateway's batch p95 < {BATCH_REFERENCE_MS} ms (docs/metering.md measured "
            "176-299 ms for 1,000 readings)",
            batch_p95 < BATCH_REFERENCE_MS,
            f"p95 {batch_p95:.0f} ms",
        ),
    ]
    ussd_menu, ussd_pin = (s.kind(k).took for k in USSD_KINDS)
    if args.ussd:
        latency = "hard" if not args.no_latency_goals else "info"
        goals += [
            (
                latency,
                f"USSD menu step p99 < {USSD_MENU_GOAL_MS} ms under load (docs/ussd.md)",
                pct(ussd_menu, 99) < USSD_MENU_GOAL_MS,
                f"p99 {pct(ussd_menu, 99):.0f} ms, {len(ussd_menu)} steps",
            ),
            (
                latency,
                f"USSD PIN check p99 < {USSD_PIN_GOAL_MS} ms under load (docs/ussd.md)",
                pct(ussd_pin, 99) < USSD_PIN_GOAL_MS,
                f"p99 {pct(ussd_pin, 99):.0f} ms, {len(ussd_pin)} checks",
            ),
        ]
    if backlog:
        goals.append(
            (
                "info",
                f"a ~1,000-reading backlog batch p95 < {BATCH_REFERENCE_MS} ms",
                pct(backlog, 95) < BATCH_REFERENCE_MS,
                f"p95 {pct(backlog, 95):.0f} ms, {len(backlog)} batches",
            )
        )
    goals.append(
        (
            "info",
            "ingest API / COPY >= 0.3 (docs/metering.md): measured by bench_ingest at "
            "full rate; here the offered rate",
            True,
            f"{rate:,.0f} readings/s accepted",
        )
    )
    print("\nGoals (hard: fail the run; info: printed; the machine is shared, so latency")
    print("is read with the references above):")
    failed = False
    for level, text, met, figure in goals:
        print(f"   [{level}] {text}: {'met' if met else 'NOT MET'} ({figure})")
        failed |= level == "hard" and not met
    figures.update(
        accepted=s.accepted,
        duplicates=s.duplicates,
        rejected=s.rejected,
        flagged=s.flagged,
        readings_per_s=rate,
        real_readings_per_s=real_readings,
        served=len(s.served),
        gateways=len(fleet.gateways),
        meters=fleet.meters,
        left_unsent=run.left_unsent,
        errors=errors,
        elapsed_s=elapsed,
        load_average=loads,
        goals=[{"level": g[0], "goal": g[1], "met": g[2], "figure": g[3]} for g in goals],
        failed=failed,
    )
    return figures


def server_and_name(url: str) -> tuple[str, str]:
    """``postgres://…/name`` as the server's URL and the database's name."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="")), parts.path.lstrip("/")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=120, help="seconds of load")
    parser.add_argument("--gateways", type=int, default=1000)
    parser.add_argument("--staff", type=int, default=4, help="staff sessions")
    parser.add_argument(
        "--ussd", type=int, default=10, help="USSD sessions at a time (customers' phones)"
    )
    parser.add_argument(
        "--ussd-think",
        type=float,
        nargs=2,
        default=(4.0, 8.0),
        metavar=("LOW", "HIGH"),
        help="seconds between a USSD screen and the answer (default 4 8, as bench_ussd)",
    )
    parser.add_argument("--speedup", type=float, default=3, help="intervals this much faster")
    parser.add_argument(
        "--spread",
        type=float,
        default=SWEEP_SPREAD_S,
        help="seconds after the boundary until the sweep's readings are in (real: 11)",
    )
    parser.add_argument(
        "--upload-spread",
        type=float,
        default=UPLOAD_SPREAD_S,
        help="the agents' upload_spread_s: each gateway's fixed delay is below it "
        f"(default {UPLOAD_SPREAD_S:g}; 0: every batch within --spread of the boundary)",
    )
    parser.add_argument("--customers", type=int, default=1000, help="on the dashboard site")
    parser.add_argument("--backlog", type=int, default=20, help="gateways back from an outage")
    parser.add_argument(
        "--references", type=int, default=10, help="times each page is timed without load"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="the web pool's sync workers (WEB_CONCURRENCY)"
    )
    parser.add_argument(
        "--edge-workers",
        type=int,
        default=3,
        help="the edge pool's sync workers (EDGE_CONCURRENCY); 0: one pool serves all",
    )
    parser.add_argument(
        "--edge-nice", type=int, default=10, help="the edge pool's lower CPU priority"
    )
    parser.add_argument("--connections", type=int, default=200, help="the gateways' pool")
    parser.add_argument("--database-url", default=f"{SERVER}/{DB_NAME}")
    parser.add_argument("--drain", type=float, default=45, help="seconds to finish after")
    parser.add_argument("--timeout", type=float, default=900, help="the whole run, hard")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--no-latency-goals", action="store_true")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    started = time.perf_counter()

    def too_long(*_):
        raise SystemExit(f"load test: hard timeout of {args.timeout:.0f} s reached")

    signal.signal(signal.SIGALRM, too_long)
    faulthandler.dump_traceback_later(max(1, args.timeout - 5))  # where it hangs, if it does
    signal.alarm(int(args.timeout))
    pg_server, db_name = server_and_name(args.database_url)
    create_scratch(db_name, pg_server)
    env = bench_env(args.database_url)
    os.environ.update(env)
    loads = {"setup": load_average()}
    server = edge = None
    failed = True
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        began = time.perf_counter()
        call_command("migrate", verbosity=0)
        migrated = time.perf_counter() - began
        now = dt.datetime.now(dt.UTC)
        the_fleet = fleet(args.gateways, args.staff, args.customers, now, random.Random(8))
        print(
            f"PostgreSQL {connection.pg_version // 10000}, database {db_name}: migrated in "
            f"{migrated:.0f} s; the dashboard site ({len(the_fleet.customer_ids):,} customers, "
            f"a year of data) and {len(the_fleet.gateways):,} gateways with "
            f"{the_fleet.meters:,} meters set up in {time.perf_counter() - began - migrated:.0f} s"
        )
        connection.close()
        server = Gunicorn(["--workers", str(args.workers)], env)
        if args.edge_workers:
            edge = Gunicorn(["--workers", str(args.edge_workers)], env, nice=args.edge_nice)
        base = f"http://127.0.0.1:{server.port}"
        quiet = without_load(base, the_fleet, the_fleet.staff[0], args.references)
        loads["before"] = load_average()
        loads["cpu_before"] = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
        print(f"Load average before the load: {loads['before']}; {args.duration:g} s of load...")
        run = Run(args, the_fleet, server.port, edge.port if edge else server.port)
        asyncio.run(run.main())
        print(f"Load over; reporting ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
        loads["after"] = load_average()
        figures = report(args, run, the_fleet, quiet, loads)
        failed = figures["failed"]
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=1, default=str))
    finally:
        signal.alarm(0)
        for pool in (server, edge):
            if pool is not None:
                pool.stop()
        if not args.keep:
            drop_scratch(db_name, pg_server)
    print(f"\n(whole run {time.perf_counter() - started:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
