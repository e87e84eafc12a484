"""The scheduled task that keeps the readings table's monthly partitions ahead of time.

Readings whose month has no partition are quarantined (there is no default
partition, see ``metering.partitions``), so the months to come must exist before
their first reading arrives. The task runs daily: it is a no-op on all but one day
a month, and a missed or failed run is made good the next day with three months
of margin.

``SCHEDULE`` is this task's beat entry, in the shape ``metering.schedules.Schedule``
takes (``Schedule(**SCHEDULE)``).
"""

from __future__ import annotations

import datetime as dt

from celery import shared_task

from metering import partitions

AHEAD_MONTHS = 3
BACK_MONTHS = 1

SCHEDULE = {
    "name": "metering.ensure_reading_partitions",
    "task": "metering.partition_tasks.ensure_reading_partitions",
    "every": dt.timedelta(days=1),
    "description": "Create the readings table's monthly partitions "
    f"{AHEAD_MONTHS} months ahead (quarantine takes readings of months without one).",
}


@shared_task(acks_late=True)
def ensure_reading_partitions(
    now: str | None = None, back: int = BACK_MONTHS, ahead: int = AHEAD_MONTHS
) -> list[str]:
    """Create the partitions from ``back`` months ago to ``ahead`` months on; returns new ones.

    ``now`` (RFC 3339, optional) stands in for the current time.
    """
    at = dt.datetime.fromisoformat(now) if now else None
    created = partitions.ensure_ahead(now=at, back=back, ahead=ahead)
    return [f"{month:%Y-%m}" for month in created]
