"""Where field tasks come from: :func:`sync` pulls from the apps below and keeps one task per thing.

Sources (each read through the owning app's public queries) and the task each makes:

==========================  ==========  =========================================  ========
source                      kind        ``source_ref``                             priority
==========================  ==========  =========================================  ========
missing_reads alert         read        ``alert:<id>``                             normal
possible_bypass, night_spike,
usage_high/low/run alert    inspect     ``alert:<id>``                             normal/low
supply_lost alert           fix         ``alert:<id>``                             urgent
voltage alert               fix         ``alert:<id>``                             normal
gateway_silent alert        fix         ``alert:<id>``                             urgent
outage (an open incident)   fix         ``incident:<id>`` (one for the site)       urgent
open service request        fix/connect/package/other  ``request:<id>``            by kind
open steering field job     disconnect/reconnect       ``field_job:<id>``          by action
meter shipped to a site     install     ``install:<meter id>``                     normal
arrears past the notice     collect     ``arrears:<notice id>``                    normal
==========================  ==========  =========================================  ========

Alerts that belong to an outage incident make no task of their own: the incident's one task
covers the site. ``source_ref`` is unique, so running :func:`sync` again makes nothing twice
(two syncs racing: the loser's insert fails on the constraint and is skipped).

When the source goes away (alert resolved, incident ended, request closed, job cancelled,
arrears paid) a task nobody has started is cancelled; one in progress is left to its agent.
When the work was done elsewhere (the meter was installed through the install checklist, the
field job recorded on steering's page) the task is closed as done.

Assignment: to the service request's assignee when it has one; else to the site's field agent
with the fewest open tasks (ties by username); a site without field agents leaves the task
open for the supervisor. The assignee is told by SMS (``staff_assignment``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.db.models import Count

from billing.collections import field_queries as arrears_queries
from customers import field_queries as request_queries
from customers.models import ServiceRequest
from fieldops import services
from fieldops.models import FieldTask
from mcoms.core import clock
from mcoms.core.models import Site, User
from mcoms.core.roles import Role
from mcoms.core.selectors import staff_of_site
from metering import field_queries as meter_queries
from metering.lifecycle import Status as MeterStatus
from metering.models import Alert
from metering.selectors import current_customer
from metering.steering import field_queries as job_queries
from metering.steering.models import FieldJob

log = logging.getLogger(__name__)

K, P, SRC = FieldTask.Kind, FieldTask.Priority, FieldTask.Source
A = Alert.Kind

# alert kind → (task kind, priority, title)
ALERT_TASKS: dict[str, tuple[str, int, str]] = {
    A.MISSING_READS: (K.READ, P.NORMAL, "Read the meter by hand / check why it is silent"),
    A.POSSIBLE_BYPASS: (K.INSPECT, P.NORMAL, "Inspect the meter: no consumption with voltage"),
    A.NIGHT_SPIKE: (K.INSPECT, P.LOW, "Inspect the meter: night-time spike"),
    A.USAGE_HIGH: (K.INSPECT, P.LOW, "Inspect the meter: usage above its limits"),
    A.USAGE_LOW: (K.INSPECT, P.LOW, "Inspect the meter: usage below its limits"),
    A.USAGE_RUN: (K.INSPECT, P.LOW, "Inspect the meter: usage high hour after hour"),
    A.SUPPLY_LOST: (K.FIX, P.URGENT, "No voltage at the meter: restore supply"),
    A.VOLTAGE: (K.FIX, P.NORMAL, "Voltage outside limits: check the supply"),
    A.GATEWAY_SILENT: (K.FIX, P.URGENT, "Gateway silent: check its power and network"),
}
REQUEST_TASKS: dict[str, tuple[str, int, str]] = {
    ServiceRequest.Kind.FAULT: (K.FIX, P.URGENT, "Fix a fault"),
    ServiceRequest.Kind.NEW_CONNECTION: (K.CONNECT, P.NORMAL, "Connect a new customer"),
    ServiceRequest.Kind.PACKAGE_CHANGE: (K.PACKAGE, P.LOW, "Change the package"),
    ServiceRequest.Kind.COMPLAINT: (K.OTHER, P.NORMAL, "Follow up a complaint"),
}
DUE_AFTER = {P.URGENT: dt.timedelta(hours=4), P.NORMAL: dt.timedelta(days=2)}
DUE_AFTER_LOW = dt.timedelta(days=7)
# Sources sync looks after (staff-made tasks are never touched).
SYNCED = (SRC.ALERT, SRC.MISSING_READS, SRC.REQUEST, SRC.FIELD_JOB, SRC.SHIPPED_METER, SRC.ARREARS)


@dataclass
class Want:
    """A task a source asks for."""

    source: str
    source_ref: str
    kind: str
    priority: int
    site: Site
    title: str
    customer: object = None
    meter: object = None
    details: str = ""
    due_at: dt.datetime | None = None
    assignee: User | None = None


@dataclass
class SyncResult:
    created: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    finished: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {k: len(v) for k, v in vars(self).items()}


def _due(priority: int, at: dt.datetime) -> dt.datetime:
    return at + DUE_AFTER.get(priority, DUE_AFTER_LOW)


def _customer_of(meter, at: dt.datetime):
    return current_customer(meter, at=at) if meter is not None else None


# --- what the sources ask for ---------------------------------------------------------------


def from_alerts(at: dt.datetime) -> list[Want]:
    wants = []
    for alert in meter_queries.open_alerts(ALERT_TASKS):
        if alert.incident_id is not None:
            continue  # part of an outage: the incident's task covers it
        kind, priority, title = ALERT_TASKS[alert.kind]
        where = alert.meter.serial if alert.meter else (alert.gateway or alert.site)
        wants.append(
            Want(
                source=SRC.MISSING_READS if alert.kind == A.MISSING_READS else SRC.ALERT,
                source_ref=f"alert:{alert.pk}",
                kind=kind,
                priority=priority,
                site=alert.site,
                meter=alert.meter,
                title=f"{title} ({where})",
                details=alert.message,
                due_at=_due(priority, at),
            )
        )
    return wants


def from_incidents(at: dt.datetime) -> list[Want]:
    wants = []
    for incident in meter_queries.open_incidents():
        wants.append(
            Want(
                source=SRC.ALERT,
                source_ref=f"incident:{incident.pk}",
                kind=K.FIX,
                priority=P.URGENT,
                site=incident.site,
                title=f"Outage at {incident.site.name}: find and fix the cause",
                details=f"{incident.peak_meters} of {incident.watched_meters} meters affected "
                f"since {incident.started_at.astimezone(incident.site.zone):%d %b %H:%M}.",
                due_at=_due(P.URGENT, at),
            )
        )
    return wants


def from_requests(at: dt.datetime) -> list[Want]:
    wants = []
    for request in request_queries.open_requests():
        kind, priority, title = REQUEST_TASKS.get(request.kind, (K.OTHER, P.NORMAL, "Follow up"))
        customer = request.customer
        due = _due(priority, at)
        if request.due_on:
            end_of_day = dt.datetime.combine(request.due_on, dt.time(18), customer.site.zone)
            due = end_of_day.astimezone(dt.UTC)
        wants.append(
            Want(
                source=SRC.REQUEST,
                source_ref=f"request:{request.pk}",
                kind=kind,
                priority=priority,
                site=customer.site,
                customer=customer,
                title=f"{title}: SR-{request.pk}, {customer.full_name}",
                details=request.description,
                due_at=due,
                assignee=request.assigned_to,
            )
        )
    return wants


def from_field_jobs(at: dt.datetime) -> list[Want]:
    wants = []
    for job in job_queries.open_field_jobs():
        cut = job.breaker == FieldJob.Breaker.OPENED
        kind, priority = (K.DISCONNECT, P.NORMAL) if cut else (K.RECONNECT, P.URGENT)
        verb = "Disconnect: open the breaker" if cut else "Reconnect: close the breaker"
        wants.append(
            Want(
                source=SRC.FIELD_JOB,
                source_ref=f"field_job:{job.pk}",
                kind=kind,
                priority=priority,
                site=job.site,
                meter=job.meter,
                title=f"{verb} and seal it ({job.meter.serial})",
                details=job.note,
                due_at=_due(priority, at),
            )
        )
    return wants


def from_shipped_meters(at: dt.datetime) -> list[Want]:
    return [
        Want(
            source=SRC.SHIPPED_METER,
            source_ref=f"install:{meter.pk}",
            kind=K.INSTALL,
            priority=P.NORMAL,
            site=meter.site,
            meter=meter,
            title=f"Install meter {meter.serial} at address {meter.modbus_address}",
            details=meter.label,
            due_at=_due(P.NORMAL, at),
        )
        for meter in meter_queries.shipped_meters()
    ]


def from_arrears(at: dt.datetime) -> list[Want]:
    return [
        Want(
            source=SRC.ARREARS,
            source_ref=f"arrears:{row.notice_id}",
            kind=K.COLLECT,
            priority=P.NORMAL,
            site=row.customer.site,
            customer=row.customer,
            title=f"Collect arrears: {row.customer.full_name} owes {row.currency} {row.owed:,}",
            details=f"Disconnection may be asked from {row.disconnect_from:%d %b %Y}.",
            due_at=_due(P.NORMAL, at),
        )
        for row in arrears_queries.past_notice(now=at)
    ]


SOURCES = (from_incidents, from_alerts, from_requests, from_field_jobs, from_shipped_meters)


# --- assignment ---------------------------------------------------------------------------------


def open_load(user_ids) -> Counter:
    """Open tasks per person."""
    rows = (
        FieldTask.objects.filter(status__in=FieldTask.OPEN_STATUSES, assigned_to__in=user_ids)
        .values("assigned_to")
        .annotate(n=Count("id"))
        .order_by()
    )
    return Counter({row["assigned_to"]: row["n"] for row in rows})


def least_loaded_agent(site: Site) -> User | None:
    """The site's field agent with the fewest open tasks (ties: by username), or None."""
    agents = list(staff_of_site(site, {Role.FIELD_AGENT}).order_by("username"))
    if not agents:
        return None
    load = open_load([a.pk for a in agents])
    return min(agents, key=lambda a: (load[a.pk], a.username))


