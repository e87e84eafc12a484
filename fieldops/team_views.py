"""The supervisor's team page: sales, collections and tasks per field agent; unassigned tasks;
a message to the team.

For each site a supervisor (or a manager with ``requests.handle``) sees, per field agent of
the site: payments they recorded (number and amount) and the cash they took, today and this
week (Monday to now, in the site's time), their open tasks and those done today and this
week. Below: the site's unassigned tasks, each with an assign control. The team message goes
out through :mod:`notifications.broadcasts` (the "field agents of a site" audience), with a
preview of recipients, segments and cost before sending.
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from billing.payments import field_queries as takings
from fieldops import selectors, services
from fieldops.models import FieldTask
from fieldops.task_views import layout
from mcoms.core import clock
from mcoms.core.models import Site
from mcoms.core.roles import Cap, Role
from mcoms.core.selectors import sites_visible_to, staff_of_site
from notifications import broadcasts
from notifications.models import Broadcast


class MessageForm(forms.Form):
    body = forms.CharField(
        label="Message to the site's field agents",
        max_length=broadcasts.MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


def _sites(request: HttpRequest) -> list[Site]:
    user = request.user
    if not user.can(Cap.REQUESTS_HANDLE):
        raise PermissionDenied
    return list(sites_visible_to(user).order_by("name"))


def _site(request: HttpRequest, sites: list[Site], raw: str | None) -> Site:
    if raw:
        chosen = next((s for s in sites if str(s.pk) == raw), None)
        if chosen is None:
            raise PermissionDenied
        return chosen
    if not sites:
        raise PermissionDenied
    return sites[0]


def periods(site: Site, now: dt.datetime) -> dict[str, tuple[dt.datetime, dt.datetime]]:
    """Today and this week (from Monday) in the site's time, as UTC bounds ``[start, now]``."""
    local = now.astimezone(site.zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    monday = midnight - dt.timedelta(days=midnight.weekday())
    end = now + dt.timedelta(microseconds=1)
    return {"today": (midnight, end), "week": (monday, end)}


def team_rows(site: Site, now: dt.datetime) -> list[dict]:
    """One row per field agent of the site: takings and tasks, today and this week."""
    agents = list(staff_of_site(site, {Role.FIELD_AGENT}).order_by("first_name", "username"))
    ids = [a.pk for a in agents]
    span = periods(site, now)
    today = takings.agent_takings(ids, [site.pk], *span["today"])
    week = takings.agent_takings(ids, [site.pk], *span["week"])
    tasks_today = selectors.task_counts(ids, [site.pk], span["today"][0])
    tasks_week = selectors.task_counts(ids, [site.pk], span["week"][0])
    return [
        {
            "agent": a,
            "today": today[a.pk],
            "week": week[a.pk],
            "open": tasks_week[a.pk]["open"],
            "done_today": tasks_today[a.pk]["done"],
            "done_week": tasks_week[a.pk]["done"],
        }
        for a in agents
    ]


def _context(request: HttpRequest, site: Site, sites: list[Site], **extra) -> dict:
    now = clock.now()
    rows = team_rows(site, now)
    unassigned = (
        selectors.open_tasks()
        .filter(site=site, assigned_to__isnull=True)
        .select_related("customer", "meter")
        .order_by("priority", "due_at", "id")[:50]
    )
    return {
        "layout": layout(),
        "site": site,
        "sites": sites,
        "rows": rows,
        "totals": {
            key: {
                "payments": sum(r[key].payments for r in rows),
                "amount": sum((r[key].amount for r in rows), start=0),
                "cash": sum((r[key].cash for r in rows), start=0),
            }
            for key in ("today", "week")
        }
        | {
            "done_today": sum(r["done_today"] for r in rows),
            "done_week": sum(r["done_week"] for r in rows),
        },
        "unassigned": unassigned,
        "people": services.assignable_people(site),
        "form": extra.get("form") or MessageForm(),
        "preview": extra.get("preview"),
        "recent": Broadcast.objects.filter(
            site_id=site.pk, audience=Broadcast.Audience.AGENTS
        ).order_by("-created_at")[:3],
        "local_now": now.astimezone(site.zone),
        "week_from": periods(site, now)["week"][0],
        "open_total": FieldTask.objects.filter(
            site=site, status__in=FieldTask.OPEN_STATUSES
        ).count(),
    }


@login_required
def team(request: HttpRequest) -> HttpResponse:
    """The supervisor's page for one of their sites (``?site=`` chooses)."""
    sites = _sites(request)
    site = _site(request, sites, request.GET.get("site"))
    return render(request, "fieldops/team/team.html", _context(request, site, sites))


@login_required
@require_POST
def team_message(request: HttpRequest) -> HttpResponse:
    """Preview (button ``preview``) or send the message to the site's field agents."""
    sites = _sites(request)
    site = _site(request, sites, request.POST.get("site"))
    form = MessageForm(request.POST)
    if not form.is_valid():
        ctx = _context(request, site, sites, form=form)
        return render(request, "fieldops/team/team.html", ctx, status=400)
    body = form.cleaned_data["body"]
    try:
        if "preview" in request.POST:
            preview = broadcasts.preview(
                user=request.user,
                site=site,
                audience=Broadcast.Audience.AGENTS,
                params={},
                body=body,
            )
            ctx = _context(request, site, sites, form=form, preview=preview)
            return render(request, "fieldops/team/team.html", ctx)
        broadcasts.broadcast_create(
            user=request.user, site=site, audience=Broadcast.Audience.AGENTS, params={}, body=body
        )
    except ValidationError as exc:
        for name, errors in getattr(exc, "error_dict", {"body": exc.error_list}).items():
            form.add_error("body" if name not in form.fields else name, errors)
        ctx = _context(request, site, sites, form=form)
        return render(request, "fieldops/team/team.html", ctx, status=400)
    messages.success(request, f"Message sent to the field agents of {site.name}.")
    return redirect(f"{reverse('fieldops:team')}?site={site.pk}")
