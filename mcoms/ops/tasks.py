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


@shared_task(acks_late=True)
def watch_operations() -> dict[str, list[str]]:
    """Evaluate the operations checks; tell admins of new, lasting and cleared failures."""
    from mcoms.ops import watch

    with acting_as(label="operations watch"):
        return watch.run()


@shared_task(acks_late=True)
def check_sms_balance() -> str:
    """Read the SMS provider's credit for the operations checks and /metrics."""
    from mcoms.ops import watch

    row = watch.check_sms_balance()
    if row is None:
        return "no credit to check for this provider"
    return row.error or f"{row.currency} {row.amount}"
