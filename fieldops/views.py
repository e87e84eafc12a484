"""The field agent app's first pages: my sites, customer search, meters to install."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from customers.selectors import customer_search
from mcoms.core.roles import Cap
from mcoms.core.selectors import sites_visible_to
from metering.lifecycle import Status
from metering.selectors import meters_visible_to


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not user.can(Cap.CUSTOMERS_VIEW):
        raise PermissionDenied
    query = request.GET.get("q", "")
    context = {
        "sites": sites_visible_to(user),
        "q": query,
        "results": customer_search(user, query)[:20] if query else None,
        "to_install": meters_visible_to(user).filter(status=Status.SHIPPED)[:20],
        "to_commission": meters_visible_to(user).filter(status=Status.INSTALLED)[:20],
    }
    template = "fieldops/home.html#results" if request.htmx else "fieldops/home.html"
    return render(request, template, context)
