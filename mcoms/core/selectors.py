"""Read queries of the organisation: which sites a person may see."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from mcoms.core.models import AuditEvent, Site, User
from mcoms.core.roles import Cap, Role


def sites_visible_to(user: User) -> QuerySet[Site]:
    """Sites in the user's scope: everything for head office, assigned ones for the rest.

    Scope is the union of sites assigned directly, sites of assigned clusters and
    sites of assigned regions. Customers see no site through this (only their own
    account, checked by the customers app).
    """
    if not user.is_authenticated or not user.is_active:
        return Site.objects.none()
    if user.is_superuser or user.role == Role.ADMIN:
        return Site.objects.all()
    if user.role == Role.CUSTOMER:
        return Site.objects.none()
    return Site.objects.filter(
        Q(pk__in=user.sites.values("pk"))
        | Q(cluster__in=user.clusters.values("pk"))
        | Q(cluster__region__in=user.regions.values("pk"))
    ).distinct()


def can_see_site(user: User, site_id: int | None) -> bool:
    """True when ``site_id`` is within the user's scope."""
    if site_id is None:
        return user.is_authenticated and (user.is_superuser or user.role == Role.ADMIN)
    return sites_visible_to(user).filter(pk=site_id).exists()


def can_on_site(user: User, capability: str, site_id: int | None) -> bool:
    """The role carries ``capability`` and the site is in scope."""
    return user.is_authenticated and user.can(capability) and can_see_site(user, site_id)


def audit_events_visible_to(user: User) -> QuerySet[AuditEvent]:
    """Audit events a person may browse: all for head office, their sites' for others."""
    if not user.can(Cap.AUDIT_VIEW):
        return AuditEvent.objects.none()
    events = AuditEvent.objects.select_related("actor", "site")
    if user.is_superuser or user.role == Role.ADMIN:
        return events
    return events.filter(site__in=sites_visible_to(user))


def staff_of_site(site: Site, roles: set[str] | None = None) -> QuerySet[User]:
    """Active staff whose scope covers ``site`` (optionally only some roles)."""
    users = (
        User.objects.filter(is_active=True)
        .exclude(role=Role.CUSTOMER)
        .filter(
            Q(sites=site)
            | Q(clusters=site.cluster_id)
            | Q(regions=site.cluster.region_id)
            | Q(role=Role.ADMIN)
        )
    )
    if roles:
        users = users.filter(role__in=roles)
    return users.distinct()
