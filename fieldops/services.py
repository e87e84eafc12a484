"""A field task's life: created, assigned, started, visited, closed; every step audited.

::

    open ──assign──▶ assigned ──start──▶ in_progress ──close──▶ done | failed
      └──────────────────┴── cancel (the source went away, or a supervisor) ──▶ cancelled

Each step writes a :class:`~fieldops.models.TaskEvent` (the task's history, shown on its
page) and an audit event. Who may do what (:func:`may_act`, :func:`may_manage`): a field
agent acts on the tasks given to them and may take an unassigned one of their sites; a
field supervisor or a manager with ``requests.handle`` on the site acts on all of its
tasks and assigns them.

A task made from a service request moves the request along through the customers app
(in progress when started, resolved when done). A steering field job is completed through
steering's own service (seal number and photo) by :func:`task_complete_field_job`, which
closes the task as done.

The assignee hears of a new task by SMS with the ``staff_assignment`` message (the same
one service requests use), sent after the change commits.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal, InvalidOperation

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from customers import field_queries as customer_queries
from customers import services as customer_services
from customers.models import ServiceRequest
from fieldops.models import FieldTask, TaskEvent, Visit
from mcoms.core import audit, clock
from mcoms.core.models import AuditEvent, Site, User
from mcoms.core.roles import Cap, Role
from mcoms.core.selectors import can_on_site, staff_of_site
from metering.steering import field_queries as job_queries
from metering.steering import services as steering
from metering.watch import tell_staff

log = logging.getLogger(__name__)

S = FieldTask.Status
ASSIGNABLE_ROLES = {Role.FIELD_AGENT, Role.FIELD_SUPERVISOR}
# A phone's clock may run a little fast; a visit further in the future is a mistake.
CLOCK_SLACK = dt.timedelta(minutes=10)
OLDEST_VISIT = dt.timedelta(days=30)
WORST_ACCURACY_M = 10_000


# --- who may do what -----------------------------------------------------------------------


def may_manage(user: User, site_id: int) -> bool:
    """Supervisors and managers with ``requests.handle`` on the site assign and act on all."""
    return can_on_site(user, Cap.REQUESTS_HANDLE, site_id)


def may_act(user: User, task: FieldTask) -> bool:
    """Start, visit or close: the task's own agent, or whoever manages the site."""
    if may_manage(user, task.site_id):
        return True
    if not can_on_site(user, Cap.METERS_FIELD, task.site_id):
        return False
    return task.assigned_to_id == user.pk or (
        task.assigned_to_id is None and user.role == Role.FIELD_AGENT
    )


def _require(allowed: bool, what: str) -> None:
    if not allowed:
        raise PermissionDenied(f"You may not {what} this task.")


def assignable_people(site: Site):
    """Field agents and supervisors who work on ``site``, by name."""
    return staff_of_site(site, ASSIGNABLE_ROLES).order_by("first_name", "username")


# --- history ---------------------------------------------------------------------------------


def _event(task: FieldTask, old: str, at: dt.datetime, note: str = "") -> TaskEvent:
    actor = audit.current_actor()
    return TaskEvent.objects.create(
        task=task,
        from_status=old,
        to_status=task.status,
        at=at,
        by=actor.user if actor.user is not None and actor.user.pk else None,
        by_label=actor.label[:150],
        note=note[:500],
    )


def _save(task: FieldTask, before: dict, old: str, at: dt.datetime, note: str, action: str):
    task.updated_at = at
    task.save()
    _event(task, old, at, note)
    audit.record(
        action, task, before=before, after=task.snapshot(), site=task.site_id, note=note[:300]
    )


def _locked(task: FieldTask) -> FieldTask:
    return FieldTask.objects.select_for_update().get(pk=task.pk)


# --- create and assign -----------------------------------------------------------------------


