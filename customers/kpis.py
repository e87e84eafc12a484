"""Customer figures for the management dashboards: read-only aggregates, one query each.

A period is a range of local days (``first``..``last``, both included) in each site's own
calendar: a site in Nairobi and one in Kampala each count their own midnight. Queries over
several sites group the sites by time zone, so a period costs one condition per zone, never
one per site.

- *active*: accounts whose status was Active at the end of the period, from the status
  history (the last change before the end; an account without history counts with its
  current status) — so a past period shows the customers of that time;
- *new*: accounts registered during the period.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

from customers.models import Customer, CustomerStatusChange
from mcoms.core.models import Site


def local_bounds(zone: str, first: dt.date, last: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """UTC instants of the start of ``first`` and of the day after ``last`` in ``zone``."""
    tz = ZoneInfo(zone)
    start = dt.datetime.combine(first, dt.time(), tzinfo=tz)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tzinfo=tz)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def by_zone(sites: Iterable[Site]) -> dict[str, list[int]]:
    """Site ids grouped by time zone name."""
    zones: dict[str, list[int]] = defaultdict(list)
    for site in sites:
        zones[site.timezone].append(site.pk)
    return dict(zones)


def in_period(
    field: str, sites: Iterable[Site], first: dt.date, last: dt.date, *, site_field="site_id"
) -> Q:
    """``field`` (a datetime) within the period in each site's calendar: one clause per zone."""
    condition = Q(pk__in=[])
    for zone, ids in by_zone(sites).items():
        start, end = local_bounds(zone, first, last)
        condition |= Q(**{f"{site_field}__in": ids, f"{field}__gte": start, f"{field}__lt": end})
    return condition


def before_end(field: str, sites: Iterable[Site], last: dt.date, *, site_field="site_id") -> Q:
    """``field`` before the end of local day ``last`` in each site's calendar."""
    condition = Q(pk__in=[])
    for zone, ids in by_zone(sites).items():
        end = local_bounds(zone, last, last)[1]
        condition |= Q(**{f"{site_field}__in": ids, f"{field}__lt": end})
    return condition


def status_at_end(customers, sites: list[Site], last: dt.date):
    """``customers`` annotated ``status_then``: their status at the end of local day ``last``."""
    ends = {zone: local_bounds(zone, last, last)[1] for zone in by_zone(sites)}
    history = CustomerStatusChange.objects.filter(customer=OuterRef("pk"))
    if len(ends) == 1:
        (end,) = ends.values()
        history = history.filter(at__lt=end)
    else:
        history = history.filter(before_end("at", sites, last, site_field="customer__site_id"))
    latest = history.order_by("-at", "-id").values("to_status")[:1]
    return customers.annotate(status_then=Coalesce(Subquery(latest), "status"))


def counts(sites: list[Site], first: dt.date, last: dt.date) -> dict[int, dict[str, int]]:
    """Per site id: ``active`` at the period's end, ``new`` in it, ``total`` registered by then."""
    ids = [s.pk for s in sites]
    customers = Customer.objects.filter(site_id__in=ids).filter(
        before_end("created_at", sites, last)
    )
    rows = (
        status_at_end(customers, sites, last)
        .values("site_id")
        .order_by()
        .annotate(
            total=Count("id"),
            active=Count("id", filter=Q(status_then=Customer.Status.ACTIVE)),
            new=Count("id", filter=in_period("created_at", sites, first, last)),
        )
    )
    return {
        r["site_id"]: {"active": r["active"], "new": r["new"], "total": r["total"]} for r in rows
    }


def status_counts(site_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Per site id: accounts by their status today (one query)."""
    found: dict[int, dict[str, int]] = defaultdict(dict)
    rows = (
        Customer.objects.filter(site_id__in=list(site_ids))
        .values_list("site_id", "status")
        .order_by()
        .annotate(n=Count("id"))
    )
    for site_id, status, n in rows:
        found[site_id][status] = n
    return dict(found)
