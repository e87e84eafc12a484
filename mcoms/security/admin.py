"""Admin: see and lift sign-in locks; see and reset people's authenticators (both audited)."""

from __future__ import annotations

from django.contrib import admin, messages

from mcoms.core import clock
from mcoms.security import limits, twofactor
from mcoms.security.models import Counter, TOTPDevice


class _ViewAndActOnly(admin.ModelAdmin):
    """No adding or editing: the rows change only through their services."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


@admin.register(Counter)
class CounterAdmin(_ViewAndActOnly):
    list_display = ["scope", "key", "count", "window_start", "locked_until", "locked"]
    list_filter = ["scope"]
    search_fields = ["key"]
    actions = ["unlock"]

    @admin.display(boolean=True)
    def locked(self, obj):
        return bool(obj.locked_until and obj.locked_until > clock.now())

    @admin.action(description="Unlock (forget the failures)")
    def unlock(self, request, queryset):
        count = 0
        for counter in queryset:
            limits.unlock(counter, note=f"unlocked by {request.user.get_username()} in the admin")
            count += 1
        self.message_user(request, f"{count} unlocked.", messages.SUCCESS)

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(TOTPDevice)
class TOTPDeviceAdmin(_ViewAndActOnly):
    list_display = ["user", "created_at", "confirmed_at", "last_used_at"]
    search_fields = ["user__username", "user__first_name", "user__last_name"]
    exclude = ["key"]  # the shared secret is never shown again
    readonly_fields = ["user", "created_at", "confirmed_at", "last_step", "last_used_at"]
    actions = ["reset"]

    @admin.action(description="Reset (lost phone: the person enrols again)")
    def reset(self, request, queryset):
        users = [device.user for device in queryset.select_related("user")]
        for user in users:
            twofactor.reset(
                user,
                note=f"two-factor authenticator reset by {request.user.get_username()} "
                "in the admin",
            )
        self.message_user(request, f"{len(users)} reset.", messages.SUCCESS)

    def has_delete_permission(self, request, obj=None):
        return False
