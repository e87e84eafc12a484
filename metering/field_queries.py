"""Metering's public queries for field operations: what on the grid needs a visit.

Unscoped (field operations' sync runs as a task, for every site); pages scope by site
themselves. Read by :mod:`fieldops.work`.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from metering.lifecycle import Status
from metering.models import Alert, Incident, Meter


def open_alerts(kinds: Iterable[str]) -> QuerySet[Alert]:
    """Alerts of ``kinds`` not yet resolved (open or acknowledged), with site and meter."""
    return (
        Alert.objects.filter(kind__in=list(kinds), resolved_at__isnull=True)
        .select_related("site", "meter", "gateway", "incident")
        .order_by("opened_at", "id")
    )


def open_incidents() -> QuerySet[Incident]:
    """Incidents (site outages) that have not ended."""
    return Incident.objects.filter(ended_at__isnull=True).select_related("site")


def shipped_meters() -> QuerySet[Meter]:
    """Meters shipped to a site and waiting to be installed there."""
    return Meter.objects.filter(status=Status.SHIPPED, site__isnull=False).select_related("site")


def meter_statuses(meter_ids: Iterable[int]) -> dict[int, str]:
    """The lifecycle status of each meter asked for (missing meters left out)."""
    return dict(Meter.objects.filter(pk__in=list(meter_ids)).values_list("pk", "status"))
