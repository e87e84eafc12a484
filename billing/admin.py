"""Staff admin for service packages, saved through the billing service."""

from __future__ import annotations

from django.contrib import admin

from billing import services
from billing.models import ServicePackage


@admin.register(ServicePackage)
class ServicePackageAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "load_limit_w", "payment_mode", "active"]
    list_filter = ["payment_mode", "active"]
    search_fields = ["code", "name"]

    def save_model(self, request, obj, form, change):
        services.package_save(package=obj)

    def has_delete_permission(self, request, obj=None):
        return False
