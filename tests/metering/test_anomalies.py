"""The usage detectors as pure functions (metering.anomalies), with property tests."""

from __future__ import annotations

import datetime as dt
import math
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metering import anomalies as a

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
KAMPALA = 3  # UTC+3
# Monday 2 March 2026 00:00 Kampala time, as an epoch hour.
MONDAY = int((dt.datetime(2026, 3, 1, 21, tzinfo=dt.UTC) - EPOCH).total_seconds()) // 3600


def profile(local_hour: int, weekend: bool) -> float:
    """A household: little at night, a peak in the evening, more at home on weekends."""
    base = 0.1 if local_hour < 6 else 0.3
    if 18 <= local_hour <= 21:
        base = 1.2
    if weekend and 8 <= local_hour <= 17:
        base += 0.4
    return base


def series(days: int, *, noise: float = 0.05, seed: int = 1, end: int | None = None):
    rng = random.Random(seed)
    end = end if end is not None else MONDAY + days * 24
    hours = list(range(end - days * 24, end))
    kwh = []
    for h in hours:
        lh, kind = a.slot(h, KAMPALA)
        kwh.append(round(max(0.0, profile(lh, kind == a.WEEKEND) + rng.gauss(0, noise)), 3))
    return hours, kwh


def with_value(hours, kwh, target, value):
    hours, kwh = list(hours), list(kwh)
    if hours[-1] < target:
        hours.append(target)
        kwh.append(value)
    else:
        kwh[hours.index(target)] = value
    return a.Series(hours, kwh, KAMPALA)


CFG = a.Config()


# --- the plain chart ------------------------------------------------------------------------


def test_plain_chart_is_mean_plus_minus_k_sigma():
    values = [1.0, 2.0, 3.0, 4.0] * 10  # mean 2.5, population sigma sqrt(1.25)
    limits = a.control_chart(values, k=2, cfg=CFG, first=0, last=39, window="w")
    sigma = math.sqrt(1.25)
    assert limits.centre == pytest.approx(2.5)
    assert limits.spread == pytest.approx(sigma)
    assert (limits.lower, limits.upper) == pytest.approx((2.5 - 2 * sigma, 2.5 + 2 * sigma))
    assert limits.detector == a.CONTROL_CHART and limits.samples == 40
    # k is the site's choice.
    wider = a.control_chart(values, k=3, cfg=CFG, first=0, last=39, window="w")
    assert wider.upper == pytest.approx(2.5 + 3 * sigma)


def test_plain_chart_needs_a_day_of_hours():
    assert a.control_chart([1.0] * 23, k=2, cfg=CFG, first=0, last=22, window="w") is None


def test_short_history_falls_back_to_the_plain_chart():
    hours, kwh = series(10)  # ten days: less than the three weeks the baseline needs
    target = hours[-1] + 1
    s = with_value(hours, kwh, target, 5.0)
    assert a.hour_of_day_baseline(s, target, CFG) is None
    limits = a.limits_for(s, target, CFG)
    assert limits.detector == a.CONTROL_CHART
    assert limits.window == "all hours of the last 10 days"
    finding = a.check_limits(s, target, CFG)
    assert finding.kind == a.USAGE_HIGH and finding.detector == a.CONTROL_CHART
    assert "above the upper limit" in finding.explanation
    assert "plain control chart" in finding.explanation


# --- the hour-of-day baseline -------------------------------------------------------------


def test_the_baseline_uses_the_same_hour_on_the_same_kind_of_day():
    hours, kwh = series(28)
    target = hours[-1] + 1 + 19  # Monday 19:00 local
    assert a.slot(target, KAMPALA) == (19, a.WEEKDAY)
    s = a.Series(hours, kwh, KAMPALA)
    limits = a.hour_of_day_baseline(s, target, CFG)
    assert limits.detector == a.HOUR_OF_DAY
    assert limits.samples == 20  # four weeks of weekdays at 19:00
    assert limits.centre == pytest.approx(1.2, abs=0.05)
    assert limits.window == "weekdays at 19:00 local time, last 4 weeks"
    # Saturday 12:00 uses the eight weekend days only.
    saturday_noon = hours[-1] + 1 - 48 + 12
    assert a.slot(saturday_noon, KAMPALA) == (12, a.WEEKEND)
    weekend = a.hour_of_day_baseline(s, saturday_noon, CFG)
    assert weekend.samples == 6  # the Saturdays and Sundays of the three weeks before it
    assert weekend.window == "weekend days at 12:00 local time, last 3 weeks"
    assert weekend.centre == pytest.approx(0.7, abs=0.05)


