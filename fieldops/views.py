"""The field agent app's home page: my tasks, find a customer, quick actions, what waits to send.

The search box answers as the agent types (htmx asks this page for the results part only);
without JavaScript it is a plain GET of the same page.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse

from fieldops import offline
from fieldops.app_meters import meters_to_install
from fieldops.app_views import find
from fieldops.selectors import my_open_task_count
from mcoms.core.roles import Cap
from mcoms.core.selectors import sites_visible_to
from metering.lifecycle import Status


def _tasks_url() -> str | None:
    try:
        return reverse("fieldops:tasks")
    except NoReverseMatch:  # the task pages are mounted separately
        return None


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not user.can(Cap.CUSTOMERS_VIEW):
        raise PermissionDenied
    query = request.GET.get("q", "")
    results = find(user, query) if query.strip() else None
    if request.htmx:
        return render(request, "fieldops/app/search.html#results", {"q": query, "results": results})
    context = {
        "q": query,
        "results": results,
        "sites": sites_visible_to(user),
        "tasks_url": _tasks_url(),
        "task_count": my_open_task_count(user),
        "to_install": meters_to_install(user).filter(status=Status.SHIPPED).count()
        if user.can(Cap.METERS_FIELD)
        else 0,
        "refused": offline.needs_attention(user, 3),
        "can_pay": user.can(Cap.PAYMENTS_RECORD),
        "can_register": user.can(Cap.CUSTOMERS_EDIT),
    }
    return render(request, "fieldops/home.html", context)
