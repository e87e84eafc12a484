"""Field operations' public queries."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, QuerySet

from fieldops.models import FieldTask


def open_tasks() -> QuerySet[FieldTask]:
    return FieldTask.objects.filter(status__in=FieldTask.OPEN_STATUSES)


def open_task_counts(site_ids: Iterable[int]) -> dict[int, int]:
    """Open field tasks per site (sites without any are left out)."""
    rows = (
        open_tasks()
        .filter(site_id__in=list(site_ids))
        .values("site_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["site_id"]: row["n"] for row in rows}
