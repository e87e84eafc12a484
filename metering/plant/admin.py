"""The plant in the Django admin: equipment and thresholds editable (audited), the rest to
look at."""

from django.contrib import admin

from mcoms.core.admin_tools import AuditedAdmin
from mcoms.core.admin_tools import ReadOnlyAdmin as ReadOnly
from metering.plant.models import (
    EnergyBalance,
    PlantAlert,
    PlantAsset,
    PlantLog,
    PlantSettings,
    TelemetrySample,
)


@admin.register(PlantAsset)
class PlantAssetAdmin(AuditedAdmin):
    list_display = ["site", "kind", "name", "source", "kwp", "capacity_kwh", "meter", "active"]
    list_filter = ["kind", "source", "active", "site"]
    raw_id_fields = ["meter"]


@admin.register(PlantSettings)
class PlantSettingsAdmin(AuditedAdmin):
    list_display = ["site", "losses_threshold_pct", "battery_floor_pct", "silent_after_minutes"]


@admin.register(EnergyBalance)
class EnergyBalanceAdmin(ReadOnly):
    list_display = [
        "site",
        "period",
        "start",
        "method",
        "supplied_kwh",
        "consumed_kwh",
        "losses_pct",
    ]
    list_filter = ["period", "method", "site"]


@admin.register(PlantAlert)
class PlantAlertAdmin(ReadOnly):
    list_display = ["site", "kind", "status", "opened_at", "message"]
    list_filter = ["kind", "status", "site"]


@admin.register(PlantLog)
class PlantLogAdmin(ReadOnly):
    list_display = [
        "site",
        "read_at",
        "pv_kwh_today",
        "battery_soc_pct",
        "generator_hours",
        "logged_by",
    ]


@admin.register(TelemetrySample)
class TelemetrySampleAdmin(ReadOnly):
    list_display = ["site", "ts", "channel", "value"]
    list_filter = ["channel", "site"]
