"""Staff messaging pages: write a text, preview its recipients and cost, send now or later,
and follow its progress.

Staff who may send messages (``Cap.MESSAGES_SEND``) use them for the sites in their scope.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from customers.selectors import customers_visible_to
from mcoms.core.models import Site
from mcoms.core.permissions import require
from mcoms.core.roles import Cap
from mcoms.core.selectors import sites_visible_to
from notifications import broadcasts
from notifications.models import Broadcast
from notifications.segments import segment_info

Audience = Broadcast.Audience


class BroadcastForm(forms.Form):
    site = forms.ModelChoiceField(queryset=None, empty_label=None)
    audience = forms.ChoiceField(choices=Audience.choices, label="Send to")
    customer = forms.CharField(
        required=False,
        max_length=40,
        help_text="For one customer: account number or phone",
    )
    min_amount = forms.DecimalField(
        required=False,
        min_value=Decimal(0),
        max_digits=16,
        decimal_places=2,
        label="Owing more than",
        help_text="For an arrears group, in the site's currency",
    )
    body = forms.CharField(
        label="Message",
        max_length=broadcasts.MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4, "style": "width:100%;box-sizing:border-box"}),
    )
    send_at = forms.DateTimeField(
        required=False,
        label="Send at (site time)",
        help_text="Leave empty to send now",
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["site"].queryset = sites_visible_to(user)

    def clean(self):
        data = super().clean()
        site, audience = data.get("site"), data.get("audience")
        params: dict = {}
        if site is not None and audience == Audience.CUSTOMER:
            text = (data.get("customer") or "").strip()
            found = (
                customers_visible_to(self.user)
                .filter(site=site)
                .filter(Q(account_number__iexact=text) | Q(phone=text))
                .first()
                if text
                else None
            )
            if found is None:
                self.add_error("customer", f"No customer {text!r} on {site.name}.")
            else:
                params["customer_id"] = found.pk
        if audience == Audience.ARREARS:
            if data.get("min_amount") is None:
                self.add_error("min_amount", "Give the amount owed above which customers get it.")
            else:
                params["min_amount"] = str(data["min_amount"])
        data["params"] = params
        send_at = data.get("send_at")
        if site is not None and send_at is not None:
            data["send_at"] = send_at.replace(tzinfo=None).replace(tzinfo=site.zone)
        return data


def _may_send(request: HttpRequest) -> None:
    require(request.user, Cap.MESSAGES_SEND)


def _visible(request: HttpRequest):
    ids = list(sites_visible_to(request.user).values_list("pk", flat=True))
    return Broadcast.objects.filter(site_id__in=ids)


def _apply(form: BroadcastForm, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for name, errors in exc.message_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


@login_required
def broadcast_list(request: HttpRequest) -> HttpResponse:
    _may_send(request)
    items = list(_visible(request).select_related("created_by")[:100])
    sites = Site.objects.in_bulk({b.site_id for b in items})
    rows = [
        {
            "broadcast": b,
            "when": _local(b.scheduled_for or b.created_at, sites.get(b.site_id)),
            "site": sites.get(b.site_id),
        }
        for b in items
    ]
    return render(request, "notifications/broadcast_list.html", {"rows": rows})


@login_required
def broadcast_new(request: HttpRequest) -> HttpResponse:
    _may_send(request)
    form = BroadcastForm(request.POST or None, user=request.user)
    preview = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            site = data["site"]
            require(request.user, Cap.MESSAGES_SEND, site.pk)
            args = {"site": site, "audience": data["audience"], "params": data["params"]}
            try:
                if request.POST.get("action") == "send":
                    broadcast = broadcasts.broadcast_create(
                        user=request.user, body=data["body"], scheduled_for=data["send_at"], **args
                    )
                    when = (
                        f"for {data['send_at']:%Y-%m-%d %H:%M} site time"
                        if broadcast.scheduled_for
                        else "now"
                    )
                    messages.success(request, f"Broadcast to {broadcast.description} {when}.")
                    return redirect("notifications:broadcast-detail", pk=broadcast.pk)
                preview = broadcasts.preview(user=request.user, body=data["body"], **args)
            except ValidationError as exc:
                _apply(form, exc)
                status = 400
        else:
            status = 400
    return render(
        request,
        "notifications/broadcast_new.html",
        {"form": form, "preview": preview},
        status=status,
    )


@login_required
def broadcast_detail(request: HttpRequest, pk: int) -> HttpResponse:
    _may_send(request)
    broadcast = get_object_or_404(_visible(request).select_related("created_by"), pk=pk)
    site = Site.objects.get(pk=broadcast.site_id)
    context = {
        "broadcast": broadcast,
        "site": site,
        "scheduled_local": _local(broadcast.scheduled_for, site),
        "created_local": _local(broadcast.created_at, site),
        "progress": broadcasts.progress(broadcast),
        "info": segment_info(broadcast.body),
        "live": broadcast.status in (Broadcast.Status.SCHEDULED, Broadcast.Status.SENDING),
    }
    template = (
        "notifications/broadcast_detail.html#progress"
        if request.htmx
        else "notifications/broadcast_detail.html"
    )
    return render(request, template, context)


@login_required
@require_POST
def broadcast_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    _may_send(request)
    broadcast = get_object_or_404(_visible(request), pk=pk)
    try:
        broadcasts.broadcast_cancel(broadcast=broadcast, user=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Broadcast cancelled: nothing will be sent.")
    return redirect("notifications:broadcast-detail", pk=broadcast.pk)


def _local(at: dt.datetime | None, site: Site | None) -> str:
    if at is None:
        return ""
    return f"{at.astimezone(site.zone) if site else at:%Y-%m-%d %H:%M}"
