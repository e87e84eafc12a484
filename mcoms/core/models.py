"""Organisation (regions → clusters → sites), people, and the audit trail."""

from __future__ import annotations

import zoneinfo

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from mcoms.core.roles import CAPABILITIES, STAFF_ROLES, Role

MODBUS_MIN, MODBUS_MAX = 2, 247


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known time zone (e.g. Africa/Kampala).")


class Region(models.Model):
    name = models.CharField(max_length=100, unique=True)
    code = models.SlugField(max_length=20, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Cluster(models.Model):
    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="clusters")
    name = models.CharField(max_length=100)
    code = models.SlugField(max_length=20, unique=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["region", "name"], name="cluster_name_per_region")
        ]

    def __str__(self) -> str:
        return self.name


class Site(models.Model):
    """One mini-grid: its own clock, currency, holidays and Modbus address plan."""

    class Currency(models.TextChoices):
        UGX = "UGX", "Uganda shilling"
        KES = "KES", "Kenya shilling"
        NGN = "NGN", "Nigerian naira"

    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="sites")
    name = models.CharField(max_length=100, unique=True)
    code = models.SlugField(
        max_length=20, unique=True, help_text="Short code, used in account numbers."
    )
    timezone = models.CharField(
        max_length=64, default="Africa/Kampala", validators=[validate_timezone]
    )
    currency = models.CharField(max_length=3, choices=Currency.choices, default=Currency.UGX)
    country = models.CharField(max_length=2, default="UG", help_text="ISO 3166 code")
    single_phase_address_min = models.PositiveSmallIntegerField(
        default=10, validators=[MinValueValidator(MODBUS_MIN), MaxValueValidator(MODBUS_MAX)]
    )
    single_phase_address_max = models.PositiveSmallIntegerField(
        default=99, validators=[MinValueValidator(MODBUS_MIN), MaxValueValidator(MODBUS_MAX)]
    )
    three_phase_address_min = models.PositiveSmallIntegerField(
        default=100, validators=[MinValueValidator(MODBUS_MIN), MaxValueValidator(MODBUS_MAX)]
    )
    three_phase_address_max = models.PositiveSmallIntegerField(
        default=247, validators=[MinValueValidator(MODBUS_MIN), MaxValueValidator(MODBUS_MAX)]
    )
    missing_read_intervals = models.PositiveSmallIntegerField(
        default=4,
        validators=[MinValueValidator(1)],
        help_text="A meter with no reading for this many log intervals is not reporting.",
    )
    latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        for kind in ("single_phase", "three_phase"):
            low = getattr(self, f"{kind}_address_min")
            high = getattr(self, f"{kind}_address_max")
            if low is not None and high is not None and low > high:
                raise ValidationError(f"The {kind.replace('_', '-')} address range is empty.")

    def address_range(self, phases: int) -> range:
        """Modbus addresses planned for meters with this many phases on this site."""
        if phases == 3:
            return range(self.three_phase_address_min, self.three_phase_address_max + 1)
        return range(self.single_phase_address_min, self.single_phase_address_max + 1)

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


class PublicHoliday(models.Model):
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="holidays")
    date = models.DateField()
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["date"]
        constraints = [
            models.UniqueConstraint(fields=["site", "date"], name="holiday_once_per_day")
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.name}"


class User(AbstractUser):
    """A person who signs in: staff of one role, or a customer."""

    role = models.CharField(max_length=32, choices=Role.choices, default=Role.FIELD_AGENT)
    phone = models.CharField(max_length=20, blank=True, help_text="E.164, e.g. +256772123456")
    regions = models.ManyToManyField(Region, blank=True, related_name="staff")
    clusters = models.ManyToManyField(Cluster, blank=True, related_name="staff")
    sites = models.ManyToManyField(Site, blank=True, related_name="staff")

    def __str__(self) -> str:
        return self.get_full_name() or self.username

    @property
    def is_staff_role(self) -> bool:
        return self.role in STAFF_ROLES

    def can(self, capability: str) -> bool:
        """True when this user's role carries ``capability`` (scope is checked separately)."""
        if not self.is_active:
            return False
        if self.is_superuser:
            return True
        return capability in CAPABILITIES.get(self.role, frozenset())


class AuditEvent(models.Model):
    """Who (or which task) changed what, when, through which channel, before and after."""

    class Channel(models.TextChoices):
        WEB = "web", "Web"
        API = "api", "API"
        ADMIN = "admin", "Admin"
        AGENT_APP = "agent_app", "Field agent app"
        PORTAL = "portal", "Customer portal"
        TASK = "task", "Background task"
        COMMAND = "command", "Command line"
        IMPORT = "import", "Import"
        USSD = "ussd", "USSD"
        SMS = "sms", "SMS"
        SYSTEM = "system", "System"

    class Action(models.TextChoices):
        CREATE = "create", "Created"
        UPDATE = "update", "Updated"
        DELETE = "delete", "Deleted"
        TRANSITION = "transition", "Status changed"

    at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    actor_label = models.CharField(max_length=150, help_text="Name of the person or task")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    action = models.CharField(max_length=16, choices=Action.choices)
    object_type = models.CharField(max_length=100, db_index=True, help_text="app_label.model")
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200)
    site = models.ForeignKey(Site, null=True, blank=True, on_delete=models.SET_NULL)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.object_repr}"

    def changes(self) -> list[tuple[str, object, object]]:
        """(field, before, after) for each field whose value differs."""
        before, after = self.before or {}, self.after or {}
        keys = sorted(set(before) | set(after))
        return [(k, before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k)]


class OutboxTask(models.Model):
    """A Celery task to publish, written in the transaction that asked for it.

    :mod:`mcoms.core.outbox` publishes it once the transaction commits and deletes the
    row; a row still here (the broker was down, the process died) is published again by
    the outbox sweep. The tasks queued this way are idempotent: a second publish is harmless.
    """

    task = models.CharField(max_length=200)
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    eta = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_index=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Failed publishes")
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.task}{tuple(self.args)} (queued {self.created_at:%Y-%m-%d %H:%M:%S})"


class TaskDelivery(models.Model):
    """How often workers began and finished one Celery task (its id and retry number).

    A message whose worker died mid-task (killed, out of memory) is delivered again;
    the task base class (:mod:`mcoms.core.taskbase`) counts the starts that never
    finished and refuses the task after ``TASK_WORKER_LOST_LIMIT`` of them. Kept a day.
    """

    task_id = models.CharField(max_length=64)
    retries = models.PositiveIntegerField(default=0)
    task = models.CharField(max_length=200)
    started = models.PositiveIntegerField(default=0)
    finished = models.PositiveIntegerField(default=0)
    first_at = models.DateTimeField()
    last_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["task_id", "retries"], name="one_delivery_row_per_try")
        ]

    def __str__(self) -> str:
        return f"{self.task} {self.task_id} try {self.retries}: {self.started} started"
