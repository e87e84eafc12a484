"""Celery tasks of the core: the outbox sweep."""

from __future__ import annotations

from celery import shared_task

from mcoms.core import outbox


@shared_task(acks_late=True, ignore_result=True)
def outbox_sweep() -> dict[str, int]:
    """Publish the tasks the broker did not take when they were asked for."""
    return outbox.sweep()
