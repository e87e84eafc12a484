"""Fault drill: Redis (the broker) down while gateways send readings. See docs/fault-drills.md.

Real processes on a copy of the test database: gunicorn serving the edge API, a Redis of
our own as broker, later a Celery worker with beat. Redis is stopped; a gateway posts two
batches through the real API and a job queues an SMS: every answer is 2xx within a few
seconds and the readings are stored; the work they ask for waits in the outbox. Redis
comes back, a worker and the outbox sweep (beat, every second here) catch up: the hourly
and daily rollups are what a fresh computation gives and what the registers say, the SMS
is sent, and each task ran exactly once.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from decimal import Decimal

import pytest

from tests.ops.servers import (
    ROOT,
    RedisServer,
    Worker,
    drill_database,
    free_port,
    needs_redis_server,
    process_env,
    scratch_folder,
    wait_for,
)

# transaction=True: the test database is set up, and nothing holds a transaction open on it.
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), needs_redis_server]

START = dt.datetime(2026, 4, 4, 12, 0, tzinfo=dt.UTC)
STEP = dt.timedelta(minutes=15)
# Answers while the broker is down: a bounded publish, never the request's failure.
ANSWER_WITHIN = 5.0


def _build():
    """A site, a gateway with its token, two installed meters, an SMS template."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from mcoms.core import services as core_services
    from mcoms.core.audit import acting_as
    from mcoms.core.models import Cluster, Region, Site
    from metering import partitions, services, tokens
    from notifications.models import Channel, Language, MessageTemplate
    from tests.metering.edge_fixtures import INSTALLED_AT, install

    with acting_as(label="drill setup", channel="system"):
        region = Region.objects.create(name="Central", code="central")
        cluster = Cluster.objects.create(region=region, name="Kampala", code="kla")
        site = core_services.site_save(site=Site(cluster=cluster, name="Block A", code="kla"))
        gateway = services.gateway_create(
            site=site, name="kla-block-a", now=INSTALLED_AT - dt.timedelta(days=10)
        )
        token = tokens.token_issue(gateway=gateway)
    partitions.ensure_months([dt.date(2026, 3, 1), dt.date(2026, 4, 1), dt.date(2026, 5, 1)])
    meters = {10: install(site, gateway, 10), 100: install(site, gateway, 100, model="DTSU666")}
    MessageTemplate.objects.create(
        key="drill_notice", language=Language.ENGLISH, channel=Channel.SMS,
        body="Block A: supply work tonight.",
    )
    every, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(
        name="core.outbox_sweep", task="mcoms.core.tasks.outbox_sweep", interval=every
    )
    return token, meters


def _batch(n: int, start_register: dict[int, Decimal]) -> dict:
    """Eight quarter-hours of both meters: meter 10 uses 0.25 kWh, meter 100 0.5 kWh each."""
    readings = []
    for address, per_step in ((10, Decimal("0.25")), (100, Decimal("0.5"))):
        for k in range(8):
            i = n * 8 + k
            readings.append({
                "address": address,
                "ts": (START + i * STEP).isoformat().replace("+00:00", "Z"),
                "energy_kwh": float(start_register[address] + i * per_step),
                "voltage_v": [231.0] if address == 10 else [231.0, 230.0, 232.0],
                "current_a": [1.0] if address == 10 else [1.0, 1.0, 1.0],
                "power_kw": 1.0,
                "power_factor": 0.98,
                "frequency_hz": 50.0,
            })
    return {"batch_id": str(uuid.UUID(int=n + 1)), "gateway": "kla-block-a",
            "sent_at": "2026-04-04T16:00:00Z", "readings": readings}


def _post(base: str, token: str, body: dict) -> tuple[int, dict, float]:
    request = urllib.request.Request(
        base + "/api/v1/edge/readings", data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    began = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), time.monotonic() - began
    except urllib.error.HTTPError as exc:
        return exc.code, {"body": exc.read()[:500].decode(errors="replace")}, 0.0


