"""Staff admin for customers: edits go through the same services as the pages."""

from __future__ import annotations

from django.contrib import admin

from customers import access, services
from customers.models import (
    Customer,
    CustomerStatusChange,
    DataAccess,
    ServiceRequest,
    ServiceRequestEvent,
)


class StatusHistoryInline(admin.TabularInline):
    model = CustomerStatusChange
    extra = 0
    can_delete = False
    readonly_fields = ["from_status", "to_status", "at", "by", "by_label", "reason"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["account_number", "first_name", "last_name", "phone", "site", "status"]
    list_filter = ["status", "site", "critical_load", "language", "package"]
    search_fields = ["account_number", "first_name", "last_name", "phone", "id_number"]
    readonly_fields = ["account_number", "status", "status_changed_at", "created_at"]
    inlines = [StatusHistoryInline]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return fields + ["site"] if obj else fields

    def save_model(self, request, obj, form, change):
        data = {
            name: form.cleaned_data[name]
            for name in services.EDITABLE_FIELDS
            if name in form.cleaned_data
        }
        if change:
            stored = Customer.objects.get(pk=obj.pk)
            services.customer_update(customer=stored, **data)
        else:
            saved = services.customer_create(site=form.cleaned_data["site"], **data)
            obj.pk = saved.customer.pk

    def has_delete_permission(self, request, obj=None):
        # Accounts are closed, never deleted: bills and payments point at them.
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        customer = getattr(response, "context_data", {}).get("original")
        if request.method == "GET" and customer is not None:
            access.record(request, access.Action.VIEW, [customer], what="admin change page")
        return response

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None:
            access.record(
                request,
                access.Action.SEARCH,
                changelist.result_list,
                what="admin customer list",
                query=request.GET.urlencode(),
            )
        return response


@admin.register(DataAccess)
class DataAccessAdmin(admin.ModelAdmin):
    """The access log, read-only: nobody adds, changes or deletes an entry."""

    list_display = ["at", "actor_label", "channel", "action", "what", "subjects_count", "ip"]
    list_filter = ["action", "channel"]
    search_fields = ["actor_label", "what"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class RequestEventInline(admin.TabularInline):
    model = ServiceRequestEvent
    extra = 0
    can_delete = False
    readonly_fields = ["from_status", "to_status", "at", "by", "by_label", "note"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ServiceRequest)
class ServiceRequestAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "customer", "status", "created_at"]
    list_filter = ["kind", "status"]
    search_fields = ["customer__account_number", "customer__last_name", "description"]
    readonly_fields = [
        "customer",
        "kind",
        "status",
        "requested_package",
        "channel",
        "created_at",
        "updated_at",
        "description",
    ]
    inlines = [RequestEventInline]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
