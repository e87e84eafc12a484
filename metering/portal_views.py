"""The commissioning portal's pages: a gateway's bus and its Pi (health, commands, scan
discoveries, token), registering a gateway, and the review of flagged readings.

Everyone who may see a gateway may look; acting (commands, putting meters on the
bus, tokens, reviewing readings) needs ``Cap.METERS_EDIT`` on the gateway's site.
"""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from mcoms.core import clock
from mcoms.core.roles import Cap
from mcoms.core.selectors import can_on_site, sites_visible_to
from metering import commissioning, selectors
from metering.commissioning import Review
from metering.lifecycle import ON_BUS
from metering.models import Discovery, EdgeCommand, Gateway, Meter, Reading

RECENT_COMMANDS = 20
OPEN_COMMANDS = (EdgeCommand.Status.PENDING, EdgeCommand.Status.SENT)


# --- forms --------------------------------------------------------------------------------


class InstallForm(forms.Form):
    meter = forms.ModelChoiceField(
        queryset=Meter.objects.none(), label="Meter (planned address)", empty_label=None
    )
    by_name = forms.CharField(max_length=150, required=False, label="Signed by")

    def __init__(self, *args, gateway: Gateway, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["meter"]
        field.queryset = commissioning.meters_ready_for_bus(gateway)
        field.label_from_instance = lambda m: (
            f"{m.modbus_address} · {m.serial} ({m.get_status_display().lower()})"
            + (f" {m.label}" if m.label else "")
        )


class CommandForm(forms.Form):
    type = forms.ChoiceField(choices=EdgeCommand.Type.choices)
    address = forms.IntegerField(min_value=1, max_value=247, required=False)
    start = forms.IntegerField(min_value=1, max_value=247, required=False, label="From")
    end = forms.IntegerField(min_value=1, max_value=247, required=False, label="To")
    model = forms.ChoiceField(
        choices=[("", "–")] + [(m, m) for m in commissioning.CHINT_MODELS], required=False
    )

    def args(self) -> dict:
        """The command's arguments, named as the edge contract names them."""
        data = self.cleaned_data
        if data["type"] == EdgeCommand.Type.SCAN:
            return {"from": data["start"] or 2, "to": data["end"] or 247}
        if data["type"] == EdgeCommand.Type.SET_ADDRESS:
            return {"model": data["model"], "from": data["start"], "to": data["end"]}
        return {"address": data["address"]}


class AcceptForm(forms.Form):
    serial = forms.CharField(max_length=20, help_text="12 digits for CHINT meters")
    model = forms.ChoiceField(choices=Meter.Model.choices)
    label = forms.CharField(max_length=200, required=False, label="Building/customer")
    by_name = forms.CharField(max_length=150, required=False, label="Signed by")


class RegisterForm(forms.Form):
    site = forms.ModelChoiceField(queryset=None)
    name = forms.SlugField(max_length=50, help_text="e.g. kla-block-a")
    description = forms.CharField(max_length=200, required=False)
    meter_limit = forms.IntegerField(
        min_value=1, max_value=247, initial=32, help_text="32 unit loads on one RS485 segment"
    )

    def __init__(self, *args, sites=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = sites


class ReviewForm(forms.Form):
    action = forms.ChoiceField(choices=Review.choices)
    energy_kwh = forms.DecimalField(
        required=False, max_digits=14, decimal_places=3, label="Corrected energy (kWh)"
    )
    note = forms.CharField(max_length=300, required=False)


# --- helpers --------------------------------------------------------------------------------


def _gateway(request: HttpRequest, pk: int) -> Gateway:
    return get_object_or_404(selectors.gateways_visible_to(request.user), pk=pk)


def _require_edit(request: HttpRequest, site_id: int | None) -> None:
    if not can_on_site(request.user, Cap.METERS_EDIT, site_id):
        raise PermissionDenied


def _say(request: HttpRequest, exc: ValidationError) -> None:
    messages.error(request, " ".join(exc.messages))


def _back(gateway: Gateway) -> HttpResponse:
    return redirect("metering:gateway", pk=gateway.pk)


def _describe(values: dict | None) -> str:
    if not values:
        return ""
    return "; ".join(
        f"{k}: {v if isinstance(v, str | int | float) else json.dumps(v)}"
        for k, v in values.items()
    )


def _commands_context(gateway: Gateway) -> dict:
    commands = list(gateway.commands.select_related("created_by")[:RECENT_COMMANDS])
    return {
        "gateway": gateway,
        "commands": [
            {"command": c, "args": _describe(c.args), "result": _describe(c.result)}
            for c in commands
        ],
        "polling": any(c.status in OPEN_COMMANDS for c in commands),
    }


def _discoveries(gateway: Gateway, can_edit: bool) -> list[dict]:
    answering = {m.modbus_address: m for m in gateway.meters.filter(status__in=ON_BUS)}
    planned = {m.modbus_address: m for m in commissioning.meters_ready_for_bus(gateway)}
    rows, seen = [], set()
    # Newest first; an address found again by a later scan is listed once.
    for found in gateway.discoveries.filter(status=Discovery.Status.NEW).order_by("-scanned_at"):
        if found.address in seen:
            continue
        seen.add(found.address)
        known, plan = answering.get(found.address), planned.get(found.address)
        initial = {
            "serial": found.serial or (plan.serial if plan else ""),
            "model": found.model_guess or (plan.model if plan else Meter.Model.DDSU666),
        }
        rows.append(
            {
                "found": found,
                "known": known,
                "planned": plan,
                "form": AcceptForm(initial=initial, prefix=f"d{found.pk}")
                if can_edit and not known
                else None,
            }
        )
    return sorted(rows, key=lambda row: row["found"].address)


# --- the gateway's panel ------------------------------------------------------------------------


@login_required
def gateway_panel(request: HttpRequest, pk: int) -> HttpResponse:
    """The bus, the Pi's health, commands, discoveries and token of one gateway.

    The gateway page loads it with htmx; without JavaScript it is a page of its own.
    """
    gateway = _gateway(request, pk)
    now = clock.now()
    can_edit = can_on_site(request.user, Cap.METERS_EDIT, gateway.site_id)
    rows = commissioning.bus_rows(gateway, now=now)
    context = {
        **_commands_context(gateway),
        "now": now,
        "can_edit": can_edit,
        "rows": rows,
        "online": sum(r.online for r in rows),
        "heartbeat": commissioning.heartbeat_summary(gateway, now=now),
        "discoveries": _discoveries(gateway, can_edit),
        "tokens": commissioning.active_tokens(gateway, now=now),
        "install_form": InstallForm(gateway=gateway) if can_edit else None,
        "flagged": Reading.objects.filter(
            gateway_id=gateway.pk, quality=Reading.Quality.FLAGGED
        ).count(),
        "models": commissioning.CHINT_MODELS,
    }
    template = "metering/portal/_panel.html" if request.htmx else "metering/portal/panel.html"
    return render(request, template, context)


@login_required
def gateway_commands(request: HttpRequest, pk: int) -> HttpResponse:
    """The gateway's recent commands (a fragment the panel polls while any is open)."""
    gateway = _gateway(request, pk)
    return render(request, "metering/portal/_commands.html", _commands_context(gateway))


@login_required
@require_POST
def command_new(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask the gateway's Pi to scan, read, probe or change an address."""
    gateway = _gateway(request, pk)
    _require_edit(request, gateway.site_id)
    form = CommandForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a command and addresses between 1 and 247.")
        return _back(gateway)
    try:
        command = commissioning.command_issue(
            gateway=gateway, type=form.cleaned_data["type"], args=form.args(), user=request.user
        )
    except ValidationError as exc:
        _say(request, exc)
    else:
        messages.success(
            request,
            f"{command.get_type_display()} ({command.wire_id}) waits for the gateway's next "
            "heartbeat.",
        )
    return _back(gateway)


@login_required
@require_POST
def bus_install(request: HttpRequest, pk: int) -> HttpResponse:
    """Put a planned meter on this gateway's bus at its planned address."""
    gateway = _gateway(request, pk)
    _require_edit(request, gateway.site_id)
    form = InstallForm(request.POST, gateway=gateway)
    if not form.is_valid():
        messages.error(
            request, "Choose a meter of this site that is assigned, converted or shipped."
        )
        return _back(gateway)
    try:
        meter = commissioning.bus_install(
            gateway=gateway, meter=form.cleaned_data["meter"], by_name=form.cleaned_data["by_name"]
        )
    except ValidationError as exc:
        _say(request, exc)
    else:
        messages.success(
            request,
            f"Meter {meter.serial} is installed at address {meter.modbus_address}; the gateway "
            "polls it from its next config and its first valid readings commission it.",
        )
    return _back(gateway)


def _discovery(request: HttpRequest, pk: int, discovery_pk: int) -> tuple[Gateway, Discovery]:
    gateway = _gateway(request, pk)
    _require_edit(request, gateway.site_id)
    return gateway, get_object_or_404(Discovery, gateway=gateway, pk=discovery_pk)


@login_required
@require_POST
def discovery_accept(request: HttpRequest, pk: int, discovery_pk: int) -> HttpResponse:
    """Accept what a scan found as a meter (the serial is asked for)."""
    gateway, found = _discovery(request, pk, discovery_pk)
    form = AcceptForm(request.POST, prefix=f"d{found.pk}")
    if not form.is_valid():
        messages.error(request, "Give the meter's serial and model.")
        return _back(gateway)
    try:
        meter = commissioning.discovery_accept(discovery=found, **form.cleaned_data)
    except ValidationError as exc:
        _say(request, exc)
    else:
        messages.success(
            request, f"Meter {meter.serial} is installed at address {meter.modbus_address}."
        )
    return _back(gateway)


@login_required
@require_POST
def discovery_dismiss(request: HttpRequest, pk: int, discovery_pk: int) -> HttpResponse:
    """Set a scan discovery aside."""
    gateway, found = _discovery(request, pk, discovery_pk)
    try:
        commissioning.discovery_dismiss(discovery=found)
    except ValidationError as exc:
        _say(request, exc)
    else:
        messages.success(request, f"Dismissed what answered at address {found.address}.")
    return _back(gateway)


# --- registering a gateway and its token ----------------------------------------------------------


def _show_token(request: HttpRequest, gateway: Gateway, token: str, what: str) -> HttpResponse:
    # The views that call this are never_cache: the page holds the secret.
    context = {"gateway": gateway, "token": token, "what": what}
    return render(request, "metering/portal/token.html", context)


@never_cache
@login_required
def gateway_register(request: HttpRequest) -> HttpResponse:
    """Register a gateway and show its token, once."""
    if not request.user.can(Cap.METERS_EDIT):
        raise PermissionDenied
    form = RegisterForm(request.POST or None, sites=sites_visible_to(request.user))
    if request.method == "POST" and form.is_valid():
        try:
            gateway, token = commissioning.gateway_register(**form.cleaned_data)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            return _show_token(request, gateway, token, "registered")
    return render(request, "metering/portal/register.html", {"form": form})


def _token_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    gateway = _gateway(request, pk)
    _require_edit(request, gateway.site_id)
    if request.method != "POST" or request.POST.get("confirm") != "yes":
        context = {
            "gateway": gateway,
            "action": action,
            "tokens": commissioning.active_tokens(gateway),
        }
        return render(request, "metering/portal/confirm_token.html", context)
    if action == "rotate":
        return _show_token(request, gateway, commissioning.token_rotate(gateway=gateway), action)
    count = commissioning.token_revoke(gateway=gateway)
    messages.warning(
        request,
        f"Revoked {count} token(s) of {gateway.name}: its Pi can no longer send anything "
        "until it gets a new token.",
    )
    return _back(gateway)


@never_cache
@login_required
def token_rotate(request: HttpRequest, pk: int) -> HttpResponse:
    """Confirm, then issue a new token (the old one keeps working for 7 days)."""
    return _token_action(request, pk, "rotate")


@login_required
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    """Confirm, then end every token of the gateway at once."""
    return _token_action(request, pk, "revoke")


# --- flagged readings --------------------------------------------------------------------------


@login_required
def flagged(request: HttpRequest, site_pk: int) -> HttpResponse:
    """A site's flagged readings with their reasons, to accept, reset or correct."""
    if not request.user.can(Cap.METERS_VIEW):
        raise PermissionDenied
    site = get_object_or_404(sites_visible_to(request.user), pk=site_pk)
    gateways = selectors.gateways_visible_to(request.user).filter(site=site)
    gateway = gateways.filter(pk=request.GET.get("gateway") or 0).first()
    page = Paginator(commissioning.flagged_readings(site, gateway=gateway), 50).get_page(
        request.GET.get("page")
    )
    can_edit = can_on_site(request.user, Cap.METERS_EDIT, site.pk)
    context = {
        "site": site,
        "gateway": gateway,
        "gateways": gateways,
        "page": page,
        "rows": [{"reading": r, "epoch": int(r.ts.timestamp())} for r in page],
        "can_edit": can_edit,
        "form": ReviewForm() if can_edit else None,
    }
    return render(request, "metering/portal/flagged.html", context)


@login_required
@require_POST
def reading_review(request: HttpRequest, meter_pk: int, epoch: int) -> HttpResponse:
    """Accept a flagged reading, mark it a register reset, or correct its energy value."""
    meter = get_object_or_404(selectors.meters_visible_to(request.user), pk=meter_pk)
    if meter.site_id is None:
        raise Http404
    _require_edit(request, meter.site_id)
    reading = get_object_or_404(
        Reading, meter_id=meter.pk, ts=dt.datetime.fromtimestamp(epoch, dt.UTC)
    )
    form = ReviewForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose what to do with the reading (and a valid kWh value).")
    else:
        try:
            commissioning.reading_review(reading=reading, **form.cleaned_data)
        except ValidationError as exc:
            _say(request, exc)
        else:
            action = Review(form.cleaned_data["action"]).label.lower()
            local = reading.ts.astimezone(ZoneInfo(meter.site.timezone))
            messages.success(
                request, f"Reading of {meter.serial} at {local:%Y-%m-%d %H:%M}: {action}."
            )
    url = reverse("metering:flagged", args=[meter.site_id])
    gateway = request.POST.get("gateway", "")
    return redirect(f"{url}?gateway={gateway}" if gateway.isdigit() else url)
