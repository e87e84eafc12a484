"""Unusual consumption: the detectors, as pure functions over a meter's hourly usage.

Nothing here touches the database: :mod:`metering.anomaly_tasks` loads the hourly
usage of many meters at once and calls :func:`detect` for each. Hours are whole
hours counted from the Unix epoch (``epoch_hour``), values are kWh used in the hour.
A site's local time is its UTC offset in whole hours (every zone the platform serves
is a whole number of hours from UTC and keeps no daylight-saving time).

The detectors (see ``docs/anomalies.md`` for the plain-language version):

- **Plain control chart** (:func:`control_chart`): the mean and standard deviation σ
  of every past hour in the window; limits are mean ± k·σ (k = 2 by default, as in
  the operator's reference design).
- **Hour-of-day baseline** (:func:`hour_of_day_baseline`): only the same local hour
  on the same kind of day (weekdays apart from weekends) over the window, with robust
  statistics: the median as the centre and 1.4826 × the median absolute deviation as
  the spread, so one odd evening does not move the limits. Used once the meter has
  ``baseline_weeks`` weeks of history and enough such hours; until then the plain
  chart stands in (:func:`limits_for`).
- **Run rule** (:func:`run_above`): ``run_length`` hours in a row above their centre
  line — a slow drift no single hour shows.
- **Possible bypass** (:func:`zero_with_voltage`): several hours of exactly no
  consumption while the meter sees voltage, at hours it usually uses energy.
- **Night-time spike** (:func:`night_spike`): a night hour far above the meter's
  usual night-time use.

No spread is taken smaller than ``abs_floor`` kWh or ``rel_floor`` × the centre, so a
perfectly steady meter never alerts on a rounding difference.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

HOURS_PER_WEEK = 168
MAD_TO_SIGMA = 1.4826  # the MAD of a normal distribution is 0.6745 σ
MIN_CHART_SAMPLES = 24  # a plain chart needs at least a day of hours
ZERO_KWH = 0.0005  # below this an hour's usage is "nothing" (register resolution 0.001)

CONTROL_CHART = "control_chart"
HOUR_OF_DAY = "hour_of_day_baseline"
RUN_RULE = "run_rule"
BYPASS = "zero_with_voltage"
NIGHT = "night_spike"

# Alert kinds (the values of ``metering.models.Alert.Kind``; kept as text here).
USAGE_HIGH = "usage_high"
USAGE_LOW = "usage_low"
USAGE_RUN = "usage_run"
POSSIBLE_BYPASS = "possible_bypass"
NIGHT_SPIKE = "night_spike"

WEEKDAY, WEEKEND = "weekday", "weekend"
_DAY_NAMES = {WEEKDAY: "weekdays", WEEKEND: "weekend days"}


@dataclass(frozen=True)
class Config:
    """What the detectors need from a site's settings (``SiteWatchSettings``)."""

    method: str = "baseline"  # or "plain"
    chart_k: float = 2.0
    robust_k: float = 3.0
    history_days: int = 28
    baseline_weeks: int = 3
    run_length: int = 8
    night_start: int = 0
    night_end: int = 5
    bypass_hours: int = 3
    bypass_min_usual_kwh: float = 0.05
    abs_floor: float = 0.01
    rel_floor: float = 0.05

    def scaled(self, factor: float) -> Config:
        """The same configuration for values multiplied by ``factor`` (absolute kWh scale)."""
        return Config(
            **{
                **self.__dict__,
                "abs_floor": self.abs_floor * factor,
                "bypass_min_usual_kwh": self.bypass_min_usual_kwh * factor,
            }
        )


@dataclass(frozen=True)
class Limits:
    """A centre line and control limits, with where they came from."""

    detector: str
    centre: float
    lower: float
    upper: float
    spread: float
    k: float
    samples: int
    first_hour: int  # the oldest hour the limits were drawn from
    last_hour: int  # the newest
    window: str  # in words: which hours, e.g. "weekdays at 19:00, last 4 weeks"

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Finding:
    """One detector's verdict on one hour of one meter."""

    kind: str
    detector: str
    hour: int
    value: float
    limits: Limits | None
    explanation: str
    extra: dict = field(default_factory=dict)


# --- statistics ------------------------------------------------------------------------------


def mean_sigma(values: Sequence[float]) -> tuple[float, float]:
    """The mean and the population standard deviation (two passes, for accuracy)."""
    n = len(values)
    mean = math.fsum(values) / n
    var = math.fsum((v - mean) ** 2 for v in values) / n
    return mean, math.sqrt(var)


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def mad(values: Sequence[float], centre: float | None = None) -> float:
    """The median absolute deviation from ``centre`` (default: the median)."""
    c = median(values) if centre is None else centre
    return median([abs(v - c) for v in values])


