"""The customer portal's pages (top layer: reads metering and billing too)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from customers.selectors import customer_for_user
from metering.selectors import meters_of_customer


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """A signed-in customer's own account: details, meters and requests."""
    customer = customer_for_user(request.user)
    if customer is None:
        raise PermissionDenied
    context = {
        "customer": customer,
        "meters": meters_of_customer(customer),
        "requests": customer.requests.all()[:10],
    }
    return render(request, "customers/portal.html", context)
