"""Plant pages: the sites' list, a site's technical page, the field agent's plant log,
assets and thresholds, and the balance table's export.

- Technical page (``METERS_VIEW`` on the site): the power flowing now (OpenEMS),
  production against consumption through today, the battery's state of charge, the
  energy balance by day and month with losses and the meters whose data was estimated,
  the plant's health by day, open plant alerts, assets and recent hand logs.
- Plant log (``METERS_FIELD`` on the site: field agents and supervisors, and managers):
  one phone-first form with a photo of the display; audited by the service.
- Assets, thresholds and resolving alerts: ``METERS_EDIT`` on the site.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from mcoms.core import clock
from mcoms.core.audit import acting_as, record_changes, snapshot
from mcoms.core.charts import Series, chart
from mcoms.core.exports import export_response
from mcoms.core.models import AuditEvent, Site
from mcoms.core.permissions import require
from mcoms.core.roles import Cap
from mcoms.core.selectors import can_on_site, sites_visible_to
from metering.models import SiteHourlyUsage
from metering.plant import health, services
from metering.plant import selectors as q
from metering.plant.forms import AssetForm, PlantLogForm, PlantSettingsForm
from metering.plant.models import EnergyBalance, PlantAlert, PlantLog, PlantSettings

BALANCE_DAYS = 14


def _site(request: HttpRequest, pk: int, capability: str = Cap.METERS_VIEW) -> Site:
    site = get_object_or_404(sites_visible_to(request.user), pk=pk)
    require(request.user, capability, site.pk)
    return site


@login_required
def site_list(request: HttpRequest) -> HttpResponse:
    require(request.user, Cap.METERS_VIEW)
    sites = list(sites_visible_to(request.user).order_by("name"))
    yesterday = clock.now().date() - dt.timedelta(days=1)
    kpis = q.site_kpis([s.pk for s in sites], yesterday - dt.timedelta(days=6), yesterday)
    rows = [(site, kpis.get(site.pk, {})) for site in sites]
    return render(
        request,
        "plant/sites.html",
        {"rows": rows, "totals": q.kpi_totals(kpis), "start": yesterday - dt.timedelta(days=6)},
    )


def _flows(site: Site, now: dt.datetime) -> dict:
    """The newest value of each power channel (within the silence limit) and what it means."""
    cfg = q.settings_for(site)
    fresh = now - dt.timedelta(minutes=cfg.silent_after_minutes)
    values = {}
    at = None
    for channel in (q.PRODUCTION_POWER, q.CONSUMPTION_POWER, q.GRID_POWER, q.SOC):
        sample = q.latest(site, channel, before=now)
        if sample is not None and sample.ts >= fresh:
            values[channel] = sample.value
            at = max(at or sample.ts, sample.ts)
    if not values:
        return {}
    pv = values.get(q.PRODUCTION_POWER)
    load = values.get(q.CONSUMPTION_POWER)
    grid = values.get(q.GRID_POWER)
    battery = None
    if pv is not None and load is not None:
        # What is produced or brought in and not used goes into the battery.
        battery = pv + (grid or 0) - load
    return {
        "at": at,
        "pv_kw": None if pv is None else pv / 1000,
        "load_kw": None if load is None else load / 1000,
        "grid_kw": None if grid is None else grid / 1000,
        "battery_kw": None if battery is None else abs(battery) / 1000,
        "battery_state": None
        if battery is None
        else ("charging" if battery >= 0 else "discharging"),
        "soc": values.get(q.SOC),
    }


def _today_charts(site: Site, day: dt.date):
    start, _ = q.day_bounds(day, site.zone)
    labels = [f"{h:02d}" for h in range(24)]

    def kw(values):
        return [None if v is None else round(v / 1000, 2) for v in values]

    production = kw(q.hourly_means(site, q.PRODUCTION_POWER, start, 24))
    consumption = kw(q.hourly_means(site, q.CONSUMPTION_POWER, start, 24))
    metered = dict(
        SiteHourlyUsage.objects.filter(
            site=site, hour__gte=start, hour__lt=start + dt.timedelta(hours=24)
        ).values_list("hour", "kwh")
    )
    customers = [
        metered.get(start + dt.timedelta(hours=h)) for h in range(24)
    ]  # kWh in an hour = mean kW
    flows = chart(
        labels,
        [
            Series("PV production", production, kind="line"),
            Series("Consumption (inverter)", consumption, kind="line"),
            Series("Meters (kWh in the hour)", customers, kind="bar"),
        ],
        title=f"Production and consumption, {day:%d %b} (hour of the day)",
        unit="kW",
        places=2,
    )
    soc = chart(
        labels,
        [Series("State of charge", q.hourly_means(site, q.SOC, start, 24), kind="line")],
        title=f"Battery state of charge, {day:%d %b}",
        unit="%",
        places=0,
    )
    return flows, soc


@login_required
def site_page(request: HttpRequest, pk: int) -> HttpResponse:
    site = _site(request, pk)
    now = clock.now()
    today = now.astimezone(site.zone).date()
    try:
        day = dt.date.fromisoformat(request.GET["day"]) if request.GET.get("day") else today
    except ValueError:
        day = today
    flows_chart, soc_chart = _today_charts(site, day)
    days = list(q.balances(site, EnergyBalance.Period.DAY, BALANCE_DAYS))
    months = list(q.balances(site, EnergyBalance.Period.MONTH, 6))
    health_days = health.yields(site, today, 7)
    yield_chart = chart(
        [f"{h.day:%d %b}" for h in health_days],
        [Series("kWh per kWp", [h.specific_yield for h in health_days])],
        title="PV specific yield by day",
        unit="kWh/kWp",
        places=2,
    )
    context = {
        "site": site,
        "day": day,
        "today": today,
        "flows": _flows(site, now),
        "flows_chart": flows_chart,
        "soc_chart": soc_chart,
        "days": days,
        "months": months,
        "health_days": list(reversed(health_days)),
        "yield_chart": yield_chart,
        "alerts": q.open_alerts([site.pk]),
        "assets": q.assets_of(site),
        "logs": PlantLog.objects.filter(site=site).select_related("logged_by")[:10],
        "settings": q.settings_for(site),
        "can_edit": can_on_site(request.user, Cap.METERS_EDIT, site.pk),
        "can_log": can_on_site(request.user, Cap.METERS_FIELD, site.pk),
    }
    return render(request, "plant/site.html", context)


@login_required
def balance_export(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    site = _site(request, pk)
    period = request.GET.get("period", EnergyBalance.Period.DAY)
    if period not in EnergyBalance.Period.values:
        raise Http404
    head = [
        "Period start",
        "Method",
        "Supplied kWh",
        "Consumed kWh",
        "Losses kWh",
        "Losses %",
        "Estimated kWh",
        "Meters estimated or missing",
    ]
    rows = [
        [
            b.start,
            b.get_method_display(),
            b.supplied_kwh,
            b.consumed_kwh,
            b.losses_kwh,
            b.losses_pct,
            b.estimated_kwh,
            "; ".join(f"{u['serial']} ({u['why']})" for u in b.uncertain),
        ]
        for b in q.balances(site, period, 400)
    ]
    try:
        return export_response(fmt, f"energy-balance-{site.code}-{period}", head, rows)
    except ValueError as exc:
        raise Http404 from exc


def _log_sites(request: HttpRequest):
    sites = [
        s.pk
        for s in sites_visible_to(request.user)
        if can_on_site(request.user, Cap.METERS_FIELD, s.pk)
    ]
    return Site.objects.filter(pk__in=sites).order_by("name")


@login_required
def log_new(request: HttpRequest) -> HttpResponse:
    require(request.user, Cap.METERS_FIELD)
    sites = _log_sites(request)
    if not sites.exists():
        raise PermissionDenied
    form = PlantLogForm(request.POST or None, request.FILES or None, sites=sites)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with acting_as(request.user, channel=AuditEvent.Channel.WEB):
                log = services.plant_log_record(
                    site=data["site"],
                    by=request.user,
                    read_at=data["read_at"],
                    photo=data["photo"],
                    pv_kwh_today=data["pv_kwh_today"],
                    battery_soc_pct=data["battery_soc_pct"],
                    battery_voltage_v=data["battery_voltage_v"],
                    generator_hours=data["generator_hours"],
                    fuel_added_l=data["fuel_added_l"],
                    note=data["note"],
                )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(
                request,
                f"Plant log saved for {log.site} at "
                f"{log.read_at.astimezone(log.site.zone):%d %b %H:%M}.",
            )
            return redirect("plant:log_new")
    recent = PlantLog.objects.filter(logged_by=request.user).select_related("site")[:5]
    return render(request, "plant/log_form.html", {"form": form, "recent": recent})


@login_required
def log_photo(request: HttpRequest, pk: int) -> FileResponse:
    log = get_object_or_404(PlantLog, pk=pk)
    if not can_on_site(request.user, Cap.METERS_VIEW, log.site_id):
        raise Http404
    return FileResponse(log.photo.open("rb"))


@login_required
def asset_new(request: HttpRequest, pk: int) -> HttpResponse:
    site = _site(request, pk, Cap.METERS_EDIT)
    form = AssetForm(request.POST or None, site=site)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        try:
            with acting_as(request.user, channel=AuditEvent.Channel.WEB):
                services.asset_create(
                    site=site,
                    kind=data.pop("kind"),
                    name=data.pop("name"),
                    source=data.pop("source"),
                    **data,
                )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, "Equipment added.")
            return redirect("plant:site", pk=site.pk)
    return render(
        request, "plant/form.html", {"form": form, "title": f"Add plant equipment: {site}"}
    )


@login_required
def settings_edit(request: HttpRequest, pk: int) -> HttpResponse:
    site = _site(request, pk, Cap.METERS_EDIT)
    current = PlantSettings.objects.filter(site=site).first() or PlantSettings(site=site)
    before = snapshot(current) if current.pk else None
    form = PlantSettingsForm(request.POST or None, instance=current)
    if request.method == "POST" and form.is_valid():
        with acting_as(request.user, channel=AuditEvent.Channel.WEB):
            saved = form.save()
            if before is None:
                from mcoms.core.audit import record

                record(AuditEvent.Action.CREATE, saved, after=snapshot(saved), site=site)
            else:
                record_changes(saved, before, site=site)
        messages.success(request, "Plant thresholds saved.")
        return redirect("plant:site", pk=site.pk)
    return render(request, "plant/form.html", {"form": form, "title": f"Plant thresholds: {site}"})


@login_required
@require_POST
def alert_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    alert = get_object_or_404(PlantAlert, pk=pk)
    require(request.user, Cap.METERS_EDIT, alert.site_id)
    note = (request.POST.get("note") or "").strip()
    if not note:
        messages.error(request, "Say what was found or done before resolving the alert.")
    else:
        try:
            with acting_as(request.user, channel=AuditEvent.Channel.WEB):
                services.alert_resolve(alert=alert, by=request.user, note=note)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, "Alert resolved.")
    return redirect(reverse("plant:site", args=[alert.site_id]) + "#alerts")
