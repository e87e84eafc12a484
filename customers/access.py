"""Who looked at customers' personal data: the access log (Data Protection Acts, UG and KE).

Every staff page, field app page, API endpoint and admin page that shows or downloads
customers' names, phones or addresses calls :func:`record` once per request: one row for
the request and one bulk insert of the customers it showed. A customer looking at their
own account in the portal is not logged (it is their data); staff are, in every channel.
See docs/personal-data.md.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from django.db.models import QuerySet
from django.http import HttpRequest

from customers.models import Customer, DataAccess, DataAccessSubject
from mcoms.core import audit, clock
from mcoms.core.models import User
from mcoms.core.roles import Cap, Role
from mcoms.core.selectors import sites_visible_to
from mcoms.security.addresses import client_address

Action = DataAccess.Action


def _address(request: HttpRequest) -> str | None:
    """The client's address as the sign-in limits see it (behind the configured proxies)."""
    try:
        return str(ipaddress.ip_address(client_address(request)))
    except ValueError:  # no socket address, or a proxy that sent something else
        return None


def _ids(customers: Iterable[Customer | int | None]) -> list[int]:
    seen: dict[int, None] = {}
    for c in customers:
        if c is not None:
            seen[c if isinstance(c, int) else c.pk] = None
    return list(seen)


def record(
    request: HttpRequest,
    action: str,
    customers: Iterable[Customer | int | None],
    *,
    what: str,
    query: str = "",
) -> DataAccess | None:
    """Log that the request's user saw (or downloaded) these customers' personal data.

    Nothing is logged for a customer seeing their own account, or for a search that
    showed nobody and asked for nothing. Two inserts, whatever the number of customers.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or user.role == Role.CUSTOMER:
        return None
    ids = _ids(customers)
    if not ids and not query:
        return None
    actor = audit.current_actor()
    access = DataAccess.objects.create(
        at=clock.now(),
        actor=user,
        actor_label=user.get_username()[:150],
        channel=actor.channel,
        action=action,
        what=what[:100],
        query=query[:300],
        ip=_address(request),
        subjects_count=len(ids),
    )
    DataAccessSubject.objects.bulk_create(
        [DataAccessSubject(access=access, customer_id=pk) for pk in ids], batch_size=2000
    )
    return access


def query_text(params, keys: Iterable[str] = ("q", "status", "site", "sort", "page")) -> str:
    """The search words and filters of a request, as ``key=value`` pairs."""
    return " ".join(f"{k}={params[k]}" for k in keys if params.get(k))


def accesses_visible_to(user: User) -> QuerySet[DataAccess]:
    """Accesses an auditor may browse: all for head office, those about their sites' customers."""
    if not user.is_authenticated or not user.can(Cap.AUDIT_VIEW):
        return DataAccess.objects.none()
    accesses = DataAccess.objects.all()
    if user.is_superuser or user.role == Role.ADMIN:
        return accesses
    subjects = DataAccessSubject.objects.filter(customer__site__in=sites_visible_to(user))
    return accesses.filter(pk__in=subjects.values("access_id"))


def accesses_of(customer: Customer, limit: int | None = 10) -> list[DataAccess]:
    """The latest accesses to one customer's data, newest first."""
    accesses = DataAccess.objects.filter(subjects__customer=customer).select_related("actor")
    return list(accesses[:limit] if limit else accesses)


def subject_accounts(
    access_ids: Iterable[int], per_access: int | None = 5
) -> dict[int, list[tuple]]:
    """For each access, the (customer id, account number) pairs it showed (the first
    ``per_access``, or all with None): one query."""
    rows = (
        DataAccessSubject.objects.filter(access_id__in=list(access_ids))
        .order_by("access_id", "id")
        .values_list("access_id", "customer_id", "customer__account_number")
    )
    found: dict[int, list[tuple]] = {}
    for access_id, customer_id, account in rows:
        shown = found.setdefault(access_id, [])
        if per_access is None or len(shown) < per_access:
            shown.append((customer_id, account))
    return found
