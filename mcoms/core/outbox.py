"""Durable task dispatch: work asked for in a transaction survives a broker that is down.

``enqueue(task, args)`` writes an :class:`~mcoms.core.models.OutboxTask` row in the
caller's transaction and, once it commits, publishes the task with a bounded wait
(``CELERY_BROKER_TRANSPORT_OPTIONS`` bound the connection; no publish retries) and
deletes the row. A publish that fails is logged and never fails the caller: the row
stays, and the outbox sweep (``core.outbox_sweep``, every minute) publishes it again
once the broker answers. A row is also left when the process dies between the commit
and the publish. So a task may be published twice (published, then the process died
before deleting its row): only idempotent tasks are queued this way.

``publish(task, args)`` is the best-effort form for tasks that must never run twice
(a mobile-money prompt): after commit, bounded, never raising — and lost if the broker
is down. See docs/fault-drills.md.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from celery import current_app
from django.conf import settings
from django.db import DatabaseError, transaction
from kombu.exceptions import OperationalError as BrokerError

from mcoms.core import clock
from mcoms.core.models import OutboxTask, TaskDelivery

log = logging.getLogger(__name__)

# What a publish raises when the broker is unreachable, refuses, or does not answer in time.
PUBLISH_ERRORS = (BrokerError, OSError, TimeoutError)
DELIVERIES_KEPT = dt.timedelta(days=1)


def enqueue(
    task,
    args: Sequence = (),
    kwargs: dict | None = None,
    *,
    eta: dt.datetime | None = None,
    countdown: float | None = None,
) -> OutboxTask:
    """Publish ``task`` after the current transaction commits; kept until it is published."""
    at = clock.now()
    if countdown is not None:
        eta = at + dt.timedelta(seconds=countdown)
    row = OutboxTask.objects.create(
        task=task.name, args=list(args), kwargs=dict(kwargs or {}), eta=eta, created_at=at
    )
    transaction.on_commit(lambda: _publish_row(task, row))
    return row


def publish(
    task,
    args: Sequence = (),
    kwargs: dict | None = None,
    *,
    eta: dt.datetime | None = None,
    countdown: float | None = None,
) -> None:
    """Publish ``task`` after commit, at most once: nothing is kept if the broker is down.

    For tasks that must not run twice, or whose work a sweep finds in the database anyway.
    """
    if countdown is not None:
        eta = clock.now() + dt.timedelta(seconds=countdown)
    transaction.on_commit(lambda: _send(task, list(args), dict(kwargs or {}), eta))


def _send(task, args: list, kwargs: dict, eta: dt.datetime | None) -> str:
    """Publish once; returns why it failed, or "" when the broker took it."""
    if task.app.conf.task_always_eager:
        task.apply_async(args, kwargs, eta=eta)  # runs here; its errors are the caller's
        return ""
    try:
        task.apply_async(args, kwargs, eta=eta, retry=False)
    except PUBLISH_ERRORS as exc:
        log.warning("broker did not take %s%s: %s (the outbox keeps it)", task.name, args, exc)
        return f"{type(exc).__name__}: {exc}"[:300]
    return ""


def _publish_row(task, row: OutboxTask) -> None:
    error = _send(task, row.args, row.kwargs, row.eta)
    try:
        if error:
            OutboxTask.objects.filter(pk=row.pk).update(attempts=row.attempts + 1, last_error=error)
        else:
            OutboxTask.objects.filter(pk=row.pk).delete()
    except DatabaseError:  # the sweep publishes it again (the task is idempotent)
        log.exception("outbox row %s of %s not updated", row.pk, row.task)


def pending() -> tuple[int, dt.datetime | None]:
    """How many tasks wait in the outbox, and since when the oldest."""
    oldest = OutboxTask.objects.order_by("created_at").values_list("created_at", flat=True).first()
    return OutboxTask.objects.count(), oldest


def sweep(*, now: dt.datetime | None = None, limit: int = 1000) -> dict[str, int]:
    """Publish what is still in the outbox (oldest first); stop at the first broker error.

    Only rows older than ``OUTBOX_SWEEP_AFTER_SECONDS`` are taken, so a publish that is
    under way right after its commit is not doubled. Also forgets old delivery counts.
    """
    at = clock.resolve(now)
    cutoff = at - dt.timedelta(seconds=settings.OUTBOX_SWEEP_AFTER_SECONDS)
    rows = list(OutboxTask.objects.filter(created_at__lte=cutoff)[:limit])
    tasks = current_app.tasks
    if any(row.task not in tasks for row in rows):
        current_app.loader.import_default_modules()
    sent = failed = 0
    for row in rows:
        task = tasks.get(row.task)
        if task is None:
            OutboxTask.objects.filter(pk=row.pk).update(last_error="no such task")
            failed += 1
            continue
        before = row.attempts
        _publish_row(task, row)
        if OutboxTask.objects.filter(pk=row.pk, attempts__gt=before).exists():
            failed += 1
            break  # the broker is still down: the next sweep tries again
        sent += 1
    TaskDelivery.objects.filter(last_at__lt=at - DELIVERIES_KEPT).delete()
    return {"sent": sent, "failed": failed, "waiting": OutboxTask.objects.count()}
