"""Fixtures for the edge agent: a simulated bus and a fake platform, both real servers."""

from __future__ import annotations

import contextlib

import pytest

from edge_agent.simulator import SimBus, SimulatorThread, parse_meters

from .fake_platform import FakePlatform
from .helpers import free_port


@pytest.fixture
def simbus():
    """Start a simulated bus: ``simbus("10:DDSU666,100:DTSU666")`` -> SimulatorThread."""
    started = []

    def start(spec: str, variant: str | None = None, port: int | None = None, **kw):
        url = f"socket://127.0.0.1:{port or free_port()}"
        sim = SimulatorThread(SimBus(parse_meters(spec, variant), **kw), url).start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def platform():
    """A fake platform on a free local port."""
    fake = FakePlatform().start()
    yield fake
    fake.release.set()
    with contextlib.suppress(OSError):
        fake.stop()