@transaction.atomic
def task_create(
    *,
    site: Site,
    kind: str,
    title: str,
    source: str = FieldTask.Source.MANUAL,
    source_ref: str = "",
    priority: int = FieldTask.Priority.NORMAL,
    customer=None,
    meter=None,
    details: str = "",
    due_at: dt.datetime | None = None,
    assign_to: User | None = None,
    now: dt.datetime | None = None,
) -> FieldTask:
    """Make a task (open, or assigned when ``assign_to`` is given)."""
    at = clock.resolve(now)
    actor = audit.current_actor()
    task = FieldTask(
        site=site,
        kind=kind,
        title=title[:200],
        source=source,
        source_ref=source_ref,
        priority=priority,
        customer=customer,
        meter=meter,
        details=details,
        due_at=due_at,
        created_at=at,
        created_by=actor.user if actor.user is not None and actor.user.pk else None,
        updated_at=at,
    )
    task.full_clean(validate_unique=False, validate_constraints=False)
    task.save()
    _event(task, "", at, f"source: {task.get_source_display().lower()}")
    audit.record(AuditEvent.Action.CREATE, task, after=task.snapshot(), site=site.pk)
    if assign_to is not None:
        task = task_assign(task=task, to=assign_to, now=at)
    return task


@transaction.atomic
def task_assign(
    *, task: FieldTask, to: User | None, by: User | None = None, now: dt.datetime | None = None
) -> FieldTask:
    """Give the task to ``to`` (a field agent or supervisor of the site); None takes it back.

    ``by`` is checked when given (pages pass the signed-in person; the sync passes none).
    An agent may take an unassigned task of their own site for themselves.
    """
    task = _locked(task)
    if by is not None:
        taking = to is not None and to.pk == by.pk and task.assigned_to_id is None
        _require(may_manage(by, task.site_id) or (taking and may_act(by, task)), "assign")
    if not task.is_open:
        raise ValidationError("This task is closed.")
    if to is not None and not assignable_people(task.site).filter(pk=to.pk).exists():
        name = to.get_full_name() or to.get_username()
        raise ValidationError(f"{name} is not a field agent of {task.site}.")
    if to is not None and to.pk == task.assigned_to_id:
        return task
    at = clock.resolve(now)
    before, old = task.snapshot(), task.status
    task.assigned_to, task.assigned_at = to, (at if to else None)
    if to is None:
        task.status = S.OPEN
    elif task.status == S.OPEN:
        task.status = S.ASSIGNED
    name = (to.get_full_name() or to.get_username()) if to else ""
    note = f"assigned to {name}" if to else "assignment taken back"
    _save(task, before, old, at, note, AuditEvent.Action.UPDATE)
    if to is not None:
        pk, person = task.pk, to
        transaction.on_commit(lambda: _tell_assignee(pk, person))
    return task


def _tell_assignee(task_id: int, person: User) -> None:
    """``staff_assignment`` by SMS (email without a phone); never raises."""
    task = FieldTask.objects.select_related("site", "customer").get(pk=task_id)
    customer = task.customer
    tell_staff(
        person,
        "staff_assignment",
        {
            "name": person.first_name or person.get_username(),
            "task": f"{task.title} (task {task.pk})",
            "customer_name": f"{customer.first_name} {customer.last_name[:1]}." if customer else "",
            "site": task.site.name,
            "due": task.due_at.astimezone(task.site.zone).strftime("%d %b %H:%M")
            if task.due_at
            else "soon",
        },
        f"fieldops.fieldtask:{task.pk}",
        task.site,
    )


# --- work on it --------------------------------------------------------------------------------


def _request_of(task: FieldTask) -> ServiceRequest | None:
    if task.source != FieldTask.Source.REQUEST or not task.source_ref.startswith("request:"):
        return None
    return customer_queries.service_request(int(task.source_ref.split(":")[1]))


def _move_request(task: FieldTask, status: str, note: str, at: dt.datetime) -> None:
    """Move the task's service request to ``status`` when its flow allows it from where it is."""
    request = _request_of(task)
    if request is None or request.status == status:
        return
    if status not in customer_services.REQUEST_TRANSITIONS.get(request.status, set()):
        return
    customer_services.service_request_transition(request=request, status=status, note=note, now=at)


