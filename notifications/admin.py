"""Staff admin: templates are editable; the message log is read-only."""

from __future__ import annotations

from django.contrib import admin

from mcoms.core.admin_tools import AuditedAdmin, ReadOnlyAdmin
from notifications.models import Message, MessageTemplate, SiteSMSBackend


@admin.register(MessageTemplate)
class MessageTemplateAdmin(AuditedAdmin):
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