def test_the_baseline_catches_what_the_plain_chart_misses():
    hours, kwh = series(28)
    target = hours[-1] + 1 + 3  # 03:00 local on a weekday: usually 0.1 kWh
    s = with_value(hours, kwh, target, 0.9)
    plain = a.plain_chart(s, target, CFG)
    assert a.outside(0.9, plain) is None  # within the day-and-night spread of all hours
    finding = a.check_limits(s, target, CFG)
    assert finding.kind == a.USAGE_HIGH and finding.detector == a.HOUR_OF_DAY
    assert finding.limits.upper < 0.9
    assert "weekdays at 03:00 local time" in finding.explanation


def test_robust_statistics_are_not_pulled_by_one_odd_evening():
    hours, kwh = series(28)
    s = a.Series(hours, kwh, KAMPALA)
    target = hours[-1] + 1 + 19
    before = a.hour_of_day_baseline(s, target, CFG)
    odd = list(kwh)
    odd[hours.index(target - 7 * 24)] = 40.0  # one evening a week ago: 40 kWh
    after = a.hour_of_day_baseline(a.Series(hours, odd, KAMPALA), target, CFG)
    assert after.upper == pytest.approx(before.upper, rel=0.2)
    plain_before = a.plain_chart(s, target, CFG)
    plain_after = a.plain_chart(a.Series(hours, odd, KAMPALA), target, CFG)
    assert plain_after.upper > 2 * plain_before.upper  # the mean and sigma are


def test_low_usage_alerts_only_against_a_positive_lower_limit():
    hours, kwh = series(28, noise=0.02)
    target = hours[-1] + 1 + 19
    finding = a.check_limits(with_value(hours, kwh, target, 0.2), target, CFG)
    assert finding.kind == a.USAGE_LOW and "below the lower limit" in finding.explanation


# --- run rule, bypass, night -----------------------------------------------------------------


def test_eight_hours_in_a_row_above_the_centre_line_is_a_run():
    hours, kwh = series(28, noise=0.03)
    end = hours[-1] + 1
    extra_hours = list(range(end, end + 10))
    extra = [profile(a.local_hour(h, KAMPALA), False) + 0.04 for h in extra_hours]
    s = a.Series(hours + extra_hours, kwh + extra, KAMPALA)
    target = extra_hours[-1]
    # Each hour is only a little above its usual: no single hour is outside the limits.
    assert a.check_limits(s, target, CFG) is None
    finding = a.run_above(s, target, CFG)
    assert finding.kind == a.USAGE_RUN and finding.detector == a.RUN_RULE
    assert finding.extra["run_hours"] == 8 and len(finding.extra["centres"]) == 8
    assert "8 hours in a row above the centre line" in finding.explanation
    # Seven hours are not enough; a configurable run length.
    assert (
        a.run_above(
            a.Series(hours + extra_hours[:7], kwh + extra[:7], KAMPALA),
            extra_hours[6],
            a.Config(run_length=8),
        )
        is None
    )
    assert (
        a.run_above(
            a.Series(hours + extra_hours[:7], kwh + extra[:7], KAMPALA),
            extra_hours[6],
            a.Config(run_length=6),
        )
        is not None
    )


def test_no_consumption_while_voltage_is_present_is_a_possible_bypass():
    hours, kwh = series(28)
    end = hours[-1] + 1 + 19  # evening hours: usually 1.2 kWh each
    gap = list(range(hours[-1] + 1, end - 2))
    gap_kwh = [profile(a.local_hour(h, KAMPALA), False) for h in gap]
    s = a.Series(hours + gap + [end - 2, end - 1, end], kwh + gap_kwh + [0.0, 0.0, 0.0], KAMPALA)
    assert a.zero_run(s, end, 3)
    finding = a.zero_with_voltage(s, end, CFG, voltage_present=True)
    assert finding.kind == a.POSSIBLE_BYPASS and finding.value == 0.0
    assert finding.extra["usual_kwh"] == pytest.approx(0.3 + 1.2 + 1.2, abs=0.2)
    assert "Possible bypass" in finding.explanation
    # Without voltage it is an outage or a fault in the supply, not a bypass.
    assert a.zero_with_voltage(s, end, CFG, voltage_present=False) is None
    # A meter that usually uses nothing at those hours is not suspicious.
    quiet = a.Series(hours, [0.0] * len(hours), KAMPALA)
    assert a.zero_with_voltage(quiet, hours[-1], CFG, voltage_present=True) is None


