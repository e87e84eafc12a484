from __future__ import annotations

import datetime as dt

import pytest

from mcoms.core import clock
from tests.conftest import T0


class Clock:
    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at

    def advance(self, **delta) -> dt.datetime:
        self.at += dt.timedelta(**delta)
        return self.at


@pytest.fixture
def now(monkeypatch) -> Clock:
    """The platform's clock, stopped at T0 (08:00 UTC, 11:00 in Kampala); ``now.advance(...)``."""
    stopped = Clock(T0)
    monkeypatch.setattr(clock, "now", stopped)
    return stopped
