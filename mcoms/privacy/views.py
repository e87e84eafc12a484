"""Staff pages for a customer's personal data: the archive on request, and anonymising."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from customers import access
from customers.models import Customer
from customers.selectors import customers_visible_to
from mcoms.core import clock
from mcoms.core.permissions import require
from mcoms.core.roles import Cap
from mcoms.core.selectors import can_on_site
from mcoms.privacy import subject_access
from mcoms.privacy.anonymise import anonymise


def _customer(request: HttpRequest, pk: int, capability: str) -> Customer:
    customer = get_object_or_404(customers_visible_to(request.user), pk=pk)
    require(request.user, capability, customer.site_id)
    return customer


@login_required
def customer(request: HttpRequest, pk: int) -> HttpResponse:
    """What can be done with this customer's personal data."""
    c = _customer(request, pk, Cap.PRIVACY_EXPORT)
    context = {
        "customer": c,
        "can_erase": can_on_site(request.user, Cap.PRIVACY_ERASE, c.site_id),
        "closed": c.status == Customer.Status.CLOSED,
    }
    return render(request, "privacy/customer.html", context)


@login_required
@require_POST
def export(request: HttpRequest, pk: int) -> HttpResponse:
    """The subject access archive as a zip download, logged as an export."""
    c = _customer(request, pk, Cap.PRIVACY_EXPORT)
    access.record(request, access.Action.EXPORT, [c], what="subject access archive")
    now = clock.now()
    response = HttpResponse(subject_access.archive(c, at=now), content_type="application/zip")
    name = f"personal-data-{c.account_number}-{now:%Y%m%d}.zip"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@login_required
def erase(request: HttpRequest, pk: int) -> HttpResponse:
    """Anonymise a closed account: a confirmation page, then the account number typed back."""
    c = _customer(request, pk, Cap.PRIVACY_ERASE)
    if request.method != "POST":
        return render(request, "privacy/anonymise.html", {"customer": c})
    if request.POST.get("confirm", "").strip() != c.account_number:
        messages.error(request, "Type the account number exactly to confirm.")
        return render(request, "privacy/anonymise.html", {"customer": c}, status=400)
    try:
        anonymise(customer=c)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("privacy:customer", pk=pk)
    messages.success(request, f"Account {c.account_number} is anonymised.")
    return redirect("customers:detail", pk=pk)
