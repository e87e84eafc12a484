"""Steering's public queries for field operations: hand-done disconnections and reconnections."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from metering.steering.models import FieldJob


def open_field_jobs() -> QuerySet[FieldJob]:
    """Field jobs nobody has done or cancelled yet, oldest first."""
    return (
        FieldJob.objects.filter(status=FieldJob.Status.OPEN)
        .select_related("site", "meter", "command")
        .order_by("created_at", "id")
    )


def field_job_statuses(job_ids: Iterable[int]) -> dict[int, str]:
    """The status (open, done, cancelled) of each field job asked for."""
    return dict(FieldJob.objects.filter(pk__in=list(job_ids)).values_list("pk", "status"))


def field_job(job_id: int) -> FieldJob | None:
    """One field job by id, or None."""
    return FieldJob.objects.select_related("site", "meter").filter(pk=job_id).first()
