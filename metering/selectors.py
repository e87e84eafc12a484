"""Read queries of meters and gateways, scoped to what a person may see."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet

from customers.models import Customer
from mcoms.core import clock
from mcoms.core.models import User
from mcoms.core.roles import Cap
from mcoms.core.selectors import sites_visible_to
from metering.lifecycle import OVERDUE_AFTER
from metering.models import Gateway, Meter, MeterAssignment


def meters_visible_to(user: User) -> QuerySet[Meter]:
    """Meters on the person's sites; those who plan meters also see stock not yet on a site."""
    if not user.is_authenticated or not user.can(Cap.METERS_VIEW):
        return Meter.objects.none()
    meters = Meter.objects.select_related("site", "gateway")
    if user.is_superuser or user.role == "admin":
        return meters
    in_scope = Q(site__in=sites_visible_to(user))
    if user.can(Cap.METERS_EDIT):
        in_scope |= Q(site__isnull=True)
    return meters.filter(in_scope)


def gateways_visible_to(user: User) -> QuerySet[Gateway]:
    """Gateways on the person's sites."""
    if not user.is_authenticated or not user.can(Cap.METERS_VIEW):
        return Gateway.objects.none()
    return Gateway.objects.filter(site__in=sites_visible_to(user)).select_related("site")


def overdue_meters(meters: QuerySet[Meter], *, now: datetime | None = None) -> QuerySet[Meter]:
    """Meters Assigned for more than 7 days or Installed for more than 2, as of ``now``."""
    at = clock.resolve(now)
    condition = Q()
    for status, limit in OVERDUE_AFTER.items():
        condition |= Q(status=status, status_changed_at__lt=at - limit)
    return meters.filter(condition)


def current_customer(meter: Meter, *, at: datetime | None = None) -> Customer | None:
    """The customer the meter serves at ``at`` (now by default)."""
    when = clock.resolve(at)
    assignment = (
        MeterAssignment.objects.filter(meter=meter, start__lte=when)
        .filter(Q(end__isnull=True) | Q(end__gt=when))
        .select_related("customer")
        .first()
    )
    return assignment.customer if assignment else None


def meters_of_customer(customer: Customer, *, at: datetime | None = None) -> QuerySet[Meter]:
    """Meters serving ``customer`` at ``at`` (now by default)."""
    when = clock.resolve(at)
    # Select the assignment rows first: every condition must hold for the same row.
    serving = MeterAssignment.objects.filter(customer=customer, start__lte=when).filter(
        Q(end__isnull=True) | Q(end__gt=when)
    )
    return Meter.objects.filter(pk__in=serving.values("meter_id"))
