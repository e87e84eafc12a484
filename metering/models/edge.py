"""The link to each gateway's Pi: tokens, uploaded batches, bus slots, meter health,
commands and scan discoveries."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from metering.models.inventory import Gateway, Meter


class GatewayToken(models.Model):
    """A gateway's secret, stored only as its SHA-256 hash.

    Rotation gives the old token an ``expires_at`` (a grace period for a Pi that is
    offline with a backlog); revocation sets ``revoked_at`` and ends it at once.
    """

    gateway = models.ForeignKey(Gateway, on_delete=models.CASCADE, related_name="tokens")
    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8, help_text="First characters, to tell tokens apart")
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.gateway} token {self.prefix}…"


class EdgeBatch(models.Model):
    """One accepted upload, kept so a retried ``batch_id`` gets the same answer."""

    batch_id = models.UUIDField(unique=True)
    gateway = models.ForeignKey(Gateway, on_delete=models.CASCADE, related_name="batches")
    content_hash = models.CharField(max_length=64)
    answer = models.JSONField()
    received_at = models.DateTimeField(db_index=True)
    readings = models.PositiveIntegerField()

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return str(self.batch_id)


class BusSlot(models.Model):
    """Meter ``meter`` answered at ``address`` on ``gateway``'s bus from ``start`` to ``end``.

    The edge API maps a reading's (gateway, address, ts) to a meter through these.
    """

    gateway = models.ForeignKey(Gateway, on_delete=models.PROTECT, related_name="slots")
    address = models.PositiveSmallIntegerField()
    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="slots")
    start = models.DateTimeField()
    end = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["gateway", "address", "-start"]
        indexes = [models.Index(fields=["gateway", "address", "start"])]
        constraints = [
            models.UniqueConstraint(
                fields=["gateway", "address"],
                condition=models.Q(end__isnull=True),
                name="one_open_slot_per_address",
            )
        ]

    def __str__(self) -> str:
        return f"{self.gateway}:{self.address} = {self.meter.serial}"


class MeterComms(models.Model):
    """What the platform last heard about a meter: values, health and errors."""

    meter = models.OneToOneField(Meter, on_delete=models.CASCADE, related_name="comms")
    last_reading_ts = models.DateTimeField(null=True, blank=True)
    last_values = models.JSONField(null=True, blank=True)
    ok = models.BooleanField(null=True)
    last_ok_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=100, blank=True)
    errors_24h = models.JSONField(null=True, blank=True)
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.meter}: {'ok' if self.ok else self.last_error or 'unknown'}"


class EdgeCommand(models.Model):
    """Bus work asked of a gateway (scan, read, probe, set_address), run at most once."""

    class Type(models.TextChoices):
        SCAN = "scan", "Scan the bus"
        READ = "read", "Read a meter"
        PROBE = "probe", "Probe a meter"
        SET_ADDRESS = "set_address", "Change an address"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for the gateway"
        SENT = "sent", "Sent to the gateway"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired"

    gateway = models.ForeignKey(Gateway, on_delete=models.CASCADE, related_name="commands")
    type = models.CharField(max_length=16, choices=Type.choices)
    args = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.wire_id} {self.type} ({self.status})"

    @property
    def wire_id(self) -> str:
        """The id the Pi sees (``c-81``)."""
        return f"c-{self.pk}"


class Discovery(models.Model):
    """A meter that answered a bus scan, to be accepted as a meter or dismissed."""

    class Status(models.TextChoices):
        NEW = "new", "New"
        ACCEPTED = "accepted", "Accepted"
        DISMISSED = "dismissed", "Dismissed"

    gateway = models.ForeignKey(Gateway, on_delete=models.CASCADE, related_name="discoveries")
    scanned_at = models.DateTimeField()
    address = models.PositiveSmallIntegerField()
    model_guess = models.CharField(max_length=20, blank=True)
    voltage_v = models.FloatField(null=True, blank=True)
    serial = models.CharField(max_length=20, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    meter = models.ForeignKey(Meter, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-scanned_at", "address"]

    def __str__(self) -> str:
        return f"{self.gateway}:{self.address} {self.model_guess}"
