"""Staff admin for service packages and tariffs, saved through the billing services.

Tariff versions are proposed here and approved or rejected by another person with
the list actions; an approved version is never edited. The ledger is shown read-only:
money moves only through ``billing.ledger``.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError

from billing import services, tariff_services
from billing.models import (
    LedgerAccount,
    LedgerPeriod,
    MoneyRequest,
    Posting,
    PostingLine,
    ServicePackage,
    Tariff,
    TariffVersion,
)


@admin.register(ServicePackage)
class ServicePackageAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "load_limit_w", "payment_mode", "tariff", "active"]
    list_filter = ["payment_mode", "active"]
    search_fields = ["code", "name"]

    def save_model(self, request, obj, form, change):
        services.package_save(package=obj)

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Tariff)
class TariffAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "currency"]
    search_fields = ["code", "name"]

    def has_change_permission(self, request, obj=None):
        # A tariff's identity is fixed once created; what it charges changes by versions.
        return False

    def save_model(self, request, obj, form, change):
        obj.pk = tariff_services.tariff_create(
            code=obj.code,
            name=obj.name,
            currency=obj.currency,
            description=obj.description,
            by=request.user,
        ).pk

    def has_delete_permission(self, request, obj=None):
        return False


class TariffVersionForm(forms.ModelForm):
    class Meta:
        model = TariffVersion
        fields = ["tariff", "effective_from", "terms", "reason"]

    def clean(self):
        data = super().clean()
        if data.get("tariff") and data.get("effective_from"):
            tariff_services.validate_effective_from(
                tariff=data["tariff"], effective_from=data["effective_from"]
            )
        return data


@admin.register(TariffVersion)
class TariffVersionAdmin(admin.ModelAdmin):
    form = TariffVersionForm
    list_display = ["tariff", "effective_from", "effective_to", "status", "proposed_by"]
    list_filter = ["status", "tariff"]
    actions = ["approve", "reject"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [f.name for f in TariffVersion._meta.fields]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["tariff", "effective_from", "terms", "reason"]
        return [f.name for f in TariffVersion._meta.fields if f.name != "id"]

    def save_model(self, request, obj, form, change):
        obj.pk = tariff_services.tariff_version_propose(
            tariff=obj.tariff,
            effective_from=obj.effective_from,
            terms=obj.terms,
            reason=obj.reason,
            by=request.user,
        ).pk

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Approve the selected proposals")
    def approve(self, request, queryset):
        for version in queryset:
            self._decide(request, version, tariff_services.tariff_version_approve)

    @admin.action(description="Reject the selected proposals")
    def reject(self, request, queryset):
        for version in queryset:
            self._decide(
                request,
                version,
                tariff_services.tariff_version_reject,
                note=f"Rejected in the admin by {request.user}",
            )

    def _decide(self, request, version, decide, **kwargs):
        try:
            decide(version=version, by=request.user, **kwargs)
        except (PermissionDenied, ValidationError) as exc:
            message = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
            self.message_user(request, f"{version}: {message}", messages.ERROR)
        else:
            self.message_user(request, f"{version}: done.", messages.SUCCESS)


# --- The ledger: read-only here; money moves only through billing.ledger -------------------


class ReadOnlyAdmin(admin.ModelAdmin):
    """Shows ledger records; never adds, edits or deletes them."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class PostingLineInline(admin.TabularInline):
    model = PostingLine
    fields = ["account", "amount"]
    readonly_fields = fields
    extra = 0

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Posting)
class PostingAdmin(ReadOnlyAdmin):
    list_display = ["id", "date", "site", "kind", "currency", "memo", "posted_by", "reverses"]
    list_filter = ["kind", "site", "currency"]
    search_fields = ["memo"]
    date_hierarchy = "date"
    inlines = [PostingLineInline]


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyAdmin):
    list_display = ["key", "site", "currency", "kind", "customer", "agent", "provider"]
    list_filter = ["kind", "site", "currency"]
    search_fields = ["key", "provider", "customer__account_number"]


@admin.register(LedgerPeriod)
class LedgerPeriodAdmin(ReadOnlyAdmin):
    list_display = ["site", "month", "closed_at", "closed_by"]
    list_filter = ["site"]


@admin.register(MoneyRequest)
class MoneyRequestAdmin(ReadOnlyAdmin):
    list_display = ["kind", "customer", "amount", "status", "requested_by", "decided_by"]
    list_filter = ["kind", "status"]
