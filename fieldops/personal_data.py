"""Field operations' public face for personal data: one customer's tasks, visits and
notes, for an archive or to erase. See docs/personal-data.md."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction

from customers.models import Customer
from fieldops.models import FieldTask, TaskEvent, Visit
from mcoms.core import privacy


def customer_data(customer: Customer) -> dict[str, list[dict]]:
    """Field tasks about the customer, their steps and the agents' visits and notes."""
    tasks = FieldTask.objects.filter(customer=customer)
    return {
        "field_tasks": privacy.rows(tasks),
        "field_task_events": privacy.rows(TaskEvent.objects.filter(task__in=tasks)),
        "field_visits": privacy.rows(Visit.objects.filter(task__in=tasks)),
    }


@transaction.atomic
def anonymise_customer(*, customer: Customer, strings: Sequence[str], label: str) -> None:
    """Delete visit photos and their GPS position; erase visit notes; replace the person's
    names and numbers in task titles, details, outcomes and step notes."""
    tasks = FieldTask.objects.filter(customer=customer)
    for visit in Visit.objects.filter(task__in=tasks).exclude(photo=""):
        visit.photo.delete(save=False)
    visits = Visit.objects.filter(task__in=tasks)
    visits.update(photo="", latitude=None, longitude=None, accuracy_m=None)
    visits.exclude(note="").update(note=privacy.REMOVED)
    privacy.scrub(tasks, ["title", "details", "outcome"], strings, label)
    privacy.scrub(TaskEvent.objects.filter(task__in=tasks), ["note"], strings, label)
    privacy.scrub_audit_of(tasks, strings, label)
    privacy.scrub_audit_of(Visit.objects.filter(task__in=tasks), strings, label)
