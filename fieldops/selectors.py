"""Field operations' public queries."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Case, Count, F, Q, QuerySet, When

from fieldops.models import FieldTask
from mcoms.core.roles import Cap, Role
from mcoms.core.selectors import sites_visible_to


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


# --- the field app's task pages ------------------------------------------------------------------


def tasks_visible_to(user) -> QuerySet[FieldTask]:
    """Tasks a person may see: managers and supervisors all of their sites', a field agent
    their own and the unassigned ones of their sites, customers none."""
    if not user.is_authenticated or not user.can(Cap.METERS_VIEW):
        return FieldTask.objects.none()
    tasks = FieldTask.objects.select_related("site", "customer", "meter", "assigned_to")
    in_scope = tasks.filter(site__in=sites_visible_to(user))
    if user.role == Role.FIELD_AGENT:
        return in_scope.filter(Q(assigned_to=user) | Q(assigned_to__isnull=True))
    return in_scope


def my_tasks(user, *, show: str = "open", kind: str = "") -> QuerySet[FieldTask]:
    """A person's task list: ``show`` is ``open`` (theirs), ``unassigned``, ``done`` (closed,
    newest first) or ``all``; open ones by priority, then due date."""
    tasks = tasks_visible_to(user)
    if kind:
        tasks = tasks.filter(kind=kind)
    if show == "unassigned":
        return tasks.filter(status=FieldTask.Status.OPEN, assigned_to__isnull=True)
    if show == "done":
        return (
            tasks.filter(assigned_to=user)
            .exclude(status__in=FieldTask.OPEN_STATUSES)
            .order_by("-closed_at", "-id")
        )
    if show == "all":
        return tasks.order_by(
            Case(When(status__in=FieldTask.OPEN_STATUSES, then=0), default=1),
            "priority",
            F("due_at").asc(nulls_last=True),
            "-id",
        )
    return tasks.filter(assigned_to=user, status__in=FieldTask.OPEN_STATUSES).order_by(
        "priority", F("due_at").asc(nulls_last=True), "created_at", "id"
    )


def task_counts(user_ids: Iterable[int], site_ids: Iterable[int], since) -> dict[int, dict]:
    """Per person: open tasks (on ``site_ids``) and tasks done since ``since``."""
    tasks = FieldTask.objects.filter(assigned_to__in=list(user_ids), site_id__in=list(site_ids))
    counts = {pk: {"open": 0, "done": 0} for pk in user_ids}
    for row in (
        tasks.filter(status__in=FieldTask.OPEN_STATUSES)
        .values("assigned_to")
        .annotate(n=Count("id"))
        .order_by()
    ):
        counts[row["assigned_to"]]["open"] = row["n"]
    for row in (
        tasks.filter(status=FieldTask.Status.DONE, closed_at__gte=since)
        .values("assigned_to")
        .annotate(n=Count("id"))
        .order_by()
    ):
        counts[row["assigned_to"]]["done"] = row["n"]
    return counts


def my_open_task_count(user) -> int:
    """How many open tasks are assigned to ``user`` (the field app's "My tasks")."""
    if not user.is_authenticated:
        return 0
    return open_tasks().filter(assigned_to=user).count()