def _assignee(want: Want) -> User | None:
    person = want.assignee
    if person is not None and services.assignable_people(want.site).filter(pk=person.pk).exists():
        return person
    return least_loaded_agent(want.site)


# --- the sync -----------------------------------------------------------------------------------


def wanted(at: dt.datetime) -> list[Want]:
    """Every task the sources ask for now."""
    found = []
    for source in (*SOURCES, from_arrears):
        found.extend(source(at))
    return found


def _create(want: Want, at: dt.datetime) -> FieldTask | None:
    try:
        with transaction.atomic():
            return services.task_create(
                site=want.site,
                kind=want.kind,
                title=want.title,
                source=want.source,
                source_ref=want.source_ref,
                priority=want.priority,
                # The meter's customer is looked up only for a task about to be made.
                customer=want.customer or _customer_of(want.meter, at),
                meter=want.meter,
                details=want.details,
                due_at=want.due_at,
                assign_to=_assignee(want),
                now=at,
            )
    except IntegrityError:
        log.info("task for %s made meanwhile by another sync", want.source_ref)
        return None


def _ids(refs, prefix: str) -> list[int]:
    return [int(r.split(":")[1]) for r in refs if r.startswith(prefix)]


def _gone(task: FieldTask, meters: dict, jobs: dict, at: dt.datetime, result: SyncResult):
    """The task's source is no longer there: done elsewhere, or cancel if not started."""
    ref = task.source_ref
    if ref.startswith("install:"):
        status = meters.get(int(ref.split(":")[1]))
        if status in (MeterStatus.INSTALLED, MeterStatus.COMMISSIONED):
            services.task_finish_by_source(task=task, note=f"meter {status}", now=at)
            result.finished.append(task.pk)
            return
    if ref.startswith("field_job:") and jobs.get(int(ref.split(":")[1])) == FieldJob.Status.DONE:
        services.task_finish_by_source(task=task, note="field job recorded as done", now=at)
        result.finished.append(task.pk)
        return
    if task.status in (FieldTask.Status.OPEN, FieldTask.Status.ASSIGNED):
        services.task_cancel(task=task, note="no longer needed: the source has gone", now=at)
        result.cancelled.append(task.pk)


