"""Alerts: something on the grid that a person should look at (a silent meter, a silent
gateway, later anomalies and outages). One open alert per subject and kind."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from mcoms.core.models import Site
from metering.models.inventory import Gateway, Meter


class Alert(models.Model):
    class Kind(models.TextChoices):
        MISSING_READS = "missing_reads", "Meter not reporting"
        GATEWAY_SILENT = "gateway_silent", "Gateway silent"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"

    kind = models.CharField(max_length=30, choices=Kind.choices)
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="alerts")
    meter = models.ForeignKey(
        Meter, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    gateway = models.ForeignKey(
        Gateway, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    status = models.CharField(max_length=14, choices=Status.choices, default=Status.OPEN)
    message = models.CharField(max_length=300)
    details = models.JSONField(default=dict, blank=True)
    opened_at = models.DateTimeField(db_index=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        indexes = [models.Index(fields=["site", "status"])]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "meter"],
                condition=models.Q(resolved_at__isnull=True, meter__isnull=False),
                name="one_open_alert_per_meter_and_kind",
            ),
            models.UniqueConstraint(
                fields=["kind", "gateway"],
                condition=models.Q(
                    resolved_at__isnull=True, meter__isnull=True, gateway__isnull=False
                ),
                name="one_open_alert_per_gateway_and_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.message}"
