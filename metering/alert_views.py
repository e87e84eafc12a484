"""Staff pages of the watches: alerts (list, page, acknowledge, resolve), a meter's usage
chart with its control limits, outage incidents, and a site's watch settings."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from mcoms.core import audit, clock
from mcoms.core.models import AuditEvent
from mcoms.core.permissions import require
from mcoms.core.roles import Cap
from mcoms.core.selectors import can_on_site, sites_visible_to
from metering import alerting, anomalies, anomaly_tasks, selectors
from metering.models import Alert, Incident, SiteWatchSettings

HOUR = dt.timedelta(hours=1)
STATUS_FILTERS = (
    ("unresolved", "Open or acknowledged"),
    ("open", "Open"),
    ("acknowledged", "Acknowledged"),
    ("resolved", "Resolved"),
    ("any", "Any"),
)
CHART_W, CHART_H, PAD_L, PAD_B, PAD_T = 720, 260, 44, 28, 12


def _alerts_for(user):
    return Alert.objects.filter(site__in=sites_visible_to(user)).select_related(
        "site", "meter", "gateway", "incident"
    )


@login_required
def alert_list(request: HttpRequest) -> HttpResponse:
    require(request.user, Cap.METERS_VIEW)
    params = request.GET
    alerts = _alerts_for(request.user)
    status = params.get("status") or "unresolved"
    if status == "unresolved":
        alerts = alerts.filter(resolved_at__isnull=True)
    elif status in Alert.Status.values:
        alerts = alerts.filter(status=status)
    if params.get("site"):
        alerts = alerts.filter(site_id=params["site"])
    if params.get("kind"):
        alerts = alerts.filter(kind=params["kind"])
    page = Paginator(alerts.order_by("-opened_at", "-pk"), 30).get_page(params.get("page"))
    context = {
        "page": page,
        "params": params,
        "status": status,
        "statuses": STATUS_FILTERS,
        "kinds": Alert.Kind.choices,
        "sites": sites_visible_to(request.user),
    }
    template = "metering/alert_list.html#results" if request.htmx else "metering/alert_list.html"
    return render(request, template, context)


def _when(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


@login_required
def alert_detail(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, Cap.METERS_VIEW)
    alert = get_object_or_404(_alerts_for(request.user), pk=pk)
    hour = _when(alert.details.get("hour"))
    chart = None
    if alert.meter_id and hour is not None:
        chart = chart_context(alert.meter, hour, days=3)
    history = AuditEvent.objects.filter(
        object_type="metering.alert", object_id=str(alert.pk)
    ).order_by("at", "id")
    context = {
        "alert": alert,
        "limits": alert.details.get("limits"),
        "hour": hour,
        "chart": chart,
        "chart_link": alert.details.get("chart")
        or (alerting.chart_path(alert.meter_id, hour) if alert.meter_id and hour else ""),
        "escalations": alert.details.get("escalations", []),
        "level_name": alerting.LEVEL_NAMES.get(alert.escalation_level, ""),
        "history": history,
        "can_act": can_on_site(request.user, Cap.METERS_EDIT, alert.site_id),
    }
    return render(request, "metering/alert_detail.html", context)


@login_required
@require_POST
def alert_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    alert = get_object_or_404(_alerts_for(request.user), pk=pk)
    require(request.user, Cap.METERS_EDIT, alert.site_id)
    try:
        alerting.acknowledge(alert, user=request.user, note=request.POST.get("note", "").strip())
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Acknowledged: the alert will not be escalated.")
    return redirect("metering:alert", pk=pk)


@login_required
@require_POST
def alert_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    alert = get_object_or_404(_alerts_for(request.user), pk=pk)
    require(request.user, Cap.METERS_EDIT, alert.site_id)
    try:
        alerting.resolve(alert, user=request.user, note=request.POST.get("note", ""))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Resolved.")
    return redirect("metering:alert", pk=pk)


# --- the chart ---------------------------------------------------------------------------------


def _poly(points: list[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)


def chart_context(meter, target: dt.datetime, *, days: int = 7) -> dict:
    """Hourly usage of ``meter`` around ``target`` with its limits, ready to draw as SVG.

    Usage is a line; the limits the site's method gives each hour (the hour-of-day
    baseline, or the plain chart while history is short) are a shaded band with the
    centre line; the plain chart's mean and mean ± k·σ at ``target`` are dashed lines.
    """
    target = target.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    site = meter.site
    row = SiteWatchSettings.for_site(site) if site else SiteWatchSettings.defaults()
    cfg = anomaly_tasks.config_of(row)
    offset = anomaly_tasks.utc_offset_hours(site, target) if site else 0
    now_hour = clock.now().astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    first = target - dt.timedelta(days=days) + HOUR
    last = min(target + dt.timedelta(hours=12), now_hour)
    last = max(last, target)
    start = first - dt.timedelta(days=cfg.history_days)
    hours, kwh = anomaly_tasks.load_usage([meter.pk], start, last + HOUR).get(meter.pk, ([], []))
    series = anomalies.Series(hours, kwh, offset)
    t = anomaly_tasks.epoch_hour(target)
    h0, h1 = anomaly_tasks.epoch_hour(first), anomaly_tasks.epoch_hour(last)
    plain = anomalies.plain_chart(series, t, cfg)
    rows = []
    for h in range(h0, h1 + 1):
        lim = anomalies.limits_for(series, h, cfg)
        rows.append(
            {
                "hour": h,
                "at": anomaly_tasks.from_epoch_hour(h),
                "kwh": series.at.get(h),
                "limits": lim,
                "flag": None
                if lim is None or series.at.get(h) is None
                else anomalies.outside(series.at[h], lim),
            }
        )
    values = [r["kwh"] for r in rows if r["kwh"] is not None]
    values += [r["limits"].upper for r in rows if r["limits"] is not None]
    if plain is not None:
        values.append(plain.upper)
    top = max(values, default=1.0) or 1.0
    top *= 1.1
    span = max(h1 - h0, 1)
    inner_w, inner_h = CHART_W - PAD_L - 8, CHART_H - PAD_B - PAD_T

    def x(h: int) -> float:
        return PAD_L + (h - h0) / span * inner_w

    def y(v: float) -> float:
        v = min(max(v, 0.0), top)
        return PAD_T + inner_h - v / top * inner_h

    usage_lines, line = [], []
    for r in rows:
        if r["kwh"] is None:
            if line:
                usage_lines.append(_poly(line))
            line = []
        else:
            line.append((x(r["hour"]), y(r["kwh"])))
    if line:
        usage_lines.append(_poly(line))
    with_limits = [r for r in rows if r["limits"] is not None]
    band = ""
    centre = ""
    if with_limits:
        upper = [(x(r["hour"]), y(r["limits"].upper)) for r in with_limits]
        lower = [(x(r["hour"]), y(max(r["limits"].lower, 0))) for r in reversed(with_limits)]
        band = _poly(upper + lower)
        centre = _poly([(x(r["hour"]), y(r["limits"].centre)) for r in with_limits])
    ticks = []
    for h in range(h0, h1 + 1):
        if anomalies.local_hour(h, offset) == 0:
            ticks.append(
                {
                    "x": x(h),
                    "label": f"{anomaly_tasks.from_epoch_hour(h + offset):%d %b}",
                }
            )
    flagged = [
        {"x": x(r["hour"]), "y": y(r["kwh"])} for r in rows if r["flag"] and r["kwh"] is not None
    ]
    target_row = next((r for r in rows if r["hour"] == t), None)
    zone = site.zone if site else dt.UTC
    table = [{**r, "local": r["at"].astimezone(zone)} for r in rows if t - 12 <= r["hour"] <= t + 3]
    return {
        "width": CHART_W,
        "height": CHART_H,
        "pad_l": PAD_L,
        "plot_right": CHART_W - 8,
        "plot_bottom": PAD_T + inner_h,
        "top_label": f"{top:.2f}",
        "top_y": PAD_T,
        "usage_lines": usage_lines,
        "band": band,
        "centre": centre,
        "plain": plain,
        "plain_y": None
        if plain is None
        else {"mean": y(plain.centre), "upper": y(plain.upper), "lower": y(max(plain.lower, 0))},
        "target_x": x(t),
        "target": target,
        "target_local": target.astimezone(zone),
        "target_row": target_row,
        "ticks": ticks,
        "flagged": flagged,
        "table": table,
        "method": row.get_usage_method_display(),
        "days": days,
        "empty": not values,
    }


@login_required
def meter_chart(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, Cap.METERS_VIEW)
    meter = get_object_or_404(selectors.meters_visible_to(request.user), pk=pk)
    target = _when(request.GET.get("hour"))
    if target is None:
        target = clock.now().replace(minute=0, second=0, microsecond=0) - HOUR
    try:
        days = min(max(int(request.GET.get("days", 7)), 1), 31)
    except ValueError:
        days = 7
    context = {
        "meter": meter,
        "chart": chart_context(meter, target, days=days),
        "alerts": meter.alerts.filter(resolved_at__isnull=True),
        "day_choices": (1, 3, 7, 14, 31),
    }
    return render(request, "metering/chart.html", context)


# --- incidents -----------------------------------------------------------------------------


@login_required
def incident_list(request: HttpRequest) -> HttpResponse:
    require(request.user, Cap.METERS_VIEW)
    incidents = Incident.objects.filter(site__in=sites_visible_to(request.user)).select_related(
        "site"
    )
    if request.GET.get("site"):
        incidents = incidents.filter(site_id=request.GET["site"])
    if request.GET.get("open"):
        incidents = incidents.filter(ended_at__isnull=True)
    page = Paginator(incidents, 30).get_page(request.GET.get("page"))
    context = {"page": page, "params": request.GET, "sites": sites_visible_to(request.user)}
    return render(request, "metering/incident_list.html", context)


@login_required
def incident_detail(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, Cap.METERS_VIEW)
    incident = get_object_or_404(
        Incident.objects.filter(site__in=sites_visible_to(request.user)).select_related("site"),
        pk=pk,
    )
    context = {
        "incident": incident,
        "meters": incident.meters.order_by("modbus_address", "serial"),
        "alerts": incident.alerts.select_related("meter", "gateway").order_by("kind", "pk"),
    }
    return render(request, "metering/incident_detail.html", context)


# --- a site's watch settings ---------------------------------------------------------------


class WatchSettingsForm(forms.ModelForm):
    class Meta:
        model = SiteWatchSettings
        fields = [
            f.name
            for f in SiteWatchSettings._meta.concrete_fields
            if f.name not in ("id", "site", "updated_at")
        ]

    def clean(self):
        data = super().clean()
        if data.get("night_start") is not None and data.get("night_start") == data.get("night_end"):
            self.add_error("night_end", "The night must last at least an hour.")
        return data


@login_required
def watch_settings_edit(request: HttpRequest, site_pk: int) -> HttpResponse:
    site = get_object_or_404(sites_visible_to(request.user), pk=site_pk)
    require(request.user, Cap.METERS_EDIT, site.pk)
    row = SiteWatchSettings.for_site(site)
    fields = [f.name for f in SiteWatchSettings._meta.concrete_fields if f.name not in ("id",)]
    before = audit.snapshot(row, fields) if row.pk else None
    form = WatchSettingsForm(request.POST or None, instance=row)
    if request.method == "POST" and form.is_valid():
        saved = form.save(commit=False)
        saved.site = site
        saved.updated_at = clock.now()
        saved.save()
        if before is None:
            audit.record(
                AuditEvent.Action.CREATE, saved, after=audit.snapshot(saved, fields), site=site
            )
        else:
            audit.record_changes(saved, before, site=site)
        messages.success(request, f"Saved the watch settings of {site}.")
        return redirect("metering:watch_settings", site_pk=site.pk)
    return render(
        request, "form.html", {"form": form, "title": f"Usage and power-quality limits: {site}"}
    )
