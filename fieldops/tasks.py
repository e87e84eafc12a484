"""Field operations' Celery tasks: thin wrappers around :mod:`fieldops.work`."""

from __future__ import annotations

from celery import shared_task

from fieldops import work
from mcoms.core import audit
from mcoms.core.models import AuditEvent


@shared_task(name="fieldops.tasks.sync_field_tasks", acks_late=True, ignore_result=True)
def sync_field_tasks() -> dict:
    """Make field tasks for new alerts, requests, jobs, shipped meters and arrears; settle old."""
    with audit.acting_as(label="field task sync", channel=AuditEvent.Channel.TASK):
        return work.sync().as_dict()