@transaction.atomic
def task_start(*, task: FieldTask, by: User, now: dt.datetime | None = None) -> FieldTask:
    """The agent is on it: in progress (an unassigned task becomes theirs)."""
    task = _locked(task)
    _require(may_act(by, task), "start")
    if task.status == S.IN_PROGRESS:
        return task
    if task.status not in (S.OPEN, S.ASSIGNED):
        raise ValidationError("This task is closed.")
    at = clock.resolve(now)
    before, old = task.snapshot(), task.status
    if task.assigned_to_id is None:
        task.assigned_to, task.assigned_at = by, at
    task.status = S.IN_PROGRESS
    _save(task, before, old, at, "started", AuditEvent.Action.TRANSITION)
    _move_request(task, ServiceRequest.Status.IN_PROGRESS, f"field task {task.pk} started", at)
    return task


def _decimal(value, name: str, low: int, high: int) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite() or not low <= number <= high:
        raise ValidationError({name: f"The {name} must be a number from {low} to {high}."})
    return number.quantize(Decimal("0.000001"))


def check_position(latitude, longitude, accuracy_m) -> tuple:
    """(latitude, longitude, accuracy) as stored, or a ValidationError naming what is wrong.

    Either both coordinates or neither; accuracy only with them, in metres, 0–10 km.
    """
    lat = _decimal(latitude, "latitude", -90, 90)
    lon = _decimal(longitude, "longitude", -180, 180)
    if (lat is None) != (lon is None):
        raise ValidationError("Give both latitude and longitude, or neither.")
    if accuracy_m in (None, ""):
        return lat, lon, None
    if lat is None:
        raise ValidationError({"accuracy_m": "An accuracy needs a position."})
    try:
        accuracy = float(accuracy_m)
    except (TypeError, ValueError):
        accuracy = -1.0
    if not 0 <= accuracy <= WORST_ACCURACY_M:
        raise ValidationError(
            {"accuracy_m": f"The accuracy must be from 0 to {WORST_ACCURACY_M} metres."}
        )
    return lat, lon, round(accuracy, 1)


@transaction.atomic
def visit_record(
    *,
    task: FieldTask,
    by: User,
    visited_at: dt.datetime | None,
    outcome: str,
    note: str = "",
    latitude=None,
    longitude=None,
    accuracy_m=None,
    photo=None,
    now: dt.datetime | None = None,
) -> Visit:
    """The agent was there: when (the phone's time), where (GPS when given), how it went.

    A visit to a task not yet started starts it. The visit does not close the task.
    """
    task = _locked(task)
    _require(may_act(by, task), "record a visit to")
    if not task.is_open:
        raise ValidationError("This task is closed.")
    at = clock.resolve(now)
    when = visited_at or at
    if when > at + CLOCK_SLACK:
        raise ValidationError({"visited_at": "The visit time is in the future."})
    if when < at - OLDEST_VISIT:
        raise ValidationError({"visited_at": "The visit time is more than 30 days ago."})
    if outcome not in Visit.Outcome.values:
        raise ValidationError({"outcome": "Choose how the visit went."})
    lat, lon, accuracy = check_position(latitude, longitude, accuracy_m)
    visit = Visit(
        task=task,
        agent=by,
        visited_at=when,
        recorded_at=at,
        latitude=lat,
        longitude=lon,
        accuracy_m=accuracy,
        outcome=outcome,
        note=note[:500],
    )
    if photo:
        visit.photo = photo
    visit.save()
    audit.record(
        AuditEvent.Action.CREATE,
        visit,
        after={**audit.snapshot(visit, _VISIT_FIELDS), "photo": visit.photo.name or ""},
        site=task.site_id,
    )
    before, old = task.snapshot(), task.status
    if task.status in (S.OPEN, S.ASSIGNED):
        if task.assigned_to_id is None:
            task.assigned_to, task.assigned_at = by, at
        task.status = S.IN_PROGRESS
        _move_request(task, ServiceRequest.Status.IN_PROGRESS, f"field task {task.pk} visited", at)
    where = " with GPS" if visit.has_position else ""
    summary = f"visit{where}: {visit.get_outcome_display().lower()}"
    if note:
        summary += f" — {note}"
    _save(task, before, old, at, summary, AuditEvent.Action.UPDATE)
    return visit


