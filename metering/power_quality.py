"""Power quality from the readings: voltage, frequency, power factor, phase balance.

Power-quality limits are not validity limits: 190 V in the evening is a real reading
of a weak supply (it is billed, and alerted on here); a physically impossible value
was flagged by VEE and takes no part (only billable readings are looked at).

:func:`assess` is pure: it judges one meter's readings of one hour against a site's
limits (``SiteWatchSettings``: 230 V ± 10 %, 50 Hz ± 1 %, power factor ≥ 0.85, phase
imbalance ≤ 10 % by default). It looks at the hour's median, so one odd reading does
not alert and a weak evening does:

- **No voltage** (``supply_lost``): every reading of the hour below half the nominal
  voltage on every phase. Many meters of a site at once are an outage incident
  (:mod:`metering.incidents`), not one alert each.
- **Voltage** (``voltage``): a phase's median outside the limits.
- **Frequency** (``frequency``): the median frequency outside the limits.
- **Power factor** (``power_factor``): the median |power factor| of the readings taken
  under load (≥ 50 W, or ≥ 0.5 A on a phase) below the minimum; at no load a power
  factor means nothing.
- **Phase imbalance** (``phase_imbalance``, three-phase meters): the largest deviation
  of a phase from the three phases' average, as a share of the average — for
  voltages, and for currents when the average current is at least 1 A — above the
  limit (the hour's median of each).

:func:`check` runs it for every meter on a bus over the last complete hour (one query
for the readings), opens and resolves alerts, and hands sites where many meters lost
voltage to the incidents.
"""

from __future__ import annotations

import datetime as dt
import logging
import statistics
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import transaction

from mcoms.core import clock
from metering import alerting, incidents
from metering.lifecycle import ON_BUS
from metering.models import Alert, Meter, Reading, SiteWatchSettings

log = logging.getLogger(__name__)

HOUR = dt.timedelta(hours=1)
DEAD_SHARE = 0.5  # below half the nominal voltage a phase has no supply
LOADED_KW = 0.05
LOADED_A = 0.5
IMBALANCE_MIN_A = 1.0

SUPPLY_LOST = "supply_lost"
VOLTAGE = "voltage"
FREQUENCY = "frequency"
POWER_FACTOR = "power_factor"
PHASE_IMBALANCE = "phase_imbalance"


@dataclass(frozen=True)
class Sample:
    """One reading's electrical values (None where the meter did not send one)."""

    voltages: tuple[float | None, ...]
    currents: tuple[float | None, ...] = ()
    power_kw: float | None = None
    power_factor: float | None = None
    frequency_hz: float | None = None


@dataclass(frozen=True)
class PowerLimits:
    nominal_voltage: float = 230.0
    voltage_low: float = 207.0
    voltage_high: float = 253.0
    frequency_low: float = 49.5
    frequency_high: float = 50.5
    min_power_factor: float = 0.85
    max_imbalance_pct: float = 10.0

    @classmethod
    def of(cls, row: SiteWatchSettings) -> PowerLimits:
        v_low, v_high = row.voltage_limits
        f_low, f_high = row.frequency_limits
        return cls(
            row.nominal_voltage,
            v_low,
            v_high,
            f_low,
            f_high,
            row.min_power_factor,
            row.max_imbalance_pct,
        )


@dataclass(frozen=True)
class PowerFinding:
    kind: str
    value: float
    explanation: str
    extra: dict = field(default_factory=dict)


def _fmt(v: float, digits: int = 1) -> str:
    return f"{v:.{digits}f}"


def imbalance_pct(values: Sequence[float]) -> float:
    """The largest deviation from the average, as a percentage of the average."""
    avg = sum(values) / len(values)
    if avg <= 0:
        return 0.0
    return max(abs(v - avg) for v in values) / avg * 100


def is_dead(sample: Sample, limits: PowerLimits) -> bool:
    present = [v for v in sample.voltages if v is not None]
    return bool(present) and all(v < DEAD_SHARE * limits.nominal_voltage for v in present)


