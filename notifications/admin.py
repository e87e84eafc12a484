"""Staff admin: templates are editable; the message log is read-only."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from mcoms.core.admin_tools import AuditedAdmin, ReadOnlyAdmin
from notifications import catalog, services
from notifications.models import (
    Message,
    MessageTemplate,
    OptOut,
    QuietHours,
    SiteSMSBackend,
)


class MessageTemplateForm(forms.ModelForm):
    """The admin checks wording the same way the template pages do."""

    class Meta:
        model = MessageTemplate
        fields = ["key", "language", "channel", "subject", "body", "essential"]

    def clean(self):
        data = super().clean()
        for field in ("subject", "body"):
            text = data.get(field)
            if text and data.get("key"):
                try:
                    catalog.check(text, key=data["key"])
                except catalog.TemplateInvalid as exc:
                    self.add_error(field, str(exc))
        return data


@admin.register(MessageTemplate)
class MessageTemplateAdmin(AuditedAdmin):
    form = MessageTemplateForm
    list_display = ["key", "language", "channel", "essential", "updated_at"]
    list_filter = ["language", "channel", "essential"]
    search_fields = ["key", "body"]


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    """The log is read-only; failed and unknown messages are settled by the actions."""

    list_display = [
        "created_at",
        "channel",
        "to",
        "template_key",
        "status",
        "attempts",
        "retry_at",
        "error",
    ]
    list_filter = ["status", "channel", "template_key"]
    search_fields = ["to", "body", "about", "provider_message_id"]
    date_hierarchy = "created_at"
    actions = ["send_again", "settle_delivered", "settle_not_sent"]

    @admin.action(description="Send again (failed, or unknown: it may then arrive twice)")
    def send_again(self, request, queryset):
        done = sum(services.send_again(m.pk, by=request.user) for m in queryset)
        self.message_user(request, f"{done} message(s) queued again.")

    @admin.action(description="Unknown outcome: the customer got it (never send again)")
    def settle_delivered(self, request, queryset):
        done = sum(services.settle_unknown(m.pk, delivered=True, by=request.user) for m in queryset)
        self.message_user(request, f"{done} message(s) settled as sent.")

    @admin.action(description="Unknown outcome: it did not go (mark failed)")
    def settle_not_sent(self, request, queryset):
        done = sum(
            services.settle_unknown(m.pk, delivered=False, by=request.user) for m in queryset
        )
        self.message_user(request, f"{done} message(s) settled as not sent.")


@admin.register(SiteSMSBackend)
class SiteSMSBackendAdmin(AuditedAdmin):
    list_display = ["site_id", "backend", "updated_at"]
    list_filter = ["backend"]


@admin.register(OptOut)
class OptOutAdmin(AuditedAdmin):
    list_display = ["address", "reason", "created_at"]
    search_fields = ["address", "reason"]


@admin.register(QuietHours)
class QuietHoursAdmin(AuditedAdmin):
    list_display = ["site_id", "start", "end", "timezone"]
