"""Operations' periodic tasks: readings retention and the threshold watch (docs/operations.md)."""

from __future__ import annotations

from celery import shared_task

from mcoms.core.audit import acting_as
from metering import retention


@shared_task(acks_late=True)
def archive_old_readings() -> list[str]:
    """Archive every month of raw readings past the retention age; returns the months done.

    Runs daily and does something once a month (when a month passes the age); a
    failed month stays in the database and is tried again the next day.
    """
    with acting_as(label="readings retention"):
        done = retention.archive_due()
    return [f"{result.month:%Y-%m}" for result in done]