def _floor(centre: float, cfg: Config) -> float:
    return max(cfg.abs_floor, cfg.rel_floor * abs(centre))


# --- local time ------------------------------------------------------------------------------


def local_hour(hour: int, offset: int) -> int:
    """The local hour of day (0-23) of ``hour`` at a UTC offset of ``offset`` hours."""
    return (hour + offset) % 24


def day_type(hour: int, offset: int) -> str:
    """Weekday or weekend, locally (1 January 1970 was a Thursday)."""
    weekday = ((hour + offset) // 24 + 3) % 7
    return WEEKEND if weekday >= 5 else WEEKDAY


def slot(hour: int, offset: int) -> tuple[int, str]:
    return local_hour(hour, offset), day_type(hour, offset)


# --- limits ----------------------------------------------------------------------------------


def control_chart(
    values: Sequence[float], *, k: float, cfg: Config, first: int, last: int, window: str
) -> Limits | None:
    """Mean ± k·σ of ``values``; None with fewer than a day of hours."""
    if len(values) < MIN_CHART_SAMPLES:
        return None
    mean, sigma = mean_sigma(values)
    return chart_from_stats(
        ChartStats(len(values), mean, sigma, first, last), k=k, cfg=cfg, window=window
    )


@dataclass(frozen=True)
class ChartStats:
    """What the plain chart needs of a window of hours: count, mean, σ, first and last hour."""

    samples: int
    mean: float
    sigma: float
    first_hour: int
    last_hour: int


def chart_from_stats(stats: ChartStats, *, k: float, cfg: Config, window: str) -> Limits | None:
    """The plain chart from a window's count, mean and σ (computed here or by the database)."""
    if stats.samples < MIN_CHART_SAMPLES:
        return None
    mean = stats.mean
    spread = max(stats.sigma, _floor(mean, cfg))
    return Limits(
        CONTROL_CHART,
        mean,
        mean - k * spread,
        mean + k * spread,
        spread,
        k,
        stats.samples,
        stats.first_hour,
        stats.last_hour,
        window,
    )


def robust_limits(
    values: Sequence[float],
    *,
    k: float,
    cfg: Config,
    first: int,
    last: int,
    window: str,
    detector: str = HOUR_OF_DAY,
) -> Limits:
    """Median ± k × 1.4826·MAD of ``values``."""
    centre = median(values)
    spread = max(MAD_TO_SIGMA * mad(values, centre), _floor(centre, cfg))
    return Limits(
        detector,
        centre,
        centre - k * spread,
        centre + k * spread,
        spread,
        k,
        len(values),
        first,
        last,
        window,
    )


class Series:
    """A meter's hourly usage: epoch hours (ascending) and kWh (floats), at a UTC offset."""

    def __init__(
        self,
        hours: Sequence[int],
        kwh: Sequence[float],
        offset: int,
        *,
        chart: ChartStats | None = None,
        chart_for: int | None = None,
    ) -> None:
        self.hours = hours if isinstance(hours, list) else list(hours)
        self.kwh = kwh if isinstance(kwh, list) else list(kwh)
        self.offset = offset
        self.at = dict(zip(self.hours, self.kwh, strict=True))
        # The plain chart's statistics of the window before ``chart_for``, when the caller
        # computed them (the database does, so only the hours the detectors look up need
        # loading); they stand for the plain chart of the hours just before it too.
        self.chart = chart
        self.chart_for = chart_for

    def before(self, target: int, hours_back: int) -> tuple[list[int], list[float]]:
        """Hours in [target − hours_back, target) and their values."""
        lo = bisect.bisect_left(self.hours, target - hours_back)
        hi = bisect.bisect_left(self.hours, target)
        return self.hours[lo:hi], self.kwh[lo:hi]

    def same_slot(self, target: int, days: int) -> tuple[list[int], list[float]]:
        """The same local hour on the same kind of day, in the ``days`` days before ``target``
        (oldest first)."""
        kind = day_type(target, self.offset)
        at = self.at
        hours, values = [], []
        for h in range(target - days * 24, target, 24):
            v = at.get(h)
            if v is not None and day_type(h, self.offset) == kind:
                hours.append(h)
                values.append(v)
        return hours, values


def _samples_needed(weeks: int, kind: str) -> int:
    days = 5 if kind == WEEKDAY else 2
    return math.ceil(0.75 * weeks * days)  # allow a quarter of them missing


def hour_of_day_baseline(series: Series, target: int, cfg: Config) -> Limits | None:
    """Robust limits from the same local hour on the same kind of day, or None if too short.

    It needs history reaching back ``baseline_weeks`` weeks and at least three quarters
    of the matching hours in those weeks.
    """
    if not series.hours or series.hours[0] > target - cfg.baseline_weeks * HOURS_PER_WEEK:
        return None
    hour, kind = slot(target, series.offset)
    hours, values = series.same_slot(target, cfg.history_days)
    if len(values) < _samples_needed(cfg.baseline_weeks, kind):
        return None
    weeks = round((target - hours[0]) / HOURS_PER_WEEK)
    window = f"{_DAY_NAMES[kind]} at {hour:02d}:00 local time, last {weeks} weeks"
    return robust_limits(
        values, k=cfg.robust_k, cfg=cfg, first=hours[0], last=hours[-1], window=window
    )


def plain_chart(series: Series, target: int, cfg: Config) -> Limits | None:
    """The plain chart from every hour of the window before ``target``."""
    given = series.chart
    if given is not None and series.chart_for is not None and 0 <= series.chart_for - target < 24:
        days = math.ceil((series.chart_for - given.first_hour) / 24)
        window = f"all hours of the last {days} day{'s' if days != 1 else ''}"
        return chart_from_stats(given, k=cfg.chart_k, cfg=cfg, window=window)
    hours, values = series.before(target, cfg.history_days * 24)
    if not hours:
        return None
    days = math.ceil((target - hours[0]) / 24)
    window = f"all hours of the last {days} day{'s' if days != 1 else ''}"
    return control_chart(
        values, k=cfg.chart_k, cfg=cfg, first=hours[0], last=hours[-1], window=window
    )


def limits_for(series: Series, target: int, cfg: Config) -> Limits | None:
    """The site's chosen limits for ``target``: the baseline, else the plain chart."""
    if cfg.method != "plain":
        found = hour_of_day_baseline(series, target, cfg)
        if found is not None:
            return found
    return plain_chart(series, target, cfg)


# --- detectors -------------------------------------------------------------------------------


def _fmt(v: float) -> str:
    return f"{v:.3f}".rstrip("0").rstrip(".") if abs(v) < 1000 else f"{v:.0f}"


def outside(value: float, limits: Limits) -> str | None:
    """``high`` above the upper limit, ``low`` below a positive lower limit, else None."""
    if value > limits.upper:
        return "high"
    if limits.lower > 0 and value < limits.lower:
        return "low"
    return None


def check_limits(series: Series, target: int, cfg: Config) -> Finding | None:
    """Usage at ``target`` against the site's limits."""
    value = series.at.get(target)
    if value is None:
        return None
    limits = limits_for(series, target, cfg)
    if limits is None:
        return None
    side = outside(value, limits)
    if side is None:
        return None
    kind = USAGE_HIGH if side == "high" else USAGE_LOW
    name = "plain control chart" if limits.detector == CONTROL_CHART else "hour-of-day baseline"
    centre = "mean" if limits.detector == CONTROL_CHART else "median"
    bound = limits.upper if side == "high" else limits.lower
    text = (
        f"{_fmt(value)} kWh in the hour, {'above' if side == 'high' else 'below'} the "
        f"{'upper' if side == 'high' else 'lower'} limit {_fmt(bound)} kWh ({name}: {centre} "
        f"{_fmt(limits.centre)} kWh ± {_fmt(limits.k)} × {_fmt(limits.spread)} kWh, from "
        f"{limits.samples} hours: {limits.window})"
    )
    return Finding(kind, limits.detector, target, value, limits, text)


def run_above(series: Series, target: int, cfg: Config) -> Finding | None:
    """``run_length`` consecutive hours ending at ``target``, each above its centre line."""
    n = cfg.run_length
    wanted = range(target - n + 1, target + 1)
    values = [series.at.get(h) for h in wanted]
    if any(v is None for v in values):
        return None
    centres = []
    for h, v in zip(wanted, values, strict=True):
        limits = limits_for(series, h, cfg)
        if limits is None or v <= limits.centre + _floor(limits.centre, cfg):
            return None
        centres.append(limits.centre)
    last = limits_for(series, target, cfg)
    basis = "hour-of-day medians" if last.detector == HOUR_OF_DAY else "the mean"
    text = (
        f"{n} hours in a row above the centre line: {_fmt(sum(values))} kWh used where "
        f"{_fmt(sum(centres))} kWh is usual ({basis}; "
        f"last hour {_fmt(values[-1])} kWh against {_fmt(centres[-1])} kWh, {last.window})"
    )
    return Finding(
        USAGE_RUN,
        RUN_RULE,
        target,
        values[-1],
        last,
        text,
        {
            "run_hours": n,
            "run_kwh": sum(values),
            "usual_kwh": sum(centres),
            "values": values,
            "centres": centres,
        },
    )


def zero_with_voltage(
    series: Series, target: int, cfg: Config, voltage_present: bool | None
) -> Finding | None:
    """No consumption for ``bypass_hours`` hours up to ``target`` while voltage is present,
    at hours where the meter usually uses at least ``bypass_min_usual_kwh`` in all."""
    if not voltage_present:
        return None
    wanted = range(target - cfg.bypass_hours + 1, target + 1)
    values = [series.at.get(h) for h in wanted]
    if any(v is None or v > ZERO_KWH for v in values):
        return None
    usual = []
    for h in wanted:
        limits = limits_for(series, h, cfg)
        if limits is None:
            return None
        usual.append(limits.centre)
    if sum(usual) < cfg.bypass_min_usual_kwh:
        return None
    last = limits_for(series, target, cfg)
    text = (
        f"No consumption for {cfg.bypass_hours} hours while the meter sees voltage; "
        f"{_fmt(sum(usual))} kWh is usual in those hours ({last.window}). "
        "Possible bypass or a fault in the meter."
    )
    return Finding(
        POSSIBLE_BYPASS,
        BYPASS,
        target,
        0.0,
        last,
        text,
        {"hours": cfg.bypass_hours, "usual_kwh": sum(usual)},
    )


def is_night(hour: int, offset: int, cfg: Config) -> bool:
    h = local_hour(hour, offset)
    if cfg.night_start <= cfg.night_end:
        return cfg.night_start <= h < cfg.night_end
    return h >= cfg.night_start or h < cfg.night_end


def night_limits(series: Series, target: int, cfg: Config) -> Limits | None:
    """Robust limits of every night hour in the window (at least a week of nights)."""
    hours, values = series.before(target, cfg.history_days * 24)
    picked = [(h, v) for h, v in zip(hours, values, strict=True) if is_night(h, series.offset, cfg)]
    night_len = (cfg.night_end - cfg.night_start) % 24 or 24
    if len(picked) < 7 * night_len * 0.75:
        return None
    window = (
        f"night hours {cfg.night_start:02d}:00-{cfg.night_end:02d}:00 local time, "
        f"last {math.ceil((target - picked[0][0]) / 24)} days"
    )
    return robust_limits(
        [v for _, v in picked],
        k=cfg.robust_k,
        cfg=cfg,
        first=picked[0][0],
        last=picked[-1][0],
        window=window,
        detector=NIGHT,
    )


def night_spike(series: Series, target: int, cfg: Config) -> Finding | None:
    """A night hour above the meter's usual night-time use."""
    value = series.at.get(target)
    if value is None or not is_night(target, series.offset, cfg):
        return None
    limits = night_limits(series, target, cfg)
    if limits is None or value <= limits.upper:
        return None
    text = (
        f"{_fmt(value)} kWh in a night hour, above {_fmt(limits.upper)} kWh (usual night "
        f"hour {_fmt(limits.centre)} kWh ± {_fmt(limits.k)} × {_fmt(limits.spread)} kWh, "
        f"from {limits.samples} hours: {limits.window})"
    )
    return Finding(NIGHT_SPIKE, NIGHT, target, value, limits, text)


def hours_needed(target: int, offset: int, cfg: Config) -> set[int]:
    """UTC hours of day whose history the detectors look up for ``target`` (besides the
    plain chart's statistics): the run's and bypass's hours, and the night's at night."""
    back = max(cfg.run_length, cfg.bypass_hours)
    needed = {(target - j) % 24 for j in range(back)}
    if is_night(target, offset, cfg):
        needed |= {(h - offset) % 24 for h in range(24) if is_night(h - offset, offset, cfg)}
    return needed


def detect(
    series: Series, target: int, cfg: Config, *, voltage_present: bool | None = None
) -> list[Finding]:
    """Every detector on hour ``target`` of ``series``; at most one finding per kind.

    A night spike stands for the same hour's high usage (it is the sharper reason).
    """
    found = []
    night = night_spike(series, target, cfg)
    limit = check_limits(series, target, cfg)
    if night is not None:
        found.append(night)
    if limit is not None and not (night is not None and limit.kind == USAGE_HIGH):
        found.append(limit)
    for finding in (
        run_above(series, target, cfg),
        zero_with_voltage(series, target, cfg, voltage_present),
    ):
        if finding is not None:
            found.append(finding)
    return found


def zero_run(series: Series, target: int, hours: int) -> bool:
    """True when the ``hours`` hours up to ``target`` all have data and no consumption."""
    values = [series.at.get(h) for h in range(target - hours + 1, target + 1)]
    return all(v is not None and v <= ZERO_KWH for v in values)
