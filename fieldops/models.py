"""Field operations: tasks for field agents, their visits, and forms sent from the field app.

Where tasks come from
---------------------
Lower apps (customers, metering, billing) know nothing of field operations: the layers point
one way. Field operations *pulls*: :mod:`fieldops.work` looks at what lower apps publish
through their selectors (open alerts, meters not reporting, open service requests, steering's
field jobs, meters shipped to a site and waiting to be installed, accounts in arrears) and
makes one task per thing, keyed by ``source_ref`` (``"alert:12"``, ``"request:5"``, ...), so
running it again never makes a second task. When the thing goes away (the alert resolves, the
request closes) a task nobody has started is cancelled; one in progress is left to its agent.

Forms sent from the field app
-----------------------------
A field agent's phone may be offline. The app queues each form in the browser with an id made
on the phone (a UUID) and sends it when the connection returns, perhaps twice. The server
keeps one :class:`Submission` per id: a repeated id gets the first answer back and changes
nothing (see :mod:`fieldops.offline`).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from mcoms.core import audit
from mcoms.core.models import Site

USER = settings.AUTH_USER_MODEL


class FieldTask(models.Model):
    """One piece of work for a field agent at a site."""

    class Kind(models.TextChoices):
        INSTALL = "install", "Install a meter"
        FIX = "fix", "Fix a fault"
        READ = "read", "Read a meter"
        COLLECT = "collect", "Collect a payment"
        INSPECT = "inspect", "Inspect a meter"
        DISCONNECT = "disconnect", "Disconnect supply"
        RECONNECT = "reconnect", "Reconnect supply"
        CONNECT = "connect", "Connect a new customer"
        PACKAGE = "package", "Change a package"
        OTHER = "other", "Other"

    class Status(models.TextChoices):
        OPEN = "open", "Open (nobody assigned)"
        ASSIGNED = "assigned", "Assigned"
        IN_PROGRESS = "in_progress", "In progress"
        DONE = "done", "Done"
        FAILED = "failed", "Could not be done"
        CANCELLED = "cancelled", "Cancelled"

    class Source(models.TextChoices):
        ALERT = "alert", "Alert"
        MISSING_READS = "missing_reads", "Meter not reporting"
        REQUEST = "request", "Service request"
        FIELD_JOB = "field_job", "Steering field job"
        SHIPPED_METER = "shipped_meter", "Meter waiting to be installed"
        ARREARS = "arrears", "Arrears"
        MANUAL = "manual", "Created by staff"

    class Priority(models.IntegerChoices):
        URGENT = 1, "Urgent"
        NORMAL = 2, "Normal"
        LOW = 3, "Low"

    OPEN_STATUSES = (Status.OPEN, Status.ASSIGNED, Status.IN_PROGRESS)
    CLOSED_STATUSES = (Status.DONE, Status.FAILED, Status.CANCELLED)

    kind = models.CharField(max_length=12, choices=Kind.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.NORMAL)
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="field_tasks")
    customer = models.ForeignKey(
        "customers.Customer", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    meter = models.ForeignKey(
        "metering.Meter", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.MANUAL)
    source_ref = models.CharField(
        max_length=60,
        blank=True,
        help_text='What made the task, e.g. "alert:12" or "request:5"; one task per source',
    )
    title = models.CharField(max_length=200)
    details = models.TextField(blank=True)
    assigned_to = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="field_tasks"
    )
    assigned_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["priority", "due_at", "created_at", "id"]
        indexes = [
            models.Index(fields=["assigned_to", "status"]),
            models.Index(fields=["site", "status"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["source_ref"], condition=~Q(source_ref=""), name="one_task_per_source"
            )
        ]

    def __str__(self) -> str:
        return f"Task {self.pk}: {self.title}"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    def snapshot(self) -> dict:
        return audit.snapshot(
            self,
            [
                "kind",
                "status",
                "priority",
                "site",
                "customer",
                "meter",
                "source_ref",
                "title",
                "assigned_to",
                "due_at",
                "outcome",
                "closed_at",
            ],
        )


class TaskEvent(models.Model):
    """A step in a task's life: created, assigned, started, visited, closed."""

    task = models.ForeignKey(FieldTask, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=12, blank=True)
    to_status = models.CharField(max_length=12)
    at = models.DateTimeField()
    by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    by_label = models.CharField(max_length=150)
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.from_status or 'new'} → {self.to_status}"


def visit_photo_path(visit: Visit, filename: str) -> str:
    return f"fieldops/visits/{visit.task_id}/{filename}"


class Visit(models.Model):
    """An agent at the place of a task: when, where (GPS when the phone gave it) and how it went."""

    class Outcome(models.TextChoices):
        DONE = "done", "Done"
        NOT_HOME = "not_home", "Customer not at home"
        NO_ACCESS = "no_access", "No access to the meter"
        NEEDS_PARTS = "needs_parts", "Needs parts or another visit"
        REFUSED = "refused", "Customer refused"
        OTHER = "other", "Other"

    task = models.ForeignKey(FieldTask, on_delete=models.CASCADE, related_name="visits")
    agent = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="field_visits")
    visited_at = models.DateTimeField(help_text="When the agent was there (the phone's time)")
    recorded_at = models.DateTimeField(help_text="When the server received it")
    latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    accuracy_m = models.FloatField(null=True, blank=True, help_text="GPS accuracy in metres")
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    note = models.CharField(max_length=500, blank=True)
    photo = models.FileField(upload_to=visit_photo_path, blank=True)

    class Meta:
        ordering = ["-visited_at", "-id"]

    def __str__(self) -> str:
        return f"Visit to task {self.task_id} at {self.visited_at:%Y-%m-%d %H:%M}"

    @property
    def has_position(self) -> bool:
        return self.latitude is not None and self.longitude is not None


class Submission(models.Model):
    """A form sent from the field app, known by the id the phone gave it."""

    class Status(models.TextChoices):
        APPLIED = "applied", "Applied"
        REJECTED = "rejected", "Rejected (the form had errors)"

    client_id = models.UUIDField(unique=True)
    user = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=40, help_text="Which form, e.g. cash_payment")
    status = models.CharField(max_length=10, choices=Status.choices)
    received_at = models.DateTimeField()
    result_url = models.CharField(max_length=300, blank=True)
    object_ref = models.CharField(max_length=60, blank=True, help_text='e.g. "payment:41"')
    message = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.action} {self.client_id} ({self.status})"
