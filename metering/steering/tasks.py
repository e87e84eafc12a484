"""Steering's Celery tasks: thin wrappers that take ids and call the engine.

``advance`` is queued with a countdown for each command's next step; ``sweep`` runs
every minute and resumes whatever is due and unclaimed (after a worker restart, a lost
message or a countdown that was never queued), polls token pushes and remote reads.
"""

from __future__ import annotations

from celery import shared_task

from mcoms.core import audit
from mcoms.core.models import AuditEvent
from metering.steering import engine, readings, remote_reads, vending


@shared_task(acks_late=True)
def advance(command_id: int) -> None:
    """Run one command's due step, if it is still due."""
    engine.step(command_id)


@shared_task(acks_late=True)
def sweep() -> dict:
    """Resume due commands, unknown vends, token pushes and remote reads."""
    with audit.acting_as(label="steering sweeper", channel=AuditEvent.Channel.TASK):
        return {
            "commands": engine.sweep(),
            "vends": vending.sweep(),
            "reads": remote_reads.sweep(),
        }


@shared_task(acks_late=True)
def import_daily() -> dict:
    """Yesterday's cumulative kWh of every Calin meter, stored as readings."""
    stored, failed = readings.import_yesterday()
    return {"stored": stored, "failed": failed[:50]}


@shared_task(acks_late=True)
def refresh_online() -> int:
    """The head-end's concentrators, online or not."""
    return readings.refresh_online()
