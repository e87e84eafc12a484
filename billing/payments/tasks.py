"""Payments' periodic work: polling pending requests (a provider's callback may never come)."""

from __future__ import annotations

from celery import shared_task

from billing.payments import services
from mcoms.core import audit
from mcoms.core.models import AuditEvent


@shared_task(acks_late=True, ignore_result=True)
def poll_pending_requests() -> dict[str, int]:
    """Ask the providers about every pending request; expire the stale ones."""
    with audit.acting_as(label="payments poller", channel=AuditEvent.Channel.TASK):
        return services.poll_pending()
