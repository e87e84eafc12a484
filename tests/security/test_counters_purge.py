"""Failure counters are forgotten once they count nothing: past every window, no lock."""

from __future__ import annotations

import datetime as dt

from mcoms.security import limits
from mcoms.security.models import Counter
from metering import schedules


def test_purge_keeps_what_still_counts_or_locks(db, now):
    rule = limits.Rule("test-scope", 3, dt.timedelta(hours=1), dt.timedelta(days=30))
    limits.hit(rule, "old-and-forgotten")
    for _ in range(3):
        limits.hit(rule, "locked-for-a-month")  # the third locks it for 30 days
    now.advance(days=3)
    limits.hit(rule, "failed-today")
    assert limits.purge() == 1
    assert set(Counter.objects.values_list("key", flat=True)) == {
        "locked-for-a-month",
        "failed-today",
    }
    assert limits.locked_until(rule, "locked-for-a-month") is not None
    now.advance(days=40)  # the lock is over, the window long past: both go
    assert limits.purge() == 2 and not Counter.objects.exists()


def test_purge_runs_daily_from_beat(db, now):
    from mcoms.security.tasks import purge_counters

    rule = limits.Rule("test-scope", 5, dt.timedelta(minutes=15))
    limits.hit(rule, "someone")
    now.advance(days=2, seconds=1)
    assert purge_counters.apply().get() == 1
    (entry,) = [s for s in schedules.declared() if s.name == "security.purge_counters"]
    assert entry.task == "mcoms.security.tasks.purge_counters"
    assert entry.every == dt.timedelta(days=1)
