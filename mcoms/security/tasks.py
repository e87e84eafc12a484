"""Security's periodic task: forgetting failure counters that count nothing any more."""

from __future__ import annotations

from celery import shared_task

from mcoms.security import limits


@shared_task(acks_late=True, ignore_result=True)
def purge_counters() -> int:
    """Delete sign-in and PIN counters past every window and holding no lock."""
    return limits.purge()