_VISIT_FIELDS = [
    "task",
    "agent",
    "visited_at",
    "latitude",
    "longitude",
    "accuracy_m",
    "outcome",
    "note",
]


@transaction.atomic
def task_close(
    *, task: FieldTask, by: User, status: str, outcome: str, now: dt.datetime | None = None
) -> FieldTask:
    """Done or could not be done, with what happened; a request's task resolves the request."""
    task = _locked(task)
    _require(may_act(by, task), "close")
    if status not in (S.DONE, S.FAILED):
        raise ValidationError({"status": "A task closes as done or as could not be done."})
    if not task.is_open:
        raise ValidationError("This task is already closed.")
    outcome = (outcome or "").strip()
    if not outcome:
        raise ValidationError({"outcome": "Say what was done, or why it could not be."})
    if status == S.DONE and task.source == FieldTask.Source.FIELD_JOB:
        job = _field_job_of(task)
        if job is not None and job.status == job.Status.OPEN:
            raise ValidationError("Record the seal number and photo to finish this job.")
    at = clock.resolve(now)
    _close(task, status, outcome, at, by=by)
    if status == S.DONE:
        _move_request(task, ServiceRequest.Status.RESOLVED, f"field task {task.pk}: {outcome}", at)
    return task


def _close(task: FieldTask, status: str, outcome: str, at: dt.datetime, *, by=None) -> None:
    before, old = task.snapshot(), task.status
    if task.assigned_to_id is None and by is not None:
        task.assigned_to, task.assigned_at = by, at
    task.status, task.outcome, task.closed_at = status, outcome[:300], at
    _save(task, before, old, at, outcome, AuditEvent.Action.TRANSITION)


@transaction.atomic
def task_cancel(
    *, task: FieldTask, note: str, by: User | None = None, now: dt.datetime | None = None
) -> FieldTask:
    """Nobody needs to go any more (``by`` None: the sync, because the source went away)."""
    task = _locked(task)
    if by is not None:
        _require(may_manage(by, task.site_id), "cancel")
    if not task.is_open:
        raise ValidationError("This task is already closed.")
    if not note.strip():
        raise ValidationError({"note": "Say why the task is cancelled."})
    _close(task, S.CANCELLED, note.strip(), clock.resolve(now))
    return task


@transaction.atomic
def task_finish_by_source(*, task: FieldTask, note: str, now: dt.datetime | None = None):
    """The work was done elsewhere (the meter is installed, the field job recorded): done."""
    task = _locked(task)
    if task.is_open:
        _close(task, S.DONE, note, clock.resolve(now))
    return task


# --- steering's field jobs ---------------------------------------------------------------------


def _field_job_of(task: FieldTask):
    if not task.source_ref.startswith("field_job:"):
        return None
    return job_queries.field_job(int(task.source_ref.split(":")[1]))


def field_job_of(task: FieldTask):
    """The steering field job behind a disconnect/reconnect task, or None."""
    return _field_job_of(task)


@transaction.atomic
def task_complete_field_job(
    *,
    task: FieldTask,
    by: User,
    seal_number: str,
    photo=None,
    note: str = "",
    now: dt.datetime | None = None,
) -> FieldTask:
    """Breaker opened or closed and sealed: steering records the job, the task is done."""
    task = _locked(task)
    _require(may_act(by, task), "finish")
    job = _field_job_of(task)
    if job is None:
        raise ValidationError("This task has no field job.")
    if not task.is_open:
        raise ValidationError("This task is already closed.")
    at = clock.resolve(now)
    steering.field_job_complete(
        job=job, by=by, seal_number=seal_number, photo=photo, note=note, now=at
    )
    _close(task, S.DONE, f"{job.get_breaker_display()}, seal {seal_number.strip()}", at, by=by)
    return task
