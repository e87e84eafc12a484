"""Staff admin for meters and gateways: lifecycle steps go through the pages' services."""

from __future__ import annotations

from django.contrib import admin

from metering import services
from metering.models import Gateway, Meter, MeterAssignment, MeterEvent


class EventInline(admin.TabularInline):
    model = MeterEvent
    extra = 0
    can_delete = False
    readonly_fields = ["from_status", "to_status", "at", "by", "by_name", "note"]

    def has_add_permission(self, request, obj=None):
        return False


class AssignmentInline(admin.TabularInline):
    model = MeterAssignment
    extra = 0
    can_delete = False
    readonly_fields = ["customer", "start", "end", "reason"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Meter)
class MeterAdmin(admin.ModelAdmin):
    list_display = ["serial", "model", "site", "modbus_address", "gateway", "status"]
    list_filter = ["status", "model", "site", "gateway"]
    search_fields = ["serial", "label"]
    fields = [
        "serial",
        "model",
        "phases",
        "ct_ratio",
        "label",
        "notes",
        "site",
        "modbus_address",
        "gateway",
        "status",
        "status_changed_at",
    ]
    inlines = [EventInline, AssignmentInline]

    def get_readonly_fields(self, request, obj=None):
        # Site, address, bus and status change only through lifecycle steps.
        lifecycle = ["site", "modbus_address", "gateway", "status", "status_changed_at"]
        return lifecycle + (["serial", "model", "phases"] if obj else [])

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            services.meter_update(
                meter=Meter.objects.get(pk=obj.pk),
                label=data["label"],
                notes=data["notes"],
                ct_ratio=data["ct_ratio"],
            )
        else:
            created = services.meter_create(
                serial=data["serial"],
                model=data["model"],
                phases=data.get("phases"),
                ct_ratio=data["ct_ratio"],
                label=data["label"],
                notes=data["notes"],
            )
            obj.pk = created.pk

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Gateway)
class GatewayAdmin(admin.ModelAdmin):
    list_display = ["name", "site", "meter_limit"]
    list_filter = ["site"]
    search_fields = ["name", "description"]

    def get_readonly_fields(self, request, obj=None):
        return ["site", "name", "created_at"] if obj else ["created_at"]

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            services.gateway_update(
                gateway=Gateway.objects.get(pk=obj.pk),
                description=data["description"],
                meter_limit=data["meter_limit"],
            )
        else:
            obj.pk = services.gateway_create(
                site=data["site"],
                name=data["name"],
                description=data["description"],
                meter_limit=data["meter_limit"],
            ).pk

    def has_delete_permission(self, request, obj=None):
        return False