def sync(now: dt.datetime | None = None) -> SyncResult:
    """Make the tasks the sources ask for and settle those whose source has gone."""
    at = clock.resolve(now)
    result = SyncResult()
    wants = wanted(at)
    refs = {w.source_ref for w in wants}
    existing = set(
        FieldTask.objects.filter(source_ref__in=refs).values_list("source_ref", flat=True)
    )
    stale = list(
        FieldTask.objects.filter(status__in=FieldTask.OPEN_STATUSES, source__in=SYNCED)
        .exclude(source_ref="")
        .exclude(source_ref__in=refs)
    )
    refs_gone = [t.source_ref for t in stale]
    meters = meter_queries.meter_statuses(_ids(refs_gone, "install:"))
    jobs = job_queries.field_job_statuses(_ids(refs_gone, "field_job:"))
    for task in stale:
        _gone(task, meters, jobs, at, result)
    for want in wants:
        if want.source_ref in existing:
            continue
        if want.source == SRC.ARREARS and _collect_open(want.customer):
            continue  # one collection visit per customer at a time
        task = _create(want, at)
        if task is not None:
            result.created.append(task.pk)
    return result


def _collect_open(customer) -> bool:
    return FieldTask.objects.filter(
        source=SRC.ARREARS, customer=customer, status__in=FieldTask.OPEN_STATUSES
    ).exists()
