"""Staff admin: templates are editable; the message log is read-only."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from mcoms.core.admin_tools import AuditedAdmin, ReadOnlyAdmin
from notifications import catalog
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
    list_display = ["created_at", "channel", "to", "template_key", "status", "attempts"]
    list_filter = ["status", "channel", "template_key"]
    search_fields = ["to", "body", "about", "provider_message_id"]
    date_hierarchy = "created_at"


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
