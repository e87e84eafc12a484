"""OpenEMS → edge agent → outbox → ``POST /api/v1/edge/plant`` → the plant's tables, end to end.

A real agent process polls a fake OpenEMS Edge (a real HTTP server with basic auth) and
uploads to the platform running as a live Django server, with the gateway's real token.
It first runs with the platform unreachable (samples wait in the outbox), is killed
with SIGKILL (a power cut), then runs against the platform: the backlog arrives once.
While OpenEMS is down the agent keeps running and says so in its heartbeat.
"""

from __future__ import annotations

import signal
import sqlite3
import time

import pytest
from django.db import OperationalError

from metering.models import Gateway
from metering.plant.models import TelemetrySample
from tests.edge_agent.fake_openems import FakeOpenEMS
from tests.edge_agent.helpers import (
    agent_env,
    free_port,
    start_agent,
    stop,
    wait_for,
    write_config,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def patiently(predicate):
    """The predicate, retried while SQLite's shared in-memory test database is locked by the
    live server's writes (PostgreSQL never says so)."""

    def check():
        try:
            return predicate()
        except OperationalError:
            time.sleep(0.1)
            return False

    return check


def outbox_keys(state) -> set:
    path = state / "outbox.sqlite3"
    if not path.exists():
        return set()
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return set(db.execute("SELECT ts, channel FROM plant_samples"))
    except sqlite3.OperationalError:
        return set()
    finally:
        db.close()


def stored_keys() -> set:
    return {
        (ts.strftime("%Y-%m-%dT%H:%M:%SZ"), channel)
        for ts, channel in TelemetrySample.objects.values_list("ts", "channel")
    }


def test_plant_samples_survive_an_offline_platform_and_a_power_cut_and_arrive_once(
    bus, live_server, tmp_path
):
    openems = FakeOpenEMS().start()
    procs = []
    try:

        def config(server_url: str):
            return write_config(
                tmp_path / "config.yaml",
                server={"url": server_url, "token": bus.token},
                meters=[],
                openems={"url": openems.url, "interval_s": 1, "timeout_s": 0.5},
            )

        env = agent_env(tmp_path)
        state = tmp_path / "state"
        # 1. The platform cannot be reached: samples are kept on the Pi.
        procs.append(
            start_agent(config(f"http://127.0.0.1:{free_port()}"), env, tmp_path / "agent.log")
        )
        wait_for(lambda: len(outbox_keys(state)) >= 3 * len(openems.values), timeout=60)
        stop(procs[-1], signal.SIGKILL)
        kept = outbox_keys(state)
        assert {c for _, c in kept} == set(openems.values)
        # 2. OpenEMS goes down; the agent comes back with the platform reachable.
        openems.down()
        procs.append(start_agent(config(live_server.url), env, tmp_path / "agent.log"))
        wait_for(patiently(lambda: kept <= stored_keys() and not outbox_keys(state)), timeout=60)

        def heartbeat_says_openems_down():
            beat = Gateway.objects.get(pk=bus.gateway.pk).last_heartbeat or {}
            return (beat.get("plant") or {}).get("openems", {}).get("ok") is False

        wait_for(patiently(heartbeat_says_openems_down), timeout=60)
        assert procs[-1].poll() is None  # still running
        # 3. OpenEMS answers again: new samples follow.
        openems.up()
        wait_for(patiently(lambda: len(stored_keys()) > len(kept)), timeout=60)
        stop(procs[-1])
        rows = TelemetrySample.objects.all()
        assert rows.count() == len(stored_keys())  # one row per (ts, channel)
        assert {r.site_id for r in rows} == {bus.gateway.site_id}
        soc = rows.filter(channel="_sum/EssSoc").first()
        assert soc.value == 63.0
    finally:
        for proc in procs:
            stop(proc, signal.SIGKILL)
        openems.down()


def test_the_main_meter_on_the_bus_reports_like_any_meter_and_counts_as_supply(
    bus, live_server, tmp_path
):
    """The simulated bus holds the DTSU666 main meter at 100 and a customer meter at 10; the
    agent polls what the platform's config lists and uploads readings; the plant takes the
    main meter's as supply and leaves it out of consumption."""
    from edge_agent.simulator import SimBus, SimulatorThread, parse_meters
    from mcoms.core import clock
    from mcoms.core.audit import acting_as
    from metering import partitions, services
    from metering.models import Reading
    from metering.plant import balance, selectors
    from metering.plant import services as plant_services

    partitions.ensure_ahead(now=clock.now(), back=1, ahead=1)
    with acting_as(label="test setup"):
        services.gateway_update(
            gateway=bus.gateway, log_interval_s=2, poll_interval_s=1, baudrate=115200
        )
        plant_services.asset_create(
            site=bus.gateway.site,
            kind="supply_meter",
            name="main_supply",
            source="bus_meter",
            meter=bus.three,
        )
    sim = SimulatorThread(
        SimBus(parse_meters("10:DDSU666,100:DTSU666")), f"socket://127.0.0.1:{free_port()}"
    ).start()
    config = write_config(
        tmp_path / "config.yaml",
        server={"url": live_server.url, "token": bus.token},
        bus={"port": sim.listen},
        meters=[],
    )
    proc = start_agent(config, agent_env(tmp_path), tmp_path / "agent.log")
    try:

        def both_reported():
            meters = set(Reading.objects.values_list("meter_id", flat=True))
            return {bus.single.pk, bus.three.pk} <= meters

        wait_for(patiently(both_reported), timeout=60)
    finally:
        stop(proc, signal.SIGKILL)
        sim.stop()
    assert selectors.is_supply_meter(bus.three.pk) and not selectors.is_supply_meter(bus.single.pk)
    today = clock.now().astimezone(bus.gateway.site.zone).date()
    # (The live server may still be writing the last batch: retry while SQLite is locked.)
    day = wait_for(patiently(lambda: balance.day_balance(bus.gateway.site, today)), timeout=30)
    # A few seconds of readings are no day's supply: named, not summed as supplied.
    short = day.detail.get("supply_meters_incomplete", []) + day.detail.get(
        "supply_meters_missing", []
    )
    assert short == [bus.three.serial]
    assert bus.three.serial not in {u["serial"] for u in day.uncertain}
