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

import pytest

from metering.models import Gateway
from metering.plant.models import TelemetrySample
from tests.edge_agent.fake_openems import FakeOpenEMS
from tests.edge_agent.helpers import agent_env, free_port, start_agent, stop, wait_for, write_config

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


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
        wait_for(lambda: len(outbox_keys(state)) >= 3 * len(openems.values), timeout=30)
        stop(procs[-1], signal.SIGKILL)
        kept = outbox_keys(state)
        assert {c for _, c in kept} == set(openems.values)
        # 2. OpenEMS goes down; the agent comes back with the platform reachable.
        openems.down()
        procs.append(start_agent(config(live_server.url), env, tmp_path / "agent.log"))
        wait_for(lambda: kept <= stored_keys() and not outbox_keys(state), timeout=30)

        def heartbeat_says_openems_down():
            beat = Gateway.objects.get(pk=bus.gateway.pk).last_heartbeat or {}
            return (beat.get("plant") or {}).get("openems", {}).get("ok") is False

        wait_for(heartbeat_says_openems_down, timeout=30)
        assert procs[-1].poll() is None  # still running
        # 3. OpenEMS answers again: new samples follow.
        openems.up()
        wait_for(lambda: len(stored_keys()) > len(kept), timeout=30)
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
