"""Celery tasks of metering: thin wrappers that take ids, load, and call the services."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.db import InterfaceError, OperationalError

from mcoms.core import audit, outbox
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
        # Kept in the outbox until the broker takes it: a reading is never left unrolled.
        outbox.enqueue(refresh_rollups, (ids, start, end))


# The database went away (a restart): the rollups are recomputed whole, so try again later.
@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=8,
)
def refresh_rollups(meter_ids: list[int], start: str, end: str) -> None:
    """Recompute hourly, daily and site rollups around newly stored readings."""
    with audit.acting_as(label="rollups", channel=AuditEvent.Channel.TASK):
        rollups.refresh(
            meter_ids=meter_ids,
            start=dt.datetime.fromisoformat(start),
            end=dt.datetime.fromisoformat(end),
        )
