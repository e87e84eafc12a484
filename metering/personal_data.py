"""Metering's public face for personal data: one customer's meters, usage and readings
while they were served, for an archive; and erasing the person's mentions and photos.

Readings and usage are kept after anonymisation: invoices were computed from them.
See docs/personal-data.md.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction
from django.db.models import Q

from customers.models import Customer
from mcoms.core import privacy
from metering.models import DailyUsage, ManualReading, Meter, MeterAssignment
from metering.steering.models import Command, FieldJob


def _served(customer: Customer, day_field: str, *, dates: bool) -> Q:
    """Rows of the customer's meters dated within one of their assignments."""
    served = Q(pk__in=[])
    for a in MeterAssignment.objects.filter(customer=customer):
        start, end = (a.start.date(), a.end and a.end.date()) if dates else (a.start, a.end)
        during = Q(meter_id=a.meter_id, **{f"{day_field}__gte": start})
        if end is not None:
            during &= Q(**{f"{day_field}__lte" if dates else f"{day_field}__lt": end})
        served |= during
    return served


def customer_data(customer: Customer) -> dict[str, list[dict]]:
    """Meter assignments, daily usage and hand readings while served, relay commands."""
    commands = Command.objects.filter(customer=customer)
    return {
        "meter_assignments": privacy.rows(MeterAssignment.objects.filter(customer=customer)),
        "daily_usage": privacy.rows(
            DailyUsage.objects.filter(_served(customer, "day", dates=True))
        ),
        "hand_readings": privacy.rows(
            ManualReading.objects.filter(_served(customer, "read_at", dates=False))
        ),
        "relay_commands": privacy.rows(commands),
        "relay_field_jobs": privacy.rows(FieldJob.objects.filter(command__in=commands)),
    }


@transaction.atomic
def anonymise_customer(*, customer: Customer, strings: Sequence[str], label: str) -> None:
    """Delete the photos of the customer's relay field jobs; replace the person's names and
    numbers in assignment reasons, meter labels and notes, hand-reading notes and relay
    commands. Readings and usage stay (invoices were computed from them)."""
    commands = Command.objects.filter(customer=customer)
    jobs = FieldJob.objects.filter(command__in=commands)
    for job in jobs.exclude(photo=""):
        job.photo.delete(save=False)
    jobs.update(photo="")
    meters = Meter.objects.filter(assignments__customer=customer).distinct()
    texts = [
        (MeterAssignment.objects.filter(customer=customer), ["reason"]),
        (Meter.objects.filter(pk__in=meters.values("pk")), ["label", "notes"]),
        (ManualReading.objects.filter(_served(customer, "read_at", dates=False)), ["note"]),
        (commands, ["reason", "note", "last_error"]),
        (jobs, ["note"]),
    ]
    for rows, fields in texts:
        privacy.scrub(rows, fields, strings, label)
        privacy.scrub_audit_of(rows, strings, label)