def test_a_night_spike():
    hours, kwh = series(28)
    target = hours[-1] + 1 + 2  # 02:00 local
    s = with_value(hours, kwh, target, 0.8)
    finding = a.night_spike(s, target, CFG)
    assert finding.kind == a.NIGHT_SPIKE and finding.detector == a.NIGHT
    assert "night hours 00:00-05:00" in finding.explanation
    found = a.detect(s, target, CFG)
    assert [f.kind for f in found] == [a.NIGHT_SPIKE]  # stands for the same hour's high usage
    # The same usage at 19:00 is no night spike.
    evening = hours[-1] + 1 + 19
    assert a.night_spike(with_value(hours, kwh, evening, 0.8), evening, CFG) is None


def test_a_normal_hour_raises_nothing():
    hours, kwh = series(28)
    for offset in (3, 12, 19):
        target = hours[-1] + 1 + offset
        value = profile(a.local_hour(target, KAMPALA), False)
        assert a.detect(with_value(hours, kwh, target, value), target, CFG) == []


# --- properties -------------------------------------------------------------------------------

constants = st.floats(min_value=0, max_value=50, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    c=constants,
    days=st.integers(min_value=1, max_value=35),
    start=st.integers(min_value=MONDAY, max_value=MONDAY + 24 * 7),
    offset=st.integers(min_value=-12, max_value=14),
    method=st.sampled_from(["baseline", "plain"]),
)
def test_a_constant_series_never_alerts(c, days, start, offset, method):
    hours = list(range(start, start + days * 24 + 1))
    s = a.Series(hours, [c] * len(hours), offset)
    cfg = a.Config(method=method)
    for target in hours[-10:]:
        assert a.detect(s, target, cfg, voltage_present=True) == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    days=st.integers(min_value=2, max_value=30),
    level=st.floats(min_value=0, max_value=20),
    factor=st.floats(min_value=0.01, max_value=100),
    method=st.sampled_from(["baseline", "plain"]),
)
def test_scaling_the_usage_scales_the_limits(seed, days, level, factor, method):
    rng = random.Random(seed)
    values = [level * rng.lognormvariate(0, 1) for _ in range(days * 24)]
    hours = list(range(MONDAY, MONDAY + len(values)))
    target = hours[-1]
    cfg = a.Config(method=method)
    base = a.limits_for(a.Series(hours, values, KAMPALA), target, cfg)
    scaled = a.limits_for(
        a.Series(hours, [v * factor for v in values], KAMPALA), target, cfg.scaled(factor)
    )
    assert base.detector == scaled.detector and base.samples == scaled.samples
    for name in ("centre", "lower", "upper", "spread"):
        assert getattr(scaled, name) == pytest.approx(
            getattr(base, name) * factor, rel=1e-6, abs=1e-9
        )


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(
        st.floats(min_value=0, max_value=100, allow_nan=False), min_size=24, max_size=200
    ),
    k=st.floats(min_value=0.5, max_value=5),
)
def test_plain_limits_surround_the_mean_and_widen_with_k(values, k):
    limits = a.control_chart(values, k=k, cfg=CFG, first=0, last=1, window="w")
    wider = a.control_chart(values, k=k + 1, cfg=CFG, first=0, last=1, window="w")
    assert limits.lower <= limits.centre <= limits.upper
    assert wider.upper >= limits.upper and wider.lower <= limits.lower
    assert min(values) - 1e-9 <= limits.centre <= max(values) + 1e-9
    # A value within the limits is never called outside.
    assert a.outside(limits.centre, limits) is None


def test_local_time_helpers():
    # 2 March 2026 00:00 in Kampala is a Monday; 7 March 12:00 a Saturday.
    assert a.slot(MONDAY, KAMPALA) == (0, a.WEEKDAY)
    assert a.slot(MONDAY + 5 * 24 + 12, KAMPALA) == (12, a.WEEKEND)
    assert a.slot(MONDAY + 6 * 24 + 23, KAMPALA) == (23, a.WEEKEND)
    assert a.slot(MONDAY + 7 * 24, KAMPALA) == (0, a.WEEKDAY)
