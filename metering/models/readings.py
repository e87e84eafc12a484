"""Meter data: interval readings, the quarantine, and the rollups pages and bills read.

``Reading`` is the big table. On PostgreSQL it is range-partitioned by month on
``ts`` (see ``metering.partitions``); its primary key is (meter, ts), so a meter
has one reading per timestamp by construction. Nothing scans it on a page load:
pages and billing read ``HourlyUsage``/``DailyUsage``/``SiteDailyUsage``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from mcoms.core.models import Site
from metering.models.inventory import Gateway, Meter


class Reading(models.Model):
    """One interval reading of one meter: the cumulative register and the values with it."""

    class Kind(models.TextChoices):
        REAL = "real", "Measured"
        ESTIMATED = "estimated", "Estimated by the server"

    class Quality(models.TextChoices):
        VALID = "valid", "Valid"
        FLAGGED = "flagged", "Flagged (out of billing until accepted)"
        ACCEPTED = "accepted", "Accepted by a person"
        RESET = "reset", "Register reset (new baseline)"

    pk = models.CompositePrimaryKey("meter_id", "ts")
    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, db_constraint=False)
    ts = models.DateTimeField()
    energy_kwh = models.DecimalField(max_digits=14, decimal_places=3, null=True)
    export_kwh = models.DecimalField(max_digits=14, decimal_places=3, null=True)
    voltage_l1 = models.FloatField(null=True)
    voltage_l2 = models.FloatField(null=True)
    voltage_l3 = models.FloatField(null=True)
    current_l1 = models.FloatField(null=True)
    current_l2 = models.FloatField(null=True)
    current_l3 = models.FloatField(null=True)
    power_kw = models.FloatField(null=True)
    power_factor = models.FloatField(null=True)
    frequency_hz = models.FloatField(null=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.REAL)
    quality = models.CharField(max_length=10, choices=Quality.choices, default=Quality.VALID)
    flags = models.CharField(max_length=300, blank=True, help_text="Why it was flagged")
    gateway_id = models.BigIntegerField(null=True)
    received_at = models.DateTimeField()

    class Meta:
        managed = True
        ordering = ["meter_id", "ts"]

    def __str__(self) -> str:
        return f"{self.meter_id}@{self.ts:%Y-%m-%d %H:%M} {self.energy_kwh} kWh"

    @property
    def billable(self) -> bool:
        return self.quality in (self.Quality.VALID, self.Quality.ACCEPTED, self.Quality.RESET)


class ReadingPartition(models.Model):
    """A month the readings table holds (on PostgreSQL: a partition that exists).

    Readings outside every registered month are quarantined, never lost and never
    put in a default partition.
    """

    month = models.DateField(unique=True, help_text="First day of the month (UTC)")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["month"]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m}"


class QuarantinedReading(models.Model):
    """A reading the platform could not store as a meter's reading, kept with the reason."""

    gateway = models.ForeignKey(Gateway, null=True, on_delete=models.SET_NULL)
    meter = models.ForeignKey(Meter, null=True, blank=True, on_delete=models.SET_NULL)
    address = models.PositiveSmallIntegerField(null=True)
    ts = models.DateTimeField(null=True)
    payload = models.JSONField()
    reason = models.CharField(max_length=300)
    source = models.CharField(max_length=20, default="edge")
    received_at = models.DateTimeField(db_index=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.address}@{self.ts}: {self.reason}"


class HourlyUsage(models.Model):
    """Energy a meter used in one UTC hour, from its cumulative register."""

    meter = models.ForeignKey(Meter, on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField()
    kwh = models.DecimalField(max_digits=14, decimal_places=3)
    estimated_kwh = models.DecimalField(max_digits=14, decimal_places=3, default=0)
    intervals = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["meter", "hour"]
        constraints = [models.UniqueConstraint(fields=["meter", "hour"], name="one_hour_per_meter")]

    def __str__(self) -> str:
        return f"{self.meter_id}@{self.hour:%Y-%m-%d %H}h {self.kwh} kWh"


class DailyUsage(models.Model):
    """Energy a meter used on one day of its site's calendar."""

    meter = models.ForeignKey(Meter, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    kwh = models.DecimalField(max_digits=14, decimal_places=3)
    estimated_kwh = models.DecimalField(max_digits=14, decimal_places=3, default=0)
    intervals = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["meter", "day"]
        constraints = [models.UniqueConstraint(fields=["meter", "day"], name="one_day_per_meter")]

    def __str__(self) -> str:
        return f"{self.meter_id}@{self.day} {self.kwh} kWh"


class SiteDailyUsage(models.Model):
    """Energy all of a site's meters used on one day of its calendar."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    kwh = models.DecimalField(max_digits=16, decimal_places=3)
    estimated_kwh = models.DecimalField(max_digits=16, decimal_places=3, default=0)
    meters = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["site", "day"]
        constraints = [models.UniqueConstraint(fields=["site", "day"], name="one_day_per_site")]

    def __str__(self) -> str:
        return f"{self.site_id}@{self.day} {self.kwh} kWh"


class SiteHourlyUsage(models.Model):
    """Energy all of a site's meters used in one UTC hour (the load profile's source)."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField()
    kwh = models.DecimalField(max_digits=16, decimal_places=3)
    estimated_kwh = models.DecimalField(max_digits=16, decimal_places=3, default=0)
    meters = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["site", "hour"]
        constraints = [models.UniqueConstraint(fields=["site", "hour"], name="one_hour_per_site")]

    def __str__(self) -> str:
        return f"{self.site_id}@{self.hour:%Y-%m-%d %H}h {self.kwh} kWh"
