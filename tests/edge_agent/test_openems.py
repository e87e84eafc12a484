"""The agent's OpenEMS poller and plant queue, against a fake OpenEMS Edge REST server.

No Django here: the fake is a real local HTTP server with basic auth, the outbox a real
SQLite file. The end-to-end path to the platform's endpoint is in
``tests/plant/test_edge_plant_e2e.py``.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest

from edge_agent.agent import Agent
from edge_agent.clock import FakeClock
from edge_agent.config import ConfigError, parse_config
from edge_agent.openems import DEFAULT_CHANNELS, OpenEMSConfig, OpenEMSPoller, PlantQueue
from edge_agent.outbox import Outbox

from .fake_openems import FakeOpenEMS

START = datetime(2026, 4, 4, 15, 0, 2, tzinfo=UTC)


@pytest.fixture
def openems():
    fake = FakeOpenEMS().start()
    yield fake
    with contextlib.suppress(OSError):
        fake.down()


def poller(fake: FakeOpenEMS, clock: FakeClock, **kw) -> OpenEMSPoller:
    cfg = OpenEMSConfig(url=fake.url, interval_s=kw.pop("interval_s", 300), timeout_s=1.0, **kw)
    return OpenEMSPoller(cfg, clock)


def test_the_configuration_section_is_parsed_and_bad_values_name_their_key():
    base = {"bus": {"port": "socket://127.0.0.1:9"}}
    cfg, warnings = parse_config(
        {**base, "openems": {"url": "http://127.0.0.1:8084", "user": "x", "password": "pw",
                             "interval_s": 60, "colour": "red"}}, env={})
    assert cfg.openems == OpenEMSConfig(url="http://127.0.0.1:8084", user="x", password="pw",
                                        interval_s=60)
    assert cfg.openems.channels == DEFAULT_CHANNELS
    assert "unknown key openems.colour ignored" in warnings
    assert parse_config(base, env={})[0].openems is None
    with pytest.raises(ConfigError, match="openems.url"):
        parse_config({**base, "openems": {"url": "ftp://x"}}, env={})
    with pytest.raises(ConfigError, match="openems.channels"):
        parse_config({**base, "openems": {"url": "http://x", "channels": ["EssSoc"]}}, env={})


def test_each_boundary_gets_one_sample_of_every_channel_read_with_basic_auth(openems):
    clock = FakeClock(START)
    p = poller(openems, clock)
    samples = p.poll(synced=True)
    assert {s["channel"]: s["value"] for s in samples} == {
        k: float(v) for k, v in openems.values.items()
    }
    assert {s["ts"] for s in samples} == {"2026-04-04T15:00:00Z"}
    assert openems.gets(200) == len(openems.values)
    # The next sweep, same boundary: nothing owed, nothing asked.
    clock.advance(10)
    assert p.poll(synced=True) == []
    assert openems.gets() == len(DEFAULT_CHANNELS)  # the 404 of the one it lacks included
    # The next boundary.
    clock.advance(300)
    openems.values["_sum/EssSoc"] = 58
    later = {s["channel"]: s for s in p.poll(synced=True)}
    assert later["_sum/EssSoc"] == {"ts": "2026-04-04T15:05:00Z", "channel": "_sum/EssSoc",
                                    "value": 58.0}


def test_no_samples_while_the_clock_is_not_synchronised_or_past_half_an_interval(openems):
    clock = FakeClock(START)
    p = poller(openems, clock)
    p.poll_interval_s = 10.0
    assert p.poll(synced=False) == []
    clock.advance(200)  # 15:03:22: more than half of 300 s after the boundary
    assert p.poll(synced=True) == []
    assert openems.gets() == 0


def test_sweeps_slower_than_the_sampling_interval_still_sample_every_sweep(openems):
    clock = FakeClock(datetime(2026, 4, 4, 15, 0, 0, 800000, tzinfo=UTC))
    p = poller(openems, clock, interval_s=1)
    p.poll_interval_s = 10.0
    stamps = []
    for _ in range(3):
        stamps.append({s["ts"] for s in p.poll(synced=True)})
        clock.advance(10)  # always 0.8 s past a boundary: more than half of 1 s
    assert stamps == [{"2026-04-04T15:00:00Z"}, {"2026-04-04T15:00:10Z"},
                      {"2026-04-04T15:00:20Z"}]


def test_a_missing_channel_or_a_null_value_is_left_out_and_the_rest_is_read(openems):
    openems.values["_sum/EssSoc"] = None
    del openems.values["_sum/GridActivePower"]
    p = poller(openems, FakeClock(START))
    channels = {s["channel"] for s in p.poll(synced=True)}
    assert "_sum/EssSoc" not in channels and "_sum/GridActivePower" not in channels
    assert "_sum/ProductionActiveEnergy" in channels
    assert p.status.ok is True
    assert "_sum/GridActivePower" in p.status.missing_channels


def test_unreachable_openems_is_counted_and_tried_again_next_sweep(openems):
    clock = FakeClock(START)
    p = poller(openems, clock)
    openems.down()
    assert p.poll(synced=True) == []
    assert p.status.ok is False and p.status.errors == {"unreachable": 1}
    openems.up()
    clock.advance(10)
    samples = p.poll(synced=True)
    assert {s["ts"] for s in samples} == {"2026-04-04T15:00:00Z"}  # the owed boundary
    assert p.status.ok is True


def test_a_wrong_password_is_reported_and_stores_nothing(openems):
    p = poller(openems, FakeClock(START), password="wrong")
    assert p.poll(synced=True) == []
    assert p.status.errors == {"auth": 1}
    assert "401" in p.status.last_error
    assert openems.gets(401) == 1  # stopped at the first refusal


def test_the_plant_queue_keeps_samples_across_a_restart_and_never_twice(tmp_path, openems):
    path = tmp_path / "outbox.sqlite3"
    queue = PlantQueue(Outbox(path))
    samples = poller(openems, FakeClock(START)).poll(synced=True)
    assert queue.add(samples) == len(samples)
    assert queue.add(samples) == 0  # the same (ts, channel) again
    first = queue.next_batch("kla-block-a", "2026-04-04T15:00:03Z")
    queue.outbox.close()
    # Power cut: the file is opened afresh; the batch comes back byte for byte.
    again = PlantQueue(Outbox(path))
    assert again.next_batch("kla-block-a", "2026-04-04T16:00:00Z") == first
    assert again.last_ts() == "2026-04-04T15:00:00Z"
    assert again.stats()["pending_samples"] == len(samples)
    again.ack(first["batch_id"])
    assert again.next_batch("kla-block-a", "2026-04-04T16:00:00Z") is None
    # The readings' tables are untouched by plant samples.
    assert again.outbox.pending_count() == 0


def test_the_agent_keeps_sweeping_when_openems_is_down_and_samples_when_it_returns(
    tmp_path, openems
):
    cfg, _ = parse_config({
        "bus": {"port": "socket://127.0.0.1:9", "timeout_s": 0.05},
        "state_dir": str(tmp_path / "state"), "poll_interval_s": 1, "clock_sync": "always",
        "openems": {"url": openems.url, "interval_s": 60, "timeout_s": 1},
    }, env={})
    clock = FakeClock(START)
    agent = Agent(cfg, clock=clock, sync_check=lambda: True)
    try:
        openems.down()
        agent.step()  # no OpenEMS, no bus: the sweep still ends, with the status said
        assert agent.status["bus"]["port_open"] is False
        assert agent.openems.status.errors["unreachable"] == 1
        assert agent.plant.stats()["pending_samples"] == 0
        openems.up()
        clock.advance(5)
        agent.step()
        assert agent.plant.stats()["pending_samples"] == len(openems.values)
    finally:
        agent.bus.close()
        agent.openems.close()
        agent.outbox.close()
    # A restart remembers the boundary it sampled: nothing owed until the next one.
    agent = Agent(cfg, clock=clock, sync_check=lambda: True)
    try:
        assert agent.openems.due(True) is None
    finally:
        agent.bus.close()
        agent.openems.close()
        agent.outbox.close()