def _healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=3) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _rollups():
    from metering.models import DailyUsage, HourlyUsage, SiteDailyUsage

    return (
        sorted(HourlyUsage.objects.values_list("meter_id", "hour", "kwh", "estimated_kwh",
                                               "intervals")),
        sorted(DailyUsage.objects.values_list("meter_id", "day", "kwh", "estimated_kwh")),
        sorted(SiteDailyUsage.objects.values_list("site_id", "day", "kwh")),
    )


@pytest.fixture
def folder():
    with scratch_folder("drill-redis-") as path:
        yield path


def test_readings_are_taken_while_redis_is_down_and_the_work_catches_up(
    django_db_blocker, folder
):
    from mcoms.core.models import OutboxTask, TaskDelivery
    from metering import rollups
    from metering.models import DailyUsage, HourlyUsage, Reading
    from notifications.models import Message

    began = time.monotonic()
    redis = RedisServer(folder)
    web = worker = None
    with drill_database(django_db_blocker, folder) as url:
        token, meters = _build()
        env = process_env(url, redis.url, folder / "var", OUTBOX_SWEEP_AFTER_SECONDS="0")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        try:
            redis.start()
            web = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "mcoms.wsgi:application", "-b",
                 f"127.0.0.1:{port}", "-w", "1", "--threads", "2", "--timeout", "60"],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            wait_for(lambda: _healthy(base), 30, "gunicorn to answer /healthz")

            redis.stop()  # the fault
            registers = {10: Decimal("100.00"), 100: Decimal("5000.00")}
            for n in range(2):
                status, body, took = _post(base, token, _batch(n, registers))
                assert status == 200, body
                assert body["accepted"] == 16 and took < ANSWER_WITHIN, (body, took)
            job = subprocess.run(
                [sys.executable, "manage.py", "shell", "-c",
                 "from notifications.services import send_message; "
                 "send_message(to='+256772000001', template='drill_notice', context={})"],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
            )
            assert job.returncode == 0, job.stderr[-2000:]

            assert Reading.objects.count() == 32
            assert not HourlyUsage.objects.exists()
            waiting = list(OutboxTask.objects.values_list("task", "attempts"))
            assert sorted(waiting) == [
                ("metering.tasks.refresh_rollups", 1),
                ("metering.tasks.refresh_rollups", 1),
                ("notifications.tasks.deliver_message", 1),
            ]
            assert Message.objects.get().status == Message.Status.QUEUED

            redis.start()  # back, on the same port, empty
            worker = Worker(env, folder / "worker.log", beat=True)
            worker.start()
            wait_for(
                lambda: not OutboxTask.objects.exists()
                and Message.objects.filter(status=Message.Status.SENT).exists()
                and TaskDelivery.objects.filter(
                    task="metering.tasks.refresh_rollups", finished=1
                ).count() == 2,
                30, "the worker and the outbox sweep to catch up",
            )
        finally:
            for proc in (worker,):
                if proc is not None:
                    proc.stop()
            if web is not None:
                web.terminate()
                web.wait(15)
            redis.stop()

        # Each piece of work ran once, the SMS went once.
        runs = sorted(TaskDelivery.objects.values_list("task", "started", "finished"))
        assert [r for r in runs if r[0] != "mcoms.core.tasks.outbox_sweep"] == [
            ("metering.tasks.refresh_rollups", 1, 1),
            ("metering.tasks.refresh_rollups", 1, 1),
            ("notifications.tasks.deliver_message", 1, 1),
        ]
        message = Message.objects.get()
        assert message.status == Message.Status.SENT and message.attempts == 1

        # The rollups are what they must be: what the registers say, hour by hour ...
        hourly = dict(
            HourlyUsage.objects.filter(meter=meters[10]).values_list("hour", "kwh")
        )
        assert sum(hourly.values()) == Decimal("3.75")  # 15 quarter-hours of 0.25 kWh
        assert hourly[START + dt.timedelta(hours=1)] == Decimal("1.000")
        total_100 = sum(DailyUsage.objects.filter(meter=meters[100]).values_list("kwh", flat=True))
        assert total_100 == Decimal("7.5")
        # ... and exactly what computing them afresh gives.
        caught_up = _rollups()
        rollups.refresh(meter_ids=[m.pk for m in meters.values()], start=START,
                        end=START + 16 * STEP)
        assert _rollups() == caught_up
    assert time.monotonic() - began < 90
