"""Home, health check and the audit trail browser."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render

from mcoms.core import health
from mcoms.core.models import AuditEvent
from mcoms.core.roles import Cap, Role
from mcoms.core.selectors import audit_events_visible_to, sites_visible_to


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send each person to where their work starts."""
    role = request.user.role
    if role == Role.CUSTOMER:
        return redirect("customers:portal")
    if role in (Role.FIELD_AGENT, Role.FIELD_SUPERVISOR):
        return redirect("fieldops:home")
    return redirect("dashboard:home")


def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the broker answer, 503 when either does not."""
    checks = {"database": health.database_ok(), "broker": health.broker_ok()}
    status = 200 if all(c["ok"] for c in checks.values()) else 503
    return JsonResponse({"ok": status == 200, **checks}, status=status)


@login_required
def audit_list(request: HttpRequest) -> HttpResponse:
    """The audit trail, filtered by object type, actor, channel, action, site and dates."""
    if not request.user.can(Cap.AUDIT_VIEW):
        raise PermissionDenied
    events = audit_events_visible_to(request.user)
    params = request.GET
    filters = {
        "object_type": "object_type",
        "channel": "channel",
        "action": "action",
        "site": "site_id",
        "object_id": "object_id",
    }
    for param, field in filters.items():
        if params.get(param):
            events = events.filter(**{field: params[param]})
    if params.get("actor"):
        events = events.filter(actor_label__icontains=params["actor"])
    if params.get("since"):
        events = events.filter(at__date__gte=params["since"])
    if params.get("until"):
        events = events.filter(at__date__lte=params["until"])
    page = Paginator(events, 50).get_page(params.get("page"))
    context = {
        "page": page,
        "channels": AuditEvent.Channel.choices,
        "actions": AuditEvent.Action.choices,
        "sites": sites_visible_to(request.user),
        "object_types": AuditEvent.objects.order_by()
        .values_list("object_type", flat=True)
        .distinct(),
        "params": params,
    }
    template = "core/audit_list.html#results" if request.htmx else "core/audit_list.html"
    return render(request, template, context)
