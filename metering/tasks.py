"""Celery tasks of metering: thin wrappers that take ids, load, and call the services."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.db import transaction

from mcoms.core import audit
from mcoms.core.models import AuditEvent
from metering import rollups, services
from metering.ingest import Outcome
from metering.lifecycle import Status
from metering.models import Meter


def after_ingest(outcome: Outcome, *, now: dt.datetime) -> None:
    """What follows a stored batch: commissioning on first valid data, then rollups."""
    for meter in Meter.objects.filter(pk__in=outcome.meters_with_valid, status=Status.INSTALLED):
        services.meter_move(
            meter=meter, status=Status.COMMISSIONED, now=now, note="first valid readings arrived"
        )
    if outcome.meters:
        ids, start, end = sorted(outcome.meters), outcome.start.isoformat(), outcome.end.isoformat()
        transaction.on_commit(lambda: refresh_rollups.delay(ids, start, end))


@shared_task(acks_late=True)
def refresh_rollups(meter_ids: list[int], start: str, end: str) -> None:
    """Recompute hourly, daily and site rollups around newly stored readings."""
    with audit.acting_as(label="rollups", channel=AuditEvent.Channel.TASK):
        rollups.refresh(
            meter_ids=meter_ids,
            start=dt.datetime.fromisoformat(start),
            end=dt.datetime.fromisoformat(end),
        )
