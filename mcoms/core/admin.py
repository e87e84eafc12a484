"""Staff admin for the organisation, people and the audit trail."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from mcoms.core import services
from mcoms.core.admin_tools import AuditedAdmin, ReadOnlyAdmin
from mcoms.core.models import AuditEvent, Cluster, PublicHoliday, Region, Site, User


@admin.register(Region)
class RegionAdmin(AuditedAdmin):
    search_fields = ["name", "code"]


@admin.register(Cluster)
class ClusterAdmin(AuditedAdmin):
    list_display = ["name", "code", "region"]
    list_filter = ["region"]
    search_fields = ["name", "code"]


class HolidayInline(admin.TabularInline):
    model = PublicHoliday
    extra = 0


@admin.register(Site)
class SiteAdmin(AuditedAdmin):
    list_display = ["name", "code", "cluster", "timezone", "currency"]
    list_filter = ["cluster__region", "cluster", "currency"]
    search_fields = ["name", "code"]
    inlines = [HolidayInline]

    def audit_site(self, obj):
        return obj.pk

    def save_model(self, request, obj, form, change):
        services.site_save(site=obj)


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ["username", "first_name", "last_name", "role", "is_active", "is_staff"]
    list_filter = ["role", "is_active", "is_staff", "sites"]
    search_fields = ["username", "first_name", "last_name", "email", "phone"]
    fieldsets = BaseUserAdmin.fieldsets + (
        ("Role and scope", {"fields": ("role", "phone", "regions", "clusters", "sites")}),
    )
    filter_horizontal = ["regions", "clusters", "sites", "groups", "user_permissions"]

    def save_model(self, request, obj, form, change):
        # Roles and scope are audited by the service; the form saves m2m afterwards.
        # Kept on the request: one admin instance serves every request at once.
        request.audit_user_before = (
            services.user_snapshot(User.objects.get(pk=obj.pk)) if change else None
        )
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        services.user_record_admin_change(
            user=form.instance, before=getattr(request, "audit_user_before", None)
        )


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor_label", "channel", "action", "object_type", "object_repr"]
    list_filter = ["channel", "action", "object_type", "site"]
    search_fields = ["actor_label", "object_repr", "object_id", "note"]
    date_hierarchy = "at"
