"""Gateways, meters, their lifecycle history, and which customer each meter serves."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models

from mcoms.core.models import Site
from metering.lifecycle import HOLDS_ADDRESS, OVERDUE_AFTER, Status


class Gateway(models.Model):
    """One Raspberry Pi on one RS485 bus at a site."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="gateways")
    name = models.SlugField(max_length=50, unique=True, help_text="e.g. kla-block-a")
    description = models.CharField(max_length=200, blank=True)
    meter_limit = models.PositiveSmallIntegerField(
        default=32,
        help_text="Unit loads one RS485 segment carries; raise only for fractional-load "
        "transceivers or with a repeater.",
    )
    created_at = models.DateTimeField()
    # What the Pi polls (GET /api/v1/edge/config); the version moves with every change.
    config_version = models.PositiveIntegerField(default=1)
    poll_interval_s = models.PositiveIntegerField(default=10)
    log_interval_s = models.PositiveIntegerField(default=900)
    baudrate = models.PositiveIntegerField(default=9600)
    parity = models.CharField(
        max_length=1, default="N", choices=[("N", "N"), ("E", "E"), ("O", "O")]
    )
    stopbits = models.PositiveSmallIntegerField(default=2, choices=[(1, "1"), (2, "2")])
    bytesize = models.PositiveSmallIntegerField(default=8)
    # The last heartbeat, as the Pi sent it.
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    last_heartbeat = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["site__name", "name"]

    def __str__(self) -> str:
        return self.name


class Meter(models.Model):
    """One physical meter, from the store room to the wall and back."""

    class Model(models.TextChoices):
        DDSU666 = "DDSU666", "CHINT DDSU666 (single-phase)"
        DTSU666 = "DTSU666", "CHINT DTSU666 (three-phase)"
        CALIN = "CALIN", "Calin smart meter"

    serial = models.CharField(max_length=20, unique=True)
    model = models.CharField(max_length=10, choices=Model.choices)
    phases = models.PositiveSmallIntegerField(choices=[(1, "1"), (3, "3")])
    site = models.ForeignKey(
        Site, null=True, blank=True, on_delete=models.PROTECT, related_name="meters"
    )
    modbus_address = models.PositiveSmallIntegerField(null=True, blank=True)
    gateway = models.ForeignKey(
        Gateway, null=True, blank=True, on_delete=models.PROTECT, related_name="meters"
    )
    ct_ratio = models.DecimalField(
        max_digits=8,
        decimal_places=2,
        default=Decimal("1"),
        validators=[MinValueValidator(1)],
        help_text="Three-phase CT meters: factor from meter values to primary values",
    )
    label = models.CharField(
        max_length=200, blank=True, help_text="Building/customer as written on site"
    )
    # How the Pi reads it (see the CHINT reference: energy registers differ by firmware).
    variant = models.CharField(max_length=30, blank=True, help_text="Register map variant")
    energy_register = models.CharField(max_length=10, blank=True, help_text="e.g. 0x4000")
    polling_enabled = models.BooleanField(default=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UNASSIGNED)
    status_changed_at = models.DateTimeField()
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["site__name", "modbus_address", "serial"]
        indexes = [models.Index(fields=["site", "status"]), models.Index(fields=["gateway"])]
        # The service checks these first and says why; the database is the backstop.
        constraints = [
            models.UniqueConstraint(
                fields=["site", "modbus_address"],
                condition=models.Q(status__in=sorted(HOLDS_ADDRESS)),
                name="address_planned_once_per_site",
            ),
            models.UniqueConstraint(
                fields=["gateway", "modbus_address"],
                condition=models.Q(status__in=sorted(HOLDS_ADDRESS)),
                name="address_once_per_bus",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model} {self.serial}"

    @property
    def is_chint(self) -> bool:
        return self.model in (self.Model.DDSU666, self.Model.DTSU666)

    def overdue(self, now: datetime) -> bool:
        """Assigned for more than 7 days, or installed for more than 2 without commissioning."""
        limit = OVERDUE_AFTER.get(self.status)
        return limit is not None and now - self.status_changed_at > limit


class MeterEvent(models.Model):
    """One dated, signed step in a meter's lifecycle."""

    meter = models.ForeignKey(Meter, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, choices=Status.choices)
    at = models.DateTimeField()
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    by_name = models.CharField(max_length=150, help_text="Who did the step (as signed)")
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.meter} → {self.to_status} {self.at:%Y-%m-%d} by {self.by_name}"


class MeterAssignment(models.Model):
    """A meter serving a customer from ``start`` until ``end`` (open while current)."""

    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="assignments")
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="meter_assignments"
    )
    start = models.DateTimeField()
    end = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-start"]
        constraints = [
            models.UniqueConstraint(
                fields=["meter"],
                condition=models.Q(end__isnull=True),
                name="one_open_assignment_per_meter",
            ),
            models.CheckConstraint(
                condition=models.Q(end__isnull=True) | models.Q(end__gt=models.F("start")),
                name="assignment_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.meter} → {self.customer_id} from {self.start:%Y-%m-%d}"
