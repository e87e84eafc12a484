"""Admin plumbing: edits made in the Django admin are audited like any other."""

from __future__ import annotations

from django.contrib import admin

from mcoms.core import audit
from mcoms.core.models import AuditEvent


class AuditedAdmin(admin.ModelAdmin):
    """A ModelAdmin whose saves and deletes leave an audit event (channel "admin").

    Models with their own services override ``save_model`` to call them instead;
    this is the fallback for plain reference data (regions, clusters, templates).
    """

    def audit_site(self, obj):
        return getattr(obj, "site_id", None)

    def save_model(self, request, obj, form, change):
        before = audit.snapshot(type(obj).objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)
        after = audit.snapshot(obj)
        if before is None:
            audit.record(AuditEvent.Action.CREATE, obj, after=after, site=self.audit_site(obj))
        elif before != after:
            audit.record(
                AuditEvent.Action.UPDATE,
                obj,
                before=before,
                after=after,
                site=self.audit_site(obj),
            )

    def delete_model(self, request, obj):
        audit.record(
            AuditEvent.Action.DELETE, obj, before=audit.snapshot(obj), site=self.audit_site(obj)
        )
        super().delete_model(request, obj)

    def save_formset(self, request, form, formset, change):
        # Inline rows (e.g. a site's public holidays) are audited like the parent.
        site = self.audit_site(form.instance)
        pending = formset.save(commit=False)  # also fills formset.deleted_objects
        befores = {
            obj.pk: audit.snapshot(type(obj).objects.get(pk=obj.pk)) for obj in pending if obj.pk
        }
        for obj in formset.deleted_objects:
            audit.record(AuditEvent.Action.DELETE, obj, before=audit.snapshot(obj), site=site)
        super().save_formset(request, form, formset, change)
        for obj in formset.new_objects:
            audit.record(AuditEvent.Action.CREATE, obj, after=audit.snapshot(obj), site=site)
        for obj, _fields in formset.changed_objects:
            audit.record(
                AuditEvent.Action.UPDATE,
                obj,
                before=befores.get(obj.pk),
                after=audit.snapshot(obj),
                site=site,
            )

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


class ReadOnlyAdmin(admin.ModelAdmin):
    """For records that are never edited by hand (the audit trail, the message log)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
