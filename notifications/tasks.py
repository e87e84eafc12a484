"""Celery tasks of the messaging core: thin wrappers around the services."""

from __future__ import annotations

from celery import shared_task

from notifications import services

MAX_RETRIES = 5


@shared_task(bind=True, max_retries=MAX_RETRIES, acks_late=True)
def deliver_message(self, message_id: int) -> None:
    """Deliver one message, retrying with growing delays while the backend fails."""
    if services.deliver(message_id):
        return
    if self.request.retries >= MAX_RETRIES:
        services.mark_failed(message_id, "gave up after repeated failures")
        return
    raise self.retry(countdown=min(60 * 2**self.request.retries, 3600))


@shared_task(acks_late=True, ignore_result=True)
def release_deferred() -> int:
    """Send the messages held for quiet hours whose time has come."""
    return services.release_due()
