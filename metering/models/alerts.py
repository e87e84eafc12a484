"""Alerts, outage incidents and the per-site limits the watches use.

An alert is something on the grid a person should look at: a silent meter or gateway
(``metering.watch``), unusual consumption (``metering.anomaly_tasks``), poor power
quality (``metering.power_quality``) or a site outage (``metering.incidents``). One
alert is open (open or acknowledged, not resolved) per subject and kind: per meter,
per gateway, or — for alerts about a whole site — per site.

An incident gathers what happened to many meters of a site at once (they lost
voltage or went silent together): one record with a start and an end, instead of a
hundred alerts.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from mcoms.core.models import Site
from metering.models.inventory import Gateway, Meter


class Incident(models.Model):
    """Many meters of one site affected together, from ``started_at`` to ``ended_at``."""

    class Kind(models.TextChoices):
        OUTAGE = "outage", "Outage (meters lost voltage or went silent together)"

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="incidents")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.OUTAGE)
    started_at = models.DateTimeField(db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    meters = models.ManyToManyField(Meter, blank=True, related_name="incidents")
    watched_meters = models.PositiveIntegerField(default=0, help_text="Meters on the site's buses")
    peak_meters = models.PositiveIntegerField(default=0, help_text="Most meters affected at once")
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["site", "kind"],
                condition=models.Q(ended_at__isnull=True),
                name="one_open_incident_per_site_and_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.site} from {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def is_open(self) -> bool:
        return self.ended_at is None

    @property
    def duration(self) -> dt.timedelta | None:
        return (self.ended_at - self.started_at) if self.ended_at else None


class Alert(models.Model):
    class Kind(models.TextChoices):
        MISSING_READS = "missing_reads", "Meter not reporting"
        GATEWAY_SILENT = "gateway_silent", "Gateway silent"
        USAGE_HIGH = "usage_high", "Usage above its limits"
        USAGE_LOW = "usage_low", "Usage below its limits"
        USAGE_RUN = "usage_run", "Usage above normal hour after hour"
        POSSIBLE_BYPASS = "possible_bypass", "No consumption while voltage is present"
        NIGHT_SPIKE = "night_spike", "Night-time spike"
        VOLTAGE = "voltage", "Voltage outside limits"
        SUPPLY_LOST = "supply_lost", "No voltage at the meter"
        FREQUENCY = "frequency", "Frequency off"
        POWER_FACTOR = "power_factor", "Low power factor"
        PHASE_IMBALANCE = "phase_imbalance", "Phase imbalance"
        OUTAGE = "outage", "Site outage"

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
    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    status = models.CharField(max_length=14, choices=Status.choices, default=Status.OPEN)
    message = models.CharField(max_length=300)
    details = models.JSONField(default=dict, blank=True)
    opened_at = models.DateTimeField(db_index=True)
    last_seen_at = models.DateTimeField(
        null=True, blank=True, help_text="When the condition was last seen (still or again)"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(max_length=300, blank=True, help_text="What staff found or did")
    escalation_level = models.PositiveSmallIntegerField(
        default=0, help_text="0: site staff; 1: cluster manager; 2: regional manager"
    )
    escalated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        indexes = [
            models.Index(fields=["site", "status"]),
            models.Index(fields=["kind", "status"]),
        ]
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
            models.UniqueConstraint(
                fields=["kind", "site"],
                condition=models.Q(
                    resolved_at__isnull=True, meter__isnull=True, gateway__isnull=True
                ),
                name="one_open_alert_per_site_and_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.message}"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


def _default(name: str, fallback):
    return getattr(settings, name, fallback)


class SiteWatchSettings(models.Model):
    """A site's limits for the usage and power-quality watches (defaults when none saved).

    Defaults can be changed for every site at once with Django settings named
    ``METERING_WATCH_<FIELD>`` (e.g. ``METERING_WATCH_CHART_K = 2.5``).
    """

    class Method(models.TextChoices):
        BASELINE = "baseline", "Hour-of-day baseline (plain chart while history is short)"
        PLAIN = "plain", "Plain control chart (mean ± k·σ)"

    site = models.OneToOneField(Site, on_delete=models.CASCADE, related_name="watch_settings")
    usage_method = models.CharField(max_length=10, choices=Method.choices, default=Method.BASELINE)
    chart_k = models.FloatField(
        default=2.0,
        validators=[MinValueValidator(0.5), MaxValueValidator(10)],
        help_text="Plain chart: limits are the mean ± k standard deviations",
    )
    robust_k = models.FloatField(
        default=3.0,
        validators=[MinValueValidator(0.5), MaxValueValidator(20)],
        help_text="Hour-of-day baseline: limits are the median ± k robust deviations",
    )
    history_days = models.PositiveSmallIntegerField(
        default=28,
        validators=[MinValueValidator(7), MaxValueValidator(90)],
        help_text="Days of past hourly usage the limits are drawn from",
    )
    baseline_weeks = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(2), MaxValueValidator(12)],
        help_text="Weeks of history the hour-of-day baseline needs before it is used",
    )
    run_length = models.PositiveSmallIntegerField(
        default=8,
        validators=[MinValueValidator(3), MaxValueValidator(24)],
        help_text="Hours in a row above the centre line that make a run",
    )
    night_start = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(23)], help_text="Local hour the night begins"
    )
    night_end = models.PositiveSmallIntegerField(
        default=5, validators=[MaxValueValidator(23)], help_text="Local hour the night ends"
    )
    nominal_voltage = models.FloatField(default=230.0)
    voltage_tolerance_pct = models.FloatField(
        default=10.0, validators=[MinValueValidator(1), MaxValueValidator(50)]
    )
    nominal_frequency = models.FloatField(default=50.0)
    frequency_tolerance_pct = models.FloatField(
        default=1.0, validators=[MinValueValidator(0.1), MaxValueValidator(10)]
    )
    min_power_factor = models.FloatField(
        default=0.85, validators=[MinValueValidator(0), MaxValueValidator(1)]
    )
    max_imbalance_pct = models.FloatField(
        default=10.0, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    outage_min_meters = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(2)],
        help_text="At least this many meters together make an outage…",
    )
    outage_share_pct = models.FloatField(
        default=50.0,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="…and at least this share of the site's watched meters",
    )
    escalate_after_minutes = models.PositiveIntegerField(
        default=240,
        validators=[MinValueValidator(5)],
        help_text="An alert nobody acknowledged goes to the next level after this long",
    )
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "site watch settings"

    def __str__(self) -> str:
        return f"Watch settings of {self.site}"

    @classmethod
    def defaults(cls, site: Site | None = None) -> SiteWatchSettings:
        """An unsaved row with the defaults (Django settings override the built-in ones)."""
        row = cls(site=site)
        for f in cls._meta.concrete_fields:
            if f.name in ("id", "site", "updated_at"):
                continue
            name = f"METERING_WATCH_{f.name.upper()}"
            setattr(row, f.attname, _default(name, getattr(row, f.attname)))
        return row

    @classmethod
    def for_site(cls, site: Site) -> SiteWatchSettings:
        """The site's settings, or the defaults (unsaved) when it has none."""
        found = cls.objects.filter(site=site).first()
        return found if found is not None else cls.defaults(site)

    @classmethod
    def for_sites(cls, site_ids) -> dict[int, SiteWatchSettings]:
        """Settings of many sites in one query; defaults for those without a row."""
        ids = set(site_ids)
        found = {s.site_id: s for s in cls.objects.filter(site_id__in=ids)}
        for site_id in ids - set(found):
            row = cls.defaults()
            row.site_id = site_id
            found[site_id] = row
        return found

    @property
    def voltage_limits(self) -> tuple[float, float]:
        band = self.nominal_voltage * self.voltage_tolerance_pct / 100
        return self.nominal_voltage - band, self.nominal_voltage + band

    @property
    def frequency_limits(self) -> tuple[float, float]:
        band = self.nominal_frequency * self.frequency_tolerance_pct / 100
        return self.nominal_frequency - band, self.nominal_frequency + band
