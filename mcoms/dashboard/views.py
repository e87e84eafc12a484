"""The management overview: per site, customers by status and the meter fleet."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from customers.selectors import customers_visible_to
from mcoms.core import clock
from mcoms.core.roles import Role
from mcoms.core.selectors import sites_visible_to
from metering.lifecycle import Status
from metering.selectors import meters_visible_to, overdue_meters


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    if user.role == Role.CUSTOMER:
        raise PermissionDenied
    sites = sites_visible_to(user).select_related("cluster__region")
    customers = customers_visible_to(user)
    meters = meters_visible_to(user)
    by_site = {
        row["site"]: row
        for row in customers.values("site").annotate(
            total=Count("id"),
            active=Count("id", filter=Q(status="active")),
            applicants=Count("id", filter=Q(status="applicant")),
        )
    }
    meter_rows = {
        row["site"]: row
        for row in meters.values("site").annotate(
            total=Count("id"), commissioned=Count("id", filter=Q(status=Status.COMMISSIONED))
        )
    }
    rows = [
        {"site": s, "customers": by_site.get(s.pk, {}), "meters": meter_rows.get(s.pk, {})}
        for s in sites
    ]
    context = {
        "rows": rows,
        "overdue": overdue_meters(meters, now=clock.now()).order_by("status_changed_at")[:20],
    }
    return render(request, "dashboard/home.html", context)
