"""Read queries of the billing app."""

from __future__ import annotations

from django.db.models import QuerySet

from billing.models import ServicePackage


def packages_on_offer() -> QuerySet[ServicePackage]:
    """Packages a customer can be put on today."""
    return ServicePackage.objects.filter(active=True)