def assess(
    samples: Sequence[Sample], limits: PowerLimits, *, phases: int = 1
) -> list[PowerFinding]:
    """What is wrong with the supply in ``samples`` (one meter, one hour); [] when fine."""
    with_voltage = [s for s in samples if any(v is not None for v in s.voltages)]
    if with_voltage and all(is_dead(s, limits) for s in with_voltage):
        worst = max(v for s in with_voltage for v in s.voltages if v is not None)
        return [
            PowerFinding(
                SUPPLY_LOST,
                worst,
                f"No voltage: at most {_fmt(worst)} V in {len(with_voltage)} readings "
                f"(below {_fmt(DEAD_SHARE * limits.nominal_voltage)} V, half of "
                f"{_fmt(limits.nominal_voltage, 0)} V)",
                {"readings": len(with_voltage)},
            )
        ]
    live = [s for s in samples if not is_dead(s, limits)]
    if not live:
        return []
    found: list[PowerFinding] = []
    n = len(live)

    # Voltage, phase by phase.
    worst_phase = None
    per_phase = []
    for index in range(phases if phases == 3 else 1):
        values = [s.voltages[index] for s in live if len(s.voltages) > index]
        values = [v for v in values if v is not None]
        if not values:
            continue
        mid = statistics.median(values)
        per_phase.append(
            {
                "phase": f"L{index + 1}",
                "median": mid,
                "min": min(values),
                "max": max(values),
                "readings": len(values),
            }
        )
        if mid < limits.voltage_low or mid > limits.voltage_high:
            gap = (
                limits.voltage_low - mid if mid < limits.voltage_low else mid - limits.voltage_high
            )
            if worst_phase is None or gap > worst_phase[0]:
                worst_phase = (gap, per_phase[-1])
    if worst_phase is not None:
        p = worst_phase[1]
        side = "below" if p["median"] < limits.voltage_low else "above"
        found.append(
            PowerFinding(
                VOLTAGE,
                p["median"],
                f"Voltage {side} limits on {p['phase']}: median {_fmt(p['median'])} V "
                f"(lowest {_fmt(p['min'])} V, highest {_fmt(p['max'])} V, {p['readings']} "
                f"readings); limits {_fmt(limits.voltage_low)}-{_fmt(limits.voltage_high)} V",
                {"phases": per_phase, "low": limits.voltage_low, "high": limits.voltage_high},
            )
        )

    freqs = [s.frequency_hz for s in live if s.frequency_hz is not None]
    if freqs:
        mid = statistics.median(freqs)
        if mid < limits.frequency_low or mid > limits.frequency_high:
            found.append(
                PowerFinding(
                    FREQUENCY,
                    mid,
                    f"Frequency off: median {_fmt(mid, 2)} Hz over {len(freqs)} readings; "
                    f"limits {_fmt(limits.frequency_low, 2)}-{_fmt(limits.frequency_high, 2)} Hz",
                    {"low": limits.frequency_low, "high": limits.frequency_high},
                )
            )

    loaded = [
        abs(s.power_factor)
        for s in live
        if s.power_factor is not None
        and (
            (s.power_kw is not None and abs(s.power_kw) >= LOADED_KW)
            or any(c is not None and c >= LOADED_A for c in s.currents)
        )
    ]
    if loaded and len(loaded) * 2 >= n:
        mid = statistics.median(loaded)
        if mid < limits.min_power_factor:
            found.append(
                PowerFinding(
                    POWER_FACTOR,
                    mid,
                    f"Low power factor: median {_fmt(mid, 2)} over {len(loaded)} readings "
                    f"under load; minimum {_fmt(limits.min_power_factor, 2)}",
                    {"minimum": limits.min_power_factor},
                )
            )

    if phases == 3:
        v_imb = [
            imbalance_pct(s.voltages[:3])
            for s in live
            if len(s.voltages) >= 3 and all(v is not None for v in s.voltages[:3])
        ]
        i_imb = [
            imbalance_pct(s.currents[:3])
            for s in live
            if len(s.currents) >= 3
            and all(c is not None for c in s.currents[:3])
            and sum(s.currents[:3]) / 3 >= IMBALANCE_MIN_A
        ]
        measured = {
            name: statistics.median(values)
            for name, values in (("voltage", v_imb), ("current", i_imb))
            if values
        }
        over = {k: v for k, v in measured.items() if v > limits.max_imbalance_pct}
        if over:
            which = max(over, key=over.get)
            found.append(
                PowerFinding(
                    PHASE_IMBALANCE,
                    over[which],
                    f"Phase imbalance: {which}s differ from their average by "
                    f"{_fmt(over[which])} % (median of the hour); limit "
                    f"{_fmt(limits.max_imbalance_pct)} %",
                    {"measured": measured, "limit": limits.max_imbalance_pct},
                )
            )
    return found


# --- the hourly check ------------------------------------------------------------------------


@dataclass
class PowerResult:
    hour: dt.datetime | None = None
    meters: int = 0
    with_readings: int = 0
    findings: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    suppressed: int = 0
    opened: list[Alert] = field(default_factory=list)
    resolved: int = 0
    incidents: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {
            "hour": self.hour.isoformat() if self.hour else None,
            "meters": self.meters,
            "with_readings": self.with_readings,
            "findings": dict(self.findings),
            "suppressed": self.suppressed,
            "opened": len(self.opened),
            "resolved": self.resolved,
            "incidents": self.incidents,
            "seconds": round(self.seconds, 2),
        }


