"""Celery tasks of billing runs: thin wrappers that take ids, load, and call the services."""

from __future__ import annotations

from celery import shared_task

from billing import invoicing, runs
from billing.models import BillingRun, Invoice
from mcoms.core import audit
from mcoms.core.models import AuditEvent, User


def _note_task(run_id: int, task_id: str | None) -> None:
    BillingRun.objects.filter(pk=run_id).update(task_id=task_id or "")


@shared_task(bind=True, acks_late=True)
def preview_run(self, run_id: int) -> None:
    """Price every account of a run (no postings)."""
    _note_task(run_id, self.request.id)
    with audit.acting_as(label="billing run preview", channel=AuditEvent.Channel.TASK):
        runs.preview(run_id)


@shared_task(bind=True, acks_late=True)
def post_run(self, run_id: int, by_id: int | None = None) -> None:
    """Issue the run's invoices; started again after a lost worker, it carries on."""
    _note_task(run_id, self.request.id)
    by = User.objects.filter(pk=by_id).first() if by_id else None
    with audit.acting_as(by, label=None if by else "billing run", channel=AuditEvent.Channel.TASK):
        runs.post(run_id, by=by)


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
