"""The service end to end: a real agent process, simulated meters, a fake platform.

Power cuts are stood in for by SIGKILL at the worst moments: in the middle of an
upload (the server stored the batch, the agent never heard back) and in the
middle of writing the outbox. Every committed reading must arrive exactly once.
"""

import shutil
import signal
import sqlite3
import subprocess
import time
from datetime import UTC, datetime

import pytest

from edge_agent.clock import iso
from edge_agent.simulator import SimBus, SimulatorThread, parse_meters

from .helpers import agent_env, start_agent, stop, wait_for, write_config

pytestmark = pytest.mark.slow

METERS = [{"address": 10, "model": "DDSU666"}, {"address": 11, "model": "DDSU666"},
          {"address": 100, "model": "DTSU666", "energy_register": "0x4000"}]


@pytest.fixture
def site(tmp_path, simbus, platform):
    """A bus of three meters, the platform configured for them, and an agent to start."""
    sim = simbus("10:DDSU666,11:DDSU666,100:DTSU666")
    platform.config.update(poll_interval_s=0.2, log_interval_s=1, heartbeat_interval_s=1,
                           serial={"baudrate": 115200}, meters=METERS)
    config = write_config(tmp_path / "config.yaml", server={"url": platform.url},
                          bus={"port": sim.listen}, meters=[], csv_log=True)
    env = agent_env(tmp_path)
    procs = []

    class Site:
        state = tmp_path / "state"
        log = tmp_path / "agent.log"

        def start(self, **extra_env):
            proc = start_agent(config, {**env, **extra_env}, self.log)
            procs.append(proc)
            return proc

        def committed(self) -> set:
            """(address, ts) of everything the agent has committed and not yet delivered."""
            db = sqlite3.connect(f"file:{self.state / 'outbox.sqlite3'}?mode=ro", uri=True)
            try:
                return set(db.execute("SELECT address, ts FROM readings"))
            finally:
                db.close()

    yield Site(), sim, platform
    for proc in procs:
        stop(proc, signal.SIGKILL)


def delivered_exactly_once(site, platform, keys):
    """Every key stored once, none still waiting in the outbox (so no resend is to come)."""
    if not keys <= set(platform.stored) or site.committed() & keys:
        return False
    assert platform.duplicates == 0 and platform.conflicts == 0
    return True


def test_readings_arrive_through_a_server_outage_exactly_once(site):
    s, sim, platform = site
    proc = s.start()
    wait_for(lambda: len(platform.stored) >= 6, timeout=15)
    port = platform.port
    platform.stop()
    went_down = iso(datetime.now(UTC))
    # Readings go on being taken and kept while the server is down.
    wait_for(lambda: len({k for k in s.committed() if k[1] > went_down}) >= 6, timeout=10)
    down = s.committed()
    platform.start(port)
    wait_for(lambda: delivered_exactly_once(s, platform, down), timeout=20)
    stop(proc)
    assert {a for a, ts in platform.stored if ts > went_down} == {10, 11, 100}
    reading = next(r for (a, _), r in platform.stored.items() if a == 100)
    assert len(reading["voltage_v"]) == 3 and reading["energy_kwh"] > 0
    csv_files = sorted((s.state / "data").glob("meter_*/meter_*_*.csv"))
    assert [f.parent.name for f in csv_files][:3] == ["meter_010", "meter_011", "meter_100"]
    lines = csv_files[0].read_text().splitlines()
    assert lines[0] == "timestamp,meter_id,V_L1_V,I_L1_A,P_total_kW,E_total_kWh"
    assert len(lines) > 3


def test_sigkill_in_the_middle_of_an_upload(site):
    s, sim, platform = site
    platform.hang.set()
    proc = s.start()
    wait_for(platform.hanging.is_set, timeout=15)  # the batch is stored; no answer yet
    stored_before = dict(platform.stored)
    [hung] = platform.posts
    proc.send_signal(signal.SIGKILL)
    proc.wait(5)
    pending = s.committed()
    assert set(stored_before) <= pending  # the agent cannot know: it must resend
    platform.hang.clear()
    platform.release.set()
    s.start()
    # The same batch, resent blindly after the restart, and answered as the first time.
    wait_for(lambda: delivered_exactly_once(s, platform, pending), timeout=20)
    assert platform.posts[hung] == 2
    assert platform.statuses("/api/v1/edge/readings").count(409) == 0


