"""The agent and its link in one process, on a FakeClock: intervals, heartbeats, 401s."""

from dataclasses import replace

import pytest

from edge_agent.agent import Agent
from edge_agent.clock import FakeClock
from edge_agent.config import AgentConfig, MeterConfig
from edge_agent.link import Link
from edge_agent.uploader import AUTH_HOLD_S, Api, upload_offset


@pytest.fixture
def rig(tmp_path, simbus, platform):
    sim = simbus("10:DDSU666,100:DTSU666")
    cfg = AgentConfig(port=sim.listen, server_url=platform.url, token="secret",
                      gateway="kla-block-a", state_dir=str(tmp_path), log_interval_s=900,
                      meters=(MeterConfig(10, "DDSU666"), MeterConfig(100, "DTSU666")))
    platform.config.update(meters=[{"address": 10, "model": "DDSU666"},
                                   {"address": 100, "model": "DTSU666"}])
    clock = FakeClock()  # 2026-04-04 15:14:50 UTC
    agent = Agent(cfg, clock, sync_check=lambda: True)
    link = Link(agent, Api(platform.url, lambda: agent.cfg.read_token()), clock)
    link.open()
    yield agent, link, clock, platform
    link.outbox.close()
    agent.outbox.close()
    agent.bus.close()


def offset(agent) -> float:
    return upload_offset(agent.cfg.gateway, agent.cfg.upload_spread_s, agent.cfg.log_interval_s)


def test_a_new_interval_waits_for_the_gateways_own_delay(rig):
    """A fleet's gateways all read at the boundary; each sends a fixed delay after it (from
    its name, below upload_spread_s), so their uploads do not land in the same second."""
    agent, link, clock, platform = rig
    delay = offset(agent)
    assert 0 < delay < agent.cfg.upload_spread_s == 60
    clock.advance(15)  # 15:15:05: the first sweep after the boundary reads the meters
    agent.step()
    link.step()
    assert not platform.stored and link.outbox.stats()["pending_readings"] == 2
    clock.advance(delay - 5 - 0.5)  # 15:15:00 + delay - 0.5 s: still waiting
    link.step()
    assert not platform.stored
    clock.advance(1)
    link.step()
    assert len(platform.stored) == 2
    # The next interval: the same delay after its boundary.
    clock.advance(900 - delay - 0.5 - 1 + 5)  # 15:30:05
    agent.step()
    link.step()
    assert len(platform.stored) == 2
    clock.advance(delay)
    link.step()
    assert len(platform.stored) == 4


def test_a_backlog_is_not_held(rig):
    """Readings older than the delay (an outage's backlog) go at once, the fresh ones with
    them; a spread of 0 holds nothing."""
    agent, link, clock, platform = rig
    clock.advance(15)
    agent.step()
    clock.advance(900)  # 15:30:05: no link since the last interval; two wait
    agent.step()
    link.step()
    assert len(platform.stored) == 4
    clock.advance(900)  # 15:45:05
    agent.step()
    agent.cfg = replace(agent.cfg, upload_spread_s=0.0)
    link.step()
    assert len(platform.stored) == 6


def test_readings_are_stamped_with_the_interval_boundary(rig):
    agent, link, clock, platform = rig
    agent.step()  # 15:14:50: the 15:00 boundary is too far back, nothing owed
    link.step()
    assert not platform.stored
    clock.advance(15)  # 15:15:05, the first sweep after the boundary
    agent.step()
    clock.advance(10)
    agent.step()  # a second sweep in the same interval takes no second reading
    clock.advance(offset(agent))  # the gateway's own delay after the boundary (below)
    link.step()
    assert sorted(platform.stored) == [(10, "2026-04-04T15:15:00Z"),
                                       (100, "2026-04-04T15:15:00Z")]
    reading = platform.stored[(100, "2026-04-04T15:15:00Z")]
    assert set(reading) >= {"energy_kwh", "voltage_v", "current_a", "power_kw",
                            "power_factor", "frequency_hz"}


def test_heartbeat_carries_what_the_contract_lists(rig):
    agent, link, clock, platform = rig
    agent.step()
    link.step()
    beat = platform.heartbeats[-1]
    assert set(beat) >= {"gateway", "agent_version", "config_version", "uptime_s",
                         "clock_synced", "outbox", "bus", "meters"}
    assert set(beat["outbox"]) >= {"pending_readings", "oldest_pending_ts",
                                   "dead_letter_batches", "dropped_readings", "disk_free_mb"}
    assert set(beat["bus"]) >= {"port_open", "last_sweep_s"}
    assert set(beat["meters"][0]) == {"address", "ok", "last_ok_at", "errors_24h",
                                      "last_error"}
    assert beat["meters"][0]["errors_24h"] == {"timeout": 0, "crc": 0, "exception": 0,
                                               "implausible": 0}
    link.step()
    assert len(platform.heartbeats) == 1  # the next one waits for heartbeat_interval_s
    clock.advance(agent.cfg.heartbeat_interval_s)
    link.step()
    assert len(platform.heartbeats) == 2


def test_a_refused_token_is_said_loudly_and_uploads_are_held(rig, caplog):
    agent, link, clock, platform = rig
    clock.advance(15)
    agent.step()
    platform.tokens = {"rotated-elsewhere"}
    clock.advance(offset(agent))
    link.step()
    assert "REFUSES THIS GATEWAY'S TOKEN" in caplog.text
    assert not platform.stored and link.outbox.stats()["pending_readings"] == 2
    platform.tokens = {"secret"}  # fixed on the server's side
    clock.advance(agent.cfg.heartbeat_interval_s)
    link.step()
    assert platform.heartbeats[-1]["outbox"]["upload_held_401"] is True
    assert not platform.stored
    clock.advance(AUTH_HOLD_S)
    link.step()
    assert len(platform.stored) == 2
