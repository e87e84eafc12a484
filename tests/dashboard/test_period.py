"""Choosing the period: presets as of a day, chosen dates, and what is refused."""

from __future__ import annotations

import datetime as dt

from mcoms.dashboard.kpis import Period, period_from, preset_period

D = dt.date


def test_presets():
    today = D(2026, 1, 15)
    assert preset_period("this_month", today) == Period(D(2026, 1, 1), today, "this_month")
    assert preset_period("last_month", today) == Period(
        D(2025, 12, 1), D(2025, 12, 31), "last_month"
    )
    assert preset_period("last_30", today) == Period(D(2025, 12, 17), today, "last_30")
    assert preset_period("this_year", today) == Period(D(2026, 1, 1), today, "this_year")


def test_dates_chosen_and_refused():
    today = D(2026, 4, 30)
    period, error = period_from(
        {"preset": "custom", "from": "2026-03-01", "to": "2026-04-30"}, today
    )
    assert (period.first, period.last, period.preset, error) == (D(2026, 3, 1), today, "", "")
    assert period.by == "day" and len(period.buckets()) == 61
    period, error = period_from({"from": "2025-01-01", "to": "2026-04-30"}, today)
    assert period.by == "month" and period.buckets()[0] == D(2025, 1, 1)
    assert len(period.buckets()) == 16
    for bad, why in (
        ({"from": "30/04/2026"}, "Dates must look like 2026-04-30."),
        ({"from": "2026-04-10", "to": "2026-04-01"}, "The end date is before the start date."),
        ({"from": "2020-01-01", "to": "2026-04-01"}, "Choose at most three years."),
    ):
        period, error = period_from(bad, today)
        assert error == why and period.preset == "this_month"
    assert period_from({}, today)[0] == preset_period("this_month", today)
