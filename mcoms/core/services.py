"""Writes to the organisation and to people, each audited."""

from __future__ import annotations

from django.db import transaction

from mcoms.core import audit
from mcoms.core.models import AuditEvent, Cluster, Region, Site, User

_USER_AUDIT_FIELDS = ("username", "first_name", "last_name", "email", "phone", "role", "is_active")


def user_snapshot(user: User) -> dict:
    """A person's audited fields and scope, for before/after comparison."""
    return audit.snapshot(user, _USER_AUDIT_FIELDS) | _user_scope(user)


def user_record_admin_change(*, user: User, before: dict | None) -> None:
    """Audit a change made through the admin's user form (which saves fields itself)."""
    after = user_snapshot(user)
    if before is None:
        audit.record(AuditEvent.Action.CREATE, user, after=after)
    elif before != after:
        audit.record(AuditEvent.Action.UPDATE, user, before=before, after=after)


def _user_scope(user: User) -> dict:
    return {
        "regions": sorted(user.regions.values_list("code", flat=True)),
        "clusters": sorted(user.clusters.values_list("code", flat=True)),
        "sites": sorted(user.sites.values_list("code", flat=True)),
    }


@transaction.atomic
def user_create(
    *,
    username: str,
    password: str | None,
    role: str,
    first_name: str = "",
    last_name: str = "",
    email: str = "",
    phone: str = "",
    sites: list[Site] | None = None,
    clusters: list[Cluster] | None = None,
    regions: list[Region] | None = None,
    is_staff: bool = False,
) -> User:
    """Create a person with a role and scope (a missing password means no password login)."""
    user = User(
        username=username,
        role=role,
        first_name=first_name,
        last_name=last_name,
        email=email,
        phone=phone,
        is_staff=is_staff,
    )
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    user.sites.set(sites or [])
    user.clusters.set(clusters or [])
    user.regions.set(regions or [])
    audit.record(AuditEvent.Action.CREATE, user, after=user_snapshot(user))
    return user


@transaction.atomic
def user_update(
    *,
    user: User,
    sites: list[Site] | None = None,
    clusters: list[Cluster] | None = None,
    regions: list[Region] | None = None,
    **fields,
) -> User:
    """Change a person's details, role or scope; the change is audited."""
    before = user_snapshot(user)
    unknown = set(fields) - set(_USER_AUDIT_FIELDS) - {"is_staff"}
    if unknown:
        raise ValueError(f"user_update cannot change {sorted(unknown)}")
    for name, value in fields.items():
        setattr(user, name, value)
    user.full_clean(exclude=["password"])
    user.save()
    if sites is not None:
        user.sites.set(sites)
    if clusters is not None:
        user.clusters.set(clusters)
    if regions is not None:
        user.regions.set(regions)
    after = user_snapshot(user)
    if after != before:
        audit.record(AuditEvent.Action.UPDATE, user, before=before, after=after)
    return user


@transaction.atomic
def site_save(*, site: Site) -> Site:
    """Create or update a site after validating it; audited."""
    before = None
    if site.pk:
        before = audit.snapshot(Site.objects.get(pk=site.pk))
    site.full_clean()
    site.save()
    after = audit.snapshot(site)
    if before is None:
        audit.record(AuditEvent.Action.CREATE, site, after=after, site=site)
    elif before != after:
        audit.record(AuditEvent.Action.UPDATE, site, before=before, after=after, site=site)
    return site
