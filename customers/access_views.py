"""The access log page: who saw or downloaded which customers' data (``audit.view``)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render

from customers import access
from customers.models import DataAccess
from mcoms.core.exports import FORMATS, export_response
from mcoms.core.models import AuditEvent
from mcoms.core.permissions import require
from mcoms.core.roles import Cap

EXPORT_HEAD = [
    "At (UTC)",
    "Staff member",
    "Channel",
    "Action",
    "What",
    "Query",
    "IP",
    "Customers",
    "Customer ids",
]


def _filtered(request: HttpRequest) -> QuerySet[DataAccess]:
    accesses = access.accesses_visible_to(request.user)
    params = request.GET
    if params.get("customer", "").isdigit():
        accesses = accesses.filter(subjects__customer_id=int(params["customer"]))
    elif params.get("account"):
        accesses = accesses.filter(subjects__customer__account_number=params["account"].strip())
    if params.get("actor"):
        accesses = accesses.filter(actor_label__icontains=params["actor"].strip())
    for name in ("action", "channel"):
        if params.get(name):
            accesses = accesses.filter(**{name: params[name]})
    if params.get("since"):
        accesses = accesses.filter(at__date__gte=params["since"])
    if params.get("until"):
        accesses = accesses.filter(at__date__lte=params["until"])
    return accesses.distinct()


def _export(fmt: str, accesses: QuerySet[DataAccess]) -> HttpResponse:
    ids = [a.pk for a in accesses]
    shown = access.subject_accounts(ids, per_access=None)
    rows = (
        [
            a.at.replace(tzinfo=None),
            a.actor_label,
            a.channel,
            a.action,
            a.what,
            a.query,
            a.ip or "",
            a.subjects_count,
            " ".join(str(customer_id) for customer_id, _ in shown.get(a.pk, [])),
        ]
        for a in accesses
    )
    return export_response(fmt, "personal-data-access", EXPORT_HEAD, rows)


@login_required
def access_log(request: HttpRequest) -> HttpResponse:
    """Accesses to personal data, filtered by customer, staff member, action, channel, dates."""
    require(request.user, Cap.AUDIT_VIEW)
    accesses = _filtered(request)
    fmt = request.GET.get("export")
    if fmt:
        if fmt not in FORMATS:
            return HttpResponseBadRequest("export must be csv or xlsx")
        return _export(fmt, accesses)
    page = Paginator(accesses, 50).get_page(request.GET.get("page"))
    # Large downloads show their count only: their thousands of rows are in the download.
    small = [a.pk for a in page.object_list if a.subjects_count <= 20]
    shown = access.subject_accounts(small)
    rows = [(a, shown.get(a.pk, [])) for a in page.object_list]
    context = {
        "page": page,
        "rows": rows,
        "actions": DataAccess.Action.choices,
        "channels": AuditEvent.Channel.choices,
        "params": request.GET,
        "export_query": request.GET.urlencode(),
    }
    return render(request, "customers/access_log.html", context)
