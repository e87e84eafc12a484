"""Writes of the billing app, each audited."""

from __future__ import annotations

from django.db import transaction

from billing.models import ServicePackage
from mcoms.core import audit
from mcoms.core.models import AuditEvent


@transaction.atomic
def package_save(*, package: ServicePackage) -> ServicePackage:
    """Create or change a service package after validating it."""
    before = audit.snapshot(ServicePackage.objects.get(pk=package.pk)) if package.pk else None
    package.full_clean()
    package.save()
    after = audit.snapshot(package)
    if before is None:
        audit.record(AuditEvent.Action.CREATE, package, after=after)
    elif before != after:
        audit.record(AuditEvent.Action.UPDATE, package, before=before, after=after)
    return package