def test_sigkill_in_the_middle_of_writing_the_outbox(site):
    s, sim, platform = site
    proc = s.start()
    wait_for(lambda: len(platform.stored) >= 3, timeout=15)
    blocker = sqlite3.connect(s.state / "outbox.sqlite3", timeout=5)
    blocker.execute("BEGIN IMMEDIATE")  # the agent's next write now waits inside its transaction
    time.sleep(1.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(5)
    blocker.rollback()
    blocker.close()
    check = sqlite3.connect(s.state / "outbox.sqlite3")
    assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    check.close()
    pending = s.committed() | set(platform.stored)
    count = len(platform.stored)
    s.start()
    wait_for(lambda: delivered_exactly_once(s, platform, pending) and len(platform.stored) > count,
             timeout=20)


def test_repeated_power_cuts_lose_and_duplicate_nothing(site):
    s, sim, platform = site
    committed = set()
    for run_for in (1.2, 0.7, 1.5, 0.9):
        proc = s.start()
        time.sleep(run_for)
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        committed |= s.committed() | set(platform.stored)
    s.start()
    wait_for(lambda: delivered_exactly_once(s, platform, committed), timeout=20)


def test_a_meter_going_silent_and_one_answering_garbage(site):
    s, sim, platform = site
    sim.call(setattr, sim.bus.meters[11], "fault", "crc")
    s.start()
    wait_for(lambda: len([k for k in platform.stored if k[0] == 10]) >= 2, timeout=15)
    sim.call(setattr, sim.bus.meters[10], "fault", "silent")
    silenced = len([k for k in platform.stored if k[0] == 100])

    def reported():
        if not platform.heartbeats:
            return None
        meters = {m["address"]: m for m in platform.heartbeats[-1]["meters"]}
        if meters[10]["errors_24h"]["timeout"] and meters[11]["errors_24h"]["crc"]:
            return meters
        return None

    meters = wait_for(reported, timeout=15)
    assert meters[10]["ok"] is False and meters[10]["last_error"] == "timeout"
    assert meters[100]["ok"] is True
    wait_for(lambda: len([k for k in platform.stored if k[0] == 100]) >= silenced + 3, timeout=15)
    assert not [k for k in platform.stored if k[0] == 11]  # garbage is never a reading


def test_new_config_version_applies_without_restart_and_commands_run_once(site):
    s, sim, platform = site
    platform.config["meters"] = METERS[:1]
    proc = s.start()
    wait_for(lambda: any(k[0] == 10 for k in platform.stored), timeout=15)
    assert not any(k[0] == 100 for k in platform.stored)
    platform.commands = [{"id": "c-81", "type": "scan", "args": {"from": 9, "to": 12}},
                         {"id": "c-82", "type": "read", "args": {"address": 100,
                                                                 "model": "DTSU666"}},
                         {"id": "c-84", "type": "probe", "args": {"address": 100}},
                         {"id": "c-85", "type": "dance", "args": {}}]
    platform.config.update(version=2, meters=METERS)
    wait_for(lambda: any(k[0] == 100 for k in platform.stored), timeout=15)
    wait_for(lambda: len(platform.results) == 4, timeout=15)
    time.sleep(1.5)  # more heartbeats carry the same commands again
    assert proc.poll() is None  # no restart
    assert (s.state / "server-config.json").read_text().count('"version": 2') == 1
    assert {k: len(v) for k, v in platform.results.items()} == dict.fromkeys(
        ["c-81", "c-82", "c-84", "c-85"], 1)
    assert platform.results["c-85"][0]["status"] == "failed"
    assert platform.results["c-82"][0]["result"]["values"]["voltage_v"]
    assert platform.results["c-84"][0]["result"]["model"] == "DTSU666"
    [discovery] = platform.discoveries
    assert [f["address"] for f in discovery["found"]] == [10, 11]
    assert any(h["config_version"] == 2 for h in platform.heartbeats)
    stop(proc, signal.SIGKILL)
    s.start()  # a restart does not run them again either
    time.sleep(2)
    assert {k: len(v) for k, v in platform.results.items()} == dict.fromkeys(
        ["c-81", "c-82", "c-84", "c-85"], 1)


def test_no_interval_readings_until_the_clock_is_synchronised(site, tmp_path):
    s, sim, platform = site
    flag = tmp_path / "synced"
    config = (tmp_path / "config.yaml")
    config.write_text(config.read_text().replace("clock_sync: always",
                                                 f"clock_sync: file:{flag}"))
    s.start()
    wait_for(lambda: len(platform.heartbeats) >= 2 and platform.heartbeats[-1]["meters"],
             timeout=15)
    assert platform.heartbeats[-1]["clock_synced"] is False
    assert platform.heartbeats[-1]["meters"][0]["ok"] is True  # polled for bus health
    assert not platform.stored and not s.committed()
    flag.touch()
    wait_for(lambda: len(platform.stored) >= 3, timeout=15)


@pytest.mark.skipif(shutil.which("socat") is None,
                    reason="socat is not installed (apt-get install socat)")
def test_the_service_over_a_pty_pair_survives_the_adapter_unplugged(tmp_path, platform):
    meters_end, agent_end = tmp_path / "ttyMETERS", tmp_path / "ttyUSB0"

    def plug_in():
        proc = subprocess.Popen(["socat", f"pty,raw,echo=0,link={meters_end}",
                                 f"pty,raw,echo=0,link={agent_end}"], stderr=subprocess.DEVNULL)
        wait_for(lambda: meters_end.exists() and agent_end.exists(), timeout=5)
        sim = SimulatorThread(SimBus(parse_meters("10:DDSU666,100:DTSU666")), str(meters_end))
        return proc, sim.start()

    platform.config.update(poll_interval_s=0.2, log_interval_s=1, serial={"baudrate": 115200},
                           meters=[METERS[0], METERS[2]])
    config = write_config(tmp_path / "config.yaml", server={"url": platform.url},
                          bus={"port": str(agent_end)})
    socat, sim = plug_in()
    agent = start_agent(config, agent_env(tmp_path), tmp_path / "agent.log")
    try:
        wait_for(lambda: {a for a, _ in platform.stored} == {10, 100}, timeout=15)
        sim.stop()
        socat.kill()  # unplugged: the device node goes away
        socat.wait()
        wait_for(lambda: platform.heartbeats and not platform.heartbeats[-1]["bus"]["port_open"],
                 timeout=10)
        count = len(platform.stored)
        socat, sim = plug_in()
        wait_for(lambda: len(platform.stored) >= count + 4, timeout=15)
        assert agent.poll() is None
        assert platform.duplicates == 0
    finally:
        stop(agent)
        sim.stop()
        socat.kill()
        socat.wait()
