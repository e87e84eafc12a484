"""Collections' periodic task: reminders, notices and disconnect requests by site policy."""

from __future__ import annotations

import dataclasses
import datetime as dt

from celery import shared_task

from billing.collections import policy
from mcoms.core import audit
from mcoms.core.models import AuditEvent


@shared_task(acks_late=True)
def run_collections(now: str | None = None) -> list[dict]:
    """Apply every site's collections policy at ``now`` (ISO time; default: the clock)."""
    at = dt.datetime.fromisoformat(now) if now else None
    with audit.acting_as(label="collections", channel=AuditEvent.Channel.TASK):
        return [dataclasses.asdict(r) for r in policy.run(now=at)]
