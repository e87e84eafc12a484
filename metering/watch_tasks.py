"""Celery tasks of the missing-read watch: thin wrappers around ``metering.watch``."""

from __future__ import annotations

from celery import shared_task

from mcoms.core import audit
from mcoms.core.models import AuditEvent
from metering import watch


@shared_task(acks_late=True, ignore_result=True)
def check_missing_reads() -> dict:
    """Open and resolve missing-read and silent-gateway alerts; message staff on new ones."""
    with audit.acting_as(label="missing-read watch", channel=AuditEvent.Channel.TASK):
        return watch.check_missing().as_dict()
