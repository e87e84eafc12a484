"""Customers' public queries for field operations: requests that may need a visit."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from customers.models import ServiceRequest

OPEN = (ServiceRequest.Status.OPEN, ServiceRequest.Status.IN_PROGRESS)


def open_requests() -> QuerySet[ServiceRequest]:
    """Service requests still open or in progress, with customer, site and assignee."""
    return (
        ServiceRequest.objects.filter(status__in=OPEN)
        .select_related("customer__site", "assigned_to")
        .order_by("created_at", "id")
    )


def service_request(request_id: int) -> ServiceRequest | None:
    """One service request by id, or None."""
    return ServiceRequest.objects.select_related("customer__site").filter(pk=request_id).first()


def request_statuses(request_ids: Iterable[int]) -> dict[int, str]:
    """The status of each service request asked for."""
    return dict(ServiceRequest.objects.filter(pk__in=list(request_ids)).values_list("pk", "status"))
