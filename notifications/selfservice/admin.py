"""Staff see who asked to be connected, the inbound SMS, and can reset a customer's USSD PIN."""

from django.contrib import admin, messages

from notifications.selfservice import pins
from notifications.selfservice.models import CustomerPin, InboundSms, Interest


@admin.register(Interest)
class InterestAdmin(admin.ModelAdmin):
    list_display = ("created_at", "name", "place", "site", "phone", "language", "contacted")
    list_filter = ("contacted", "site", "language")
    search_fields = ("name", "place", "phone")
    list_editable = ("contacted",)
    readonly_fields = ("phone", "name", "place", "language", "created_at")
    date_hierarchy = "created_at"


@admin.register(InboundSms)
class InboundSmsAdmin(admin.ModelAdmin):
    list_display = ("received_at", "sender", "command", "language", "customers", "provider")
    list_filter = ("provider", "command", "language")
    search_fields = ("sender", "text")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(CustomerPin)
class CustomerPinAdmin(admin.ModelAdmin):
    """No hash is shown; staff can only send the customer a new one-time PIN."""

    list_display = ("customer", "one_time", "failed", "locked_until", "set_at")
    list_filter = ("one_time",)
    search_fields = ("customer__account_number", "customer__phone")
    fields = ("customer", "one_time", "expires_at", "failed", "locked_until", "set_at")
    readonly_fields = fields
    actions = ["send_new_one_time_pin"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Send a new one-time PIN by SMS")
    def send_new_one_time_pin(self, request, queryset):
        for row in queryset.select_related("customer", "customer__site"):
            pins.send_one_time_pin(row.customer)
        self.message_user(request, f"Sent {queryset.count()} one-time PIN(s).", messages.SUCCESS)