BILLABLE = (Reading.Quality.VALID, Reading.Quality.ACCEPTED, Reading.Quality.RESET)


def load_samples(meter_ids: list[int], start: dt.datetime, end: dt.datetime):
    """Readings in (start, end] of ``meter_ids`` as samples per meter (one query)."""
    rows = (
        Reading.objects.filter(
            meter_id__in=meter_ids,
            ts__gt=start,
            ts__lte=end,
            kind=Reading.Kind.REAL,
            quality__in=BILLABLE,
        )
        .order_by()
        .values_list(
            "meter_id",
            "voltage_l1",
            "voltage_l2",
            "voltage_l3",
            "current_l1",
            "current_l2",
            "current_l3",
            "power_kw",
            "power_factor",
            "frequency_hz",
        )
    )
    out: dict[int, list[Sample]] = defaultdict(list)
    for meter_id, v1, v2, v3, i1, i2, i3, kw, pf, hz in rows.iterator(chunk_size=5000):
        out[meter_id].append(Sample((v1, v2, v3), (i1, i2, i3), kw, pf, hz))
    return out


def check(*, now: dt.datetime | None = None, notify: bool = True) -> PowerResult:
    """Judge every watched meter's last complete hour; open, keep and resolve alerts."""
    began = time.perf_counter()
    at = clock.resolve(now)
    end = at.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    start = end - HOUR
    result = PowerResult(hour=start)
    meters = {
        pk: {"id": pk, "site_id": site_id, "serial": serial, "phases": phases}
        for pk, site_id, serial, phases in Meter.objects.filter(
            status__in=ON_BUS, site__isnull=False
        ).values_list("pk", "site_id", "serial", "phases")
    }
    result.meters = len(meters)
    per_site = defaultdict(int)
    for m in meters.values():
        per_site[m["site_id"]] += 1
    settings_of = SiteWatchSettings.for_sites(per_site)
    limits_of = {s: PowerLimits.of(row) for s, row in settings_of.items()}
    samples = load_samples(list(meters), start, end)
    result.with_readings = len(samples)

    found: dict[int, list[PowerFinding]] = {}
    dead_by_site: dict[int, list[int]] = defaultdict(list)
    for meter_id, rows in samples.items():
        meter = meters[meter_id]
        findings = assess(rows, limits_of[meter["site_id"]], phases=meter["phases"])
        found[meter_id] = findings
        for f in findings:
            result.findings[f.kind] += 1
            if f.kind == SUPPLY_LOST:
                dead_by_site[meter["site_id"]].append(meter_id)

    with transaction.atomic():
        # Many meters of a site without voltage together: one incident, not many alerts.
        for site_id, dead in dead_by_site.items():
            row = settings_of[site_id]
            if incidents.is_outage(len(dead), per_site[site_id], row):
                incidents.open_or_update(
                    site_id,
                    dead,
                    now=at,
                    watched=per_site[site_id],
                    cause="no voltage",
                    notify=notify,
                )
                result.incidents += 1
        covered = incidents.covered_meters()
        candidates = []
        for meter_id, findings in found.items():
            meter = meters[meter_id]
            for f in findings:
                if f.kind in (SUPPLY_LOST, VOLTAGE) and meter_id in covered:
                    result.suppressed += 1
                    continue
                candidates.append(
                    Alert(
                        kind=f.kind,
                        site_id=meter["site_id"],
                        meter_id=meter_id,
                        message=f"Meter {meter['serial']}: {f.explanation}"[:300],
                        details={
                            "detector": f"power_quality.{f.kind}",
                            "hour": start.isoformat(),
                            "value": round(f.value, 3),
                            "explanation": f.explanation,
                            "chart": alerting.chart_path(meter_id, start),
                            **f.extra,
                        },
                    )
                )
        result.opened = alerting.open_alerts(candidates, now=at)
        incidents.link_alerts(covered, now=at)
        # Meters heard from this hour without a problem of a kind: that kind's alert clears.
        open_rows = Alert.objects.filter(
            resolved_at__isnull=True, kind__in=alerting.POWER_KINDS, meter_id__in=list(found)
        ).values_list("pk", "kind", "meter_id")
        cleared = [
            pk for pk, kind, meter_id in open_rows if kind not in {f.kind for f in found[meter_id]}
        ]
        result.resolved = alerting.resolve_cleared(
            cleared, now=at, note="within limits again over a whole hour"
        )
    if notify:
        alerting.announce(result.opened, now=at, customers=False)
    result.seconds = time.perf_counter() - began
    return result
