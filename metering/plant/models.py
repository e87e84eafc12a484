"""The supply side of a mini-grid: plant assets, their telemetry, hand logs, the site's
energy balance and the plant's alerts.

- ``PlantAsset``: what a site generates, stores and measures supply with — PV arrays
  (kWp), inverters, battery banks (kWh, chemistry), generators and the main/feeder
  meters on the RS485 bus. Each says where its data comes from (``source``). A
  supply meter points at a metering ``Meter`` (its readings arrive like a customer
  meter's); that link is what flags the meter as supply-side, so metering's own
  tables stay as they are.
- ``TelemetrySample``: one value of one OpenEMS channel at one time, as a gateway's
  edge agent forwarded it (``POST /api/v1/edge/plant``); unique per
  (gateway, ts, channel), so a batch sent again stores nothing twice.
  ``TelemetryBatch`` remembers each batch's answer for blind retries.
- ``PlantLog``: what a field agent read off the inverter display or the generator
  (daily PV kWh, battery state of charge, generator run-hour counter, fuel added),
  with a photo as evidence.
- ``EnergyBalance``: a site's supplied energy against what its customer meters
  recorded, per day and per month, with the meters whose data was estimated or
  missing (so an estimate is never mistaken for theft).
- ``PlantAlert``: losses above the site's threshold, battery below its floor, no PV
  in daylight, inverter data silent; one open per site and kind.
- ``PlantSettings``: the per-site thresholds.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from mcoms.core.models import Site
from metering.models import Gateway, Meter


class PlantAsset(models.Model):
    """One piece of supply-side equipment at a site."""

    class Kind(models.TextChoices):
        PV_ARRAY = "pv_array", "PV array"
        INVERTER = "inverter", "Inverter"
        BATTERY = "battery", "Battery bank"
        GENERATOR = "generator", "Generator"
        SUPPLY_METER = "supply_meter", "Main / feeder meter"

    class Source(models.TextChoices):
        OPENEMS = "openems", "OpenEMS Edge on the site's Pi"
        BUS_METER = "bus_meter", "Meter on the RS485 bus"
        MANUAL = "manual", "Hand logs by field staff"

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="plant_assets")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    name = models.CharField(max_length=100)
    source = models.CharField(max_length=12, choices=Source.choices)
    make_model = models.CharField(max_length=100, blank=True, help_text="e.g. SRNE HF4850S80-H")
    kwp = models.DecimalField(
        max_digits=9, decimal_places=3, null=True, blank=True, help_text="PV arrays: peak kW"
    )
    rated_kw = models.DecimalField(
        max_digits=9, decimal_places=3, null=True, blank=True, help_text="Inverters, generators"
    )
    capacity_kwh = models.DecimalField(
        max_digits=9, decimal_places=3, null=True, blank=True, help_text="Battery banks"
    )
    chemistry = models.CharField(max_length=30, blank=True, help_text="Battery banks, e.g. LiFePO4")
    meter = models.OneToOneField(
        Meter,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="supply_asset",
        help_text="Main/feeder meters: the meter on the bus (flags it as supply-side)",
    )
    openems_component = models.CharField(
        max_length=50, blank=True, help_text="OpenEMS component id, e.g. ess0 (else _sum)"
    )
    active = models.BooleanField(default=True)
    notes = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["site__name", "kind", "name"]
        constraints = [
            models.UniqueConstraint(fields=["site", "kind", "name"], name="plant_asset_name_once"),
            models.CheckConstraint(
                condition=~models.Q(kind="supply_meter") | models.Q(meter__isnull=False),
                name="plant_supply_meter_has_meter",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.name} ({self.site})"


class PlantSettings(models.Model):
    """A site's plant thresholds (defaults apply to a site without a row)."""

    site = models.OneToOneField(Site, on_delete=models.CASCADE, related_name="plant_settings")
    losses_threshold_pct = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("15"),
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="Losses above this share of supplied energy open an alert",
    )
    battery_floor_pct = models.PositiveSmallIntegerField(
        default=20, validators=[MaxValueValidator(100)], help_text="State of charge floor"
    )
    silent_after_minutes = models.PositiveIntegerField(
        default=60, help_text="Inverter data older than this is silent"
    )
    daylight_start_hour = models.PositiveSmallIntegerField(default=9)
    daylight_end_hour = models.PositiveSmallIntegerField(default=16)

    def __str__(self) -> str:
        return f"plant settings of {self.site}"


