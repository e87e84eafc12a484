"""Celery tasks of the messaging core: thin wrappers around the services.

Retries are not Celery's: a failed attempt writes its next time in the message row
(``retry_at``) and the ``release_deferred`` sweep, every minute, hands it back to
:func:`deliver_message` when it is due, so a lost task or a restarted broker loses no
message (see :func:`notifications.services.deliver`).
"""

from __future__ import annotations

from datetime import datetime

from celery import shared_task

from notifications import services


def _when(now: str | None) -> datetime | None:
    return datetime.fromisoformat(now) if now else None


@shared_task(acks_late=True, ignore_result=True)
def deliver_message(message_id: int, now: str | None = None) -> bool:
    """Deliver one message if it is due; a failure schedules its retry in the row."""
    return services.deliver(message_id, now=_when(now))


@shared_task(acks_late=True, ignore_result=True)
def release_deferred(now: str | None = None) -> int:
    """Send what is due: quiet-hour holds that ended, retries, messages whose task was lost."""
    return services.release_due(now=_when(now))
