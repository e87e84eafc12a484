"""Registers read by hand: a field agent reads a meter's display and photographs it."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from metering.models.inventory import Meter


def manual_photo_path(reading: ManualReading, filename: str) -> str:
    return f"metering/manual/{reading.meter_id}/{filename}"


class ManualReading(models.Model):
    """A reading of a meter's energy register taken by a person, with the photo as evidence."""

    class Status(models.TextChoices):
        STORED = "stored", "Stored as the meter's reading"
        FLAGGED = "flagged", "Flagged for review"
        REJECTED = "rejected", "Rejected"

    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="manual_readings")
    read_at = models.DateTimeField(help_text="When the display was read")
    energy_kwh = models.DecimalField(max_digits=14, decimal_places=3)
    photo = models.FileField(upload_to=manual_photo_path, blank=True)
    note = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.STORED)
    flags = models.CharField(max_length=300, blank=True, help_text="Why it was flagged")
    read_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["-read_at", "-id"]

    def __str__(self) -> str:
        return (
            f"{self.meter_id} read by hand at {self.read_at:%Y-%m-%d %H:%M}: {self.energy_kwh} kWh"
        )