class TelemetryBatch(models.Model):
    """One batch of plant samples a gateway sent, with the answer it got."""

    batch_id = models.UUIDField(unique=True)
    gateway = models.ForeignKey(Gateway, on_delete=models.CASCADE, related_name="+")
    content_hash = models.CharField(max_length=64)
    answer = models.JSONField()
    received_at = models.DateTimeField(db_index=True)
    samples = models.PositiveIntegerField()

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.gateway_id}:{self.batch_id}"


class TelemetrySample(models.Model):
    """One OpenEMS channel's value at ``ts`` (channel as ``component/Channel``)."""

    gateway = models.ForeignKey(Gateway, on_delete=models.CASCADE, related_name="+")
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    ts = models.DateTimeField()
    channel = models.CharField(max_length=100)
    value = models.FloatField()
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["site", "channel", "ts"]
        indexes = [models.Index(fields=["site", "channel", "ts"])]
        constraints = [
            models.UniqueConstraint(fields=["gateway", "ts", "channel"], name="plant_sample_once")
        ]

    def __str__(self) -> str:
        return f"{self.channel}@{self.ts:%Y-%m-%d %H:%M} = {self.value}"


def plant_photo_path(log: PlantLog, filename: str) -> str:
    return f"plant/logs/{log.site_id}/{filename}"


class PlantLog(models.Model):
    """What a person read off the plant's displays, with a photo as evidence."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="plant_logs")
    asset = models.ForeignKey(
        PlantAsset, null=True, blank=True, on_delete=models.SET_NULL, related_name="logs"
    )
    read_at = models.DateTimeField(help_text="When the displays were read")
    pv_kwh_today = models.DecimalField(
        max_digits=10, decimal_places=2, null=True, blank=True, help_text="PV generation today"
    )
    battery_soc_pct = models.DecimalField(
        max_digits=5,
        decimal_places=1,
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
    )
    battery_voltage_v = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    generator_hours = models.DecimalField(
        max_digits=10, decimal_places=1, null=True, blank=True, help_text="Run-hour counter"
    )
    fuel_added_l = models.DecimalField(max_digits=8, decimal_places=1, null=True, blank=True)
    photo = models.FileField(upload_to=plant_photo_path)
    note = models.CharField(max_length=300, blank=True)
    logged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["-read_at"]
        indexes = [models.Index(fields=["site", "read_at"])]

    def __str__(self) -> str:
        return f"plant log {self.site} {self.read_at:%Y-%m-%d %H:%M}"


class EnergyBalance(models.Model):
    """Supplied energy against the customer meters' sum, for one day or one month."""

    class Period(models.TextChoices):
        DAY = "day", "Day"
        MONTH = "month", "Month"

    class Method(models.TextChoices):
        METERS = "meters", "Main/feeder meters"
        PLANT = "plant", "Plant telemetry (production − storage change + generator)"
        MANUAL = "manual", "Hand-logged PV generation"
        NONE = "none", "No supply data"

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    period = models.CharField(max_length=5, choices=Period.choices)
    start = models.DateField(help_text="The day, or the first day of the month")
    method = models.CharField(max_length=8, choices=Method.choices)
    supplied_kwh = models.DecimalField(max_digits=14, decimal_places=3, null=True)
    consumed_kwh = models.DecimalField(max_digits=14, decimal_places=3)
    losses_kwh = models.DecimalField(max_digits=14, decimal_places=3, null=True)
    losses_pct = models.DecimalField(max_digits=7, decimal_places=2, null=True)
    estimated_kwh = models.DecimalField(
        max_digits=14, decimal_places=3, default=0, help_text="Estimated part of consumed_kwh"
    )
    customer_meters = models.PositiveIntegerField(default=0)
    uncertain = models.JSONField(
        default=list, blank=True, help_text="Meters with estimated or missing data"
    )
    detail = models.JSONField(default=dict, blank=True)
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["site", "period", "-start"]
        constraints = [
            models.UniqueConstraint(fields=["site", "period", "start"], name="plant_balance_once")
        ]

    def __str__(self) -> str:
        return f"{self.site} {self.period} {self.start}: losses {self.losses_pct} %"


class PlantAlert(models.Model):
    """Something about the plant or the balance a person should look at."""

    class Kind(models.TextChoices):
        LOSSES_HIGH = "losses_high", "Losses above the site's threshold"
        BATTERY_LOW = "battery_low", "Battery below its floor"
        NO_PV = "no_pv", "No PV production in daylight"
        INVERTER_SILENT = "inverter_silent", "Inverter data silent"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="plant_alerts")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    message = models.CharField(max_length=300)
    details = models.JSONField(default=dict, blank=True)
    opened_at = models.DateTimeField(db_index=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["site", "kind"],
                condition=models.Q(status="open"),
                name="plant_alert_open_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.site}"
