"""The hourly usage check: every watched meter's last hour through the detectors.

:func:`check_usage` loads the hourly usage of many meters at once (per chunk of
``CHUNK`` meters, one query: on PostgreSQL it returns each meter's plain-chart mean
and σ and, as one array per meter, only the hours of day the other detectors look up;
elsewhere every hour of the window), runs
:func:`metering.anomalies.detect` on each meter's last complete hour, opens the alerts
(one open per meter and kind; one already open is marked seen again), resolves usage
alerts not seen again for ``CLEAR_AFTER``, and tells staff and customers of the new ones
(after commit). Hours that are partly estimated (``estimated_kwh`` > 0) take no part:
they are not measurements.

The Celery tasks here are thin: they set who acts (for the audit trail) and call the
checks of this module, :mod:`metering.power_quality`, :mod:`metering.incidents` and
:mod:`metering.alerting`. Their schedules are in ``metering.schedules``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field

from celery import shared_task
from django.db import connection, transaction
from django.db.models import Max, Q

from mcoms.core import audit, clock
from mcoms.core.models import AuditEvent, Site
from metering import alerting, anomalies, incidents, power_quality
from metering.lifecycle import ON_BUS
from metering.models import Alert, HourlyUsage, Meter, Reading, SiteWatchSettings

log = logging.getLogger(__name__)

CHUNK = 2000
HOUR = dt.timedelta(hours=1)
CLEAR_AFTER = dt.timedelta(hours=24)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass
class UsageResult:
    """What one check did."""

    hour: dt.datetime | None = None
    meters: int = 0
    with_data: int = 0
    findings: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    opened: list[Alert] = field(default_factory=list)
    resolved: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {
            "hour": self.hour.isoformat() if self.hour else None,
            "meters": self.meters,
            "with_data": self.with_data,
            "findings": dict(self.findings),
            "opened": len(self.opened),
            "resolved": self.resolved,
            "seconds": round(self.seconds, 2),
        }


def epoch_hour(ts: dt.datetime) -> int:
    return int((ts - EPOCH).total_seconds()) // 3600


def from_epoch_hour(hour: int) -> dt.datetime:
    return EPOCH + dt.timedelta(hours=hour)


def config_of(row: SiteWatchSettings) -> anomalies.Config:
    """The detectors' configuration from a site's settings."""
    return anomalies.Config(
        method=row.usage_method,
        chart_k=row.chart_k,
        robust_k=row.robust_k,
        history_days=row.history_days,
        baseline_weeks=row.baseline_weeks,
        run_length=row.run_length,
        night_start=row.night_start,
        night_end=row.night_end,
    )


def utc_offset_hours(site: Site, at: dt.datetime) -> int:
    offset = site.zone.utcoffset(at.replace(tzinfo=None))
    return int(offset.total_seconds() // 3600) if offset is not None else 0


def hours_between(start: dt.datetime, end: dt.datetime, hours_of_day: set[int]) -> list:
    """Every whole UTC hour in [start, end) whose hour of day is in ``hours_of_day``."""
    first = start.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    if first < start:
        first += HOUR
    count = int((end - first) / HOUR) + 1
    hours = (first + n * HOUR for n in range(count))
    return [h for h in hours if h < end and h.hour in hours_of_day]


def load_usage(
    meter_ids: list[int],
    start: dt.datetime,
    end: dt.datetime,
    *,
    hours_of_day: set[int] | None = None,
) -> dict[int, tuple[list[int], list[float]]]:
    """Measured hourly usage of ``meter_ids`` in [start, end): epoch hours and kWh, oldest
    first, per meter. One query; on PostgreSQL the rows come back as one array per meter,
    only of ``hours_of_day`` (UTC) when given (elsewhere every hour: a superset)."""
    if not meter_ids:
        return {}
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(HourlyUsage._meta.db_table)
        only = ""
        params: list = [list(meter_ids), start, end]
        if hours_of_day is not None:
            only = "AND hour = ANY(%s) "
            params.append(hours_between(start, end, hours_of_day))
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT meter_id, "
                "array_agg(CAST(date_part('epoch', hour) / 3600 AS integer) ORDER BY hour), "
                "array_agg(CAST(kwh AS double precision) ORDER BY hour) "
                f"FROM {table} WHERE meter_id = ANY(%s) AND hour >= %s AND hour < %s "
                f"AND estimated_kwh = 0 {only}GROUP BY meter_id",
                params,
            )
            return {m: (hours, kwh) for m, hours, kwh in cursor.fetchall()}
    out: dict[int, tuple[list[int], list[float]]] = {}
    rows = (
        HourlyUsage.objects.filter(
            meter_id__in=meter_ids, hour__gte=start, hour__lt=end, estimated_kwh=0
        )
        .order_by("meter_id", "hour")
        .values_list("meter_id", "hour", "kwh")
    )
    for meter_id, hour, kwh in rows.iterator(chunk_size=5000):
        entry = out.get(meter_id)
        if entry is None:
            entry = out[meter_id] = ([], [])
        entry[0].append(epoch_hour(hour))
        entry[1].append(float(kwh))
    return out


def load_chart_stats(
    meter_ids: list[int], start: dt.datetime, end: dt.datetime
) -> dict[int, anomalies.ChartStats]:
    """The plain chart's statistics of [start, end) per meter, computed by PostgreSQL (one
    aggregate query); {} elsewhere (the detectors then compute them from the hours)."""
    if not meter_ids or connection.vendor != "postgresql":
        return {}
    table = connection.ops.quote_name(HourlyUsage._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT meter_id, count(*), avg(CAST(kwh AS double precision)), "
            "stddev_pop(CAST(kwh AS double precision)), "
            "CAST(date_part('epoch', min(hour)) / 3600 AS integer), "
            "CAST(date_part('epoch', max(hour)) / 3600 AS integer) "
            f"FROM {table} WHERE meter_id = ANY(%s) AND hour >= %s AND hour < %s "
            "AND estimated_kwh = 0 GROUP BY meter_id",
            [list(meter_ids), start, end],
        )
        return {
            m: anomalies.ChartStats(n, mean, sigma or 0.0, first, last)
            for m, n, mean, sigma, first, last in cursor.fetchall()
        }


def load_window(
    meter_ids: list[int],
    start: dt.datetime,
    target: dt.datetime,
    *,
    hours_of_day: set[int],
) -> tuple[dict[int, tuple[list[int], list[float]]], dict[int, anomalies.ChartStats]]:
    """What the check needs of [start, target]: the plain chart's statistics of the hours
    before ``target`` and the hours of ``hours_of_day`` (UTC) up to and including it.

    On PostgreSQL one query and one pass over the rows; elsewhere every hour of the
    window (:func:`load_usage`) and no statistics (the detectors compute them).
    """
    end = target + HOUR
    if connection.vendor != "postgresql" or not meter_ids:
        return load_usage(meter_ids, start, end), {}
    table = connection.ops.quote_name(HourlyUsage._meta.db_table)
    # The wanted hours spelled out: PostgreSQL hashes the list, cheaper than a time zone
    # conversion of every row.
    wanted = "hour = ANY(%s)"
    before = "hour < %s"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT meter_id, "
            f"count(*) FILTER (WHERE {before}), "
            f"avg(CAST(kwh AS double precision)) FILTER (WHERE {before}), "
            f"stddev_pop(CAST(kwh AS double precision)) FILTER (WHERE {before}), "
            f"CAST(date_part('epoch', min(hour) FILTER (WHERE {before})) / 3600 AS integer), "
            f"CAST(date_part('epoch', max(hour) FILTER (WHERE {before})) / 3600 AS integer), "
            "array_agg(CAST(date_part('epoch', hour) / 3600 AS integer) ORDER BY hour) "
            f"FILTER (WHERE {wanted}), "
            f"array_agg(CAST(kwh AS double precision) ORDER BY hour) FILTER (WHERE {wanted}) "
            f"FROM {table} WHERE meter_id = ANY(%s) AND hour >= %s AND hour < %s "
            "AND estimated_kwh = 0 GROUP BY meter_id",
            [target] * 5
            + [hours_between(start, end, hours_of_day)] * 2
            + [list(meter_ids), start, end],
        )
        data, stats = {}, {}
        for m, n, mean, sigma, first, last, hours, kwh in cursor.fetchall():
            if n:
                stats[m] = anomalies.ChartStats(n, mean, sigma or 0.0, first, last)
            if hours:
                data[m] = (hours, kwh)
        return data, stats


def voltage_seen(
    meter_ids: list[int], start: dt.datetime, end: dt.datetime, nominal: dict[int, float]
) -> set[int]:
    """Meters whose readings in (start, end] show at least half the nominal voltage."""
    if not meter_ids:
        return set()
    rows = (
        Reading.objects.filter(meter_id__in=meter_ids, ts__gt=start, ts__lte=end)
        .values("meter_id")
        .annotate(v1=Max("voltage_l1"), v2=Max("voltage_l2"), v3=Max("voltage_l3"))
    )
    seen = set()
    for row in rows:
        best = max((v for v in (row["v1"], row["v2"], row["v3"]) if v is not None), default=0)
        if best >= 0.5 * nominal.get(row["meter_id"], 230.0):
            seen.add(row["meter_id"])
    return seen


def _iso(hour: int) -> str:
    return from_epoch_hour(hour).isoformat()


def candidate(meter: dict, finding: anomalies.Finding) -> Alert:
    """The alert one finding asks for, explaining itself."""
    hour = from_epoch_hour(finding.hour)
    limits = finding.limits
    details = {
        "detector": finding.detector,
        "hour": hour.isoformat(),
        "value_kwh": round(finding.value, 4),
        "explanation": finding.explanation,
        "chart": alerting.chart_path(meter["id"], hour),
        "limits": None
        if limits is None
        else {
            "detector": limits.detector,
            "centre": round(limits.centre, 4),
            "lower": round(limits.lower, 4),
            "upper": round(limits.upper, 4),
            "spread": round(limits.spread, 4),
            "k": limits.k,
            "samples": limits.samples,
            "window": limits.window,
            "from": _iso(limits.first_hour),
            "to": _iso(limits.last_hour),
        },
    }
    extra = dict(finding.extra)
    if finding.kind == anomalies.USAGE_RUN:
        details["customer_value_kwh"] = extra["run_kwh"]
        details["customer_usual_kwh"] = extra["usual_kwh"]
    details.update({k: v for k, v in extra.items() if k not in ("values", "centres")})
    if "values" in extra:
        details["run_values"] = [round(v, 4) for v in extra["values"]]
        details["run_centres"] = [round(v, 4) for v in extra["centres"]]
    return Alert(
        kind=finding.kind,
        site_id=meter["site_id"],
        meter_id=meter["id"],
        message=f"Meter {meter['serial']}: {finding.explanation}"[:300],
        details=details,
    )


def check_usage(
    *,
    now: dt.datetime | None = None,
    meter_ids: list[int] | None = None,
    chunk: int = CHUNK,
    notify: bool = True,
) -> UsageResult:
    """Run the usage detectors on the last complete hour before ``now`` for every meter."""
    began = time.perf_counter()
    at = clock.resolve(now)
    target = at.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0) - HOUR
    result = UsageResult(hour=target)
    meters = Meter.objects.filter(status__in=ON_BUS, site__isnull=False)
    if meter_ids is not None:
        meters = meters.filter(pk__in=meter_ids)
    rows = [
        {"id": pk, "site_id": site_id, "serial": serial}
        for pk, site_id, serial in meters.order_by("pk").values_list("pk", "site_id", "serial")
    ]
    result.meters = len(rows)
    site_ids = {r["site_id"] for r in rows}
    sites = Site.objects.in_bulk(site_ids)
    settings_of = SiteWatchSettings.for_sites(site_ids)
    configs = {s: config_of(row) for s, row in settings_of.items()}
    offsets = {s: utc_offset_hours(site, target) for s, site in sites.items()}
    end = target + HOUR
    target_hour = epoch_hour(target)

    # Meters whose sites look back equally far share queries.
    by_window: dict[int, list[dict]] = defaultdict(list)
    for r in rows:
        by_window[configs[r["site_id"]].history_days].append(r)
    candidates: list[Alert] = []
    for days, group in sorted(by_window.items()):
        start = target - dt.timedelta(days=days)
        for i in range(0, len(group), chunk):
            part = group[i : i + chunk]
            ids = [r["id"] for r in part]
            needed: set[int] = set()
            for site_id in {r["site_id"] for r in part}:
                needed |= anomalies.hours_needed(target_hour, offsets[site_id], configs[site_id])
            data, stats = load_window(ids, start, target, hours_of_day=needed)
            zero: list[tuple[dict, anomalies.Series]] = []
            for meter in part:
                found = data.get(meter["id"])
                if not found or found[0][-1] != target_hour:
                    continue
                result.with_data += 1
                cfg = configs[meter["site_id"]]
                series = anomalies.Series(
                    found[0],
                    found[1],
                    offsets[meter["site_id"]],
                    chart=stats.get(meter["id"]),
                    chart_for=target_hour,
                )
                for finding in anomalies.detect(series, target_hour, cfg):
                    result.findings[finding.kind] += 1
                    candidates.append(candidate(meter, finding))
                if anomalies.zero_run(series, target_hour, cfg.bypass_hours):
                    zero.append((meter, series))
            if zero:
                hours = max(configs[m["site_id"]].bypass_hours for m, _ in zero)
                nominal = {m["id"]: settings_of[m["site_id"]].nominal_voltage for m, _ in zero}
                live = voltage_seen([m["id"] for m, _ in zero], end - hours * HOUR, end, nominal)
                for meter, series in zero:
                    cfg = configs[meter["site_id"]]
                    finding = anomalies.zero_with_voltage(
                        series, target_hour, cfg, voltage_present=meter["id"] in live
                    )
                    if finding is not None:
                        result.findings[finding.kind] += 1
                        candidates.append(candidate(meter, finding))

    with transaction.atomic():
        result.opened = alerting.open_alerts(candidates, now=at)
        stale = Alert.objects.filter(
            resolved_at__isnull=True, kind__in=alerting.USAGE_KINDS
        ).filter(
            Q(last_seen_at__lt=at - CLEAR_AFTER)
            | Q(last_seen_at__isnull=True, opened_at__lt=at - CLEAR_AFTER)
        )
        if meter_ids is not None:
            stale = stale.filter(meter_id__in=meter_ids)
        result.resolved = alerting.resolve_cleared(
            stale.values_list("pk", flat=True),
            now=at,
            note=f"not seen again for {int(CLEAR_AFTER.total_seconds() // 3600)} hours",
        )
    if notify:
        alerting.announce(result.opened, now=at)
    result.seconds = time.perf_counter() - began
    return result


# --- Celery tasks ----------------------------------------------------------------------------


@shared_task(acks_late=True, ignore_result=True)
def check_usage_anomalies() -> dict:
    """Hourly: every meter's last hour through the usage detectors."""
    with audit.acting_as(label="usage anomaly check", channel=AuditEvent.Channel.TASK):
        return check_usage().as_dict()


@shared_task(acks_late=True, ignore_result=True)
def check_power_quality() -> dict:
    """Hourly: voltage, frequency, power factor and phase balance of the last hour."""
    with audit.acting_as(label="power quality check", channel=AuditEvent.Channel.TASK):
        return power_quality.check(now=clock.now()).as_dict()


@shared_task(acks_late=True, ignore_result=True)
def check_outages() -> dict:
    """Every few minutes: open, follow and end site outage incidents."""
    with audit.acting_as(label="outage check", channel=AuditEvent.Channel.TASK):
        return incidents.check(now=clock.now()).as_dict()


@shared_task(acks_late=True, ignore_result=True)
def escalate_alerts() -> dict:
    """Every few minutes: alerts nobody acknowledged in time go one level up."""
    with audit.acting_as(label="alert escalation", channel=AuditEvent.Channel.TASK):
        return alerting.escalate(now=clock.now())
