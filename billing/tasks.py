"""Celery tasks of billing runs: thin wrappers that take ids, load, and call the services."""

from __future__ import annotations

import contextlib

from celery import shared_task
from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connections,
)

from billing import invoicing, runs
from billing.models import BillingRun, Invoice
from mcoms.core import audit
from mcoms.core.models import AuditEvent, User

# The database went away mid-run (a restart, a fail-over): each chunk is one transaction,
# so the task is tried again a little later and carries on where it stopped.
DATABASE_LOST = (OperationalError, InterfaceError)
RETRIES = 8  # waits of 2, 4, 8 … 60 s: about four minutes in all


def _note_task(run_id: int, task_id: str | None) -> None:
    BillingRun.objects.filter(pk=run_id).update(task_id=task_id or "")


def _again(task, run_id: int, exc: Exception):
    """Retry after a lost database connection; when the retries run out, the run failed."""
    for conn in connections.all():
        conn.close()  # broken: the next try opens a new one
    if task.request.retries >= RETRIES:
        close_old_connections()
        # Still away: the run stays as it was, and the stuck-runs check sees it.
        with contextlib.suppress(DatabaseError):
            BillingRun.objects.filter(pk=run_id).update(
                status=BillingRun.Status.FAILED, error=f"Database lost: {exc}"[:2000]
            )
        raise exc
    raise task.retry(exc=exc, countdown=min(2 ** (task.request.retries + 1), 60))


@shared_task(bind=True, acks_late=True, max_retries=RETRIES)
def preview_run(self, run_id: int) -> None:
    """Price every account of a run (no postings)."""
    try:
        _note_task(run_id, self.request.id)
        with audit.acting_as(label="billing run preview", channel=AuditEvent.Channel.TASK):
            runs.preview(run_id)
    except DATABASE_LOST as exc:
        _again(self, run_id, exc)


@shared_task(bind=True, acks_late=True, max_retries=RETRIES)
def post_run(self, run_id: int, by_id: int | None = None) -> None:
    """Issue the run's invoices; started again after a lost worker, it carries on."""
    try:
        _note_task(run_id, self.request.id)
        by = User.objects.filter(pk=by_id).first() if by_id else None
        label = None if by else "billing run"
        with audit.acting_as(by, label=label, channel=AuditEvent.Channel.TASK):
            runs.post(run_id, by=by)
    except DATABASE_LOST as exc:
        _again(self, run_id, exc)


@shared_task(acks_late=True)
def send_bills(run_id: int) -> None:
    """Send the bill SMS of a run's invoices (each once)."""
    with audit.acting_as(label="bill messages", channel=AuditEvent.Channel.TASK):
        for invoice in Invoice.objects.filter(run_id=run_id).select_related("customer", "site"):
            invoicing.send_bill_sms(invoice)


@shared_task
def start_due_runs() -> None:
    """Start last month's preview on each site whose run day and hour have come."""
    runs.due_runs()
