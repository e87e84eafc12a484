"""Consumption charts: this month beside the last, day by day; a year beside the one before."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

from django.urls import reverse

from customers.portal import usage
from tests.customers.portal.conftest import NOW, with_usage


def test_by_day_puts_each_day_beside_the_same_day_of_last_month(me):
    with_usage(me)
    days = usage.by_day(me, now=NOW)
    assert (days.month, days.previous, days.today) == (
        dt.date(2026, 11, 1),
        dt.date(2026, 10, 1),
        dt.date(2026, 11, 21),
    )
    assert len(days.current) == len(days.before) == 31  # October's length
    assert days.current[:9] == [D("2.000")] * 9
    assert days.current[9] is None  # no readings on the 10th: a gap, not zero
    assert days.current[13:21] == [D(v) for v in ("1", "2", "3")] + [None] + [
        D(v) for v in ("5", "6", "7", "0.5")
    ]
    assert days.current[21:] == [None] * 10  # days to come, and no 31 November
    assert days.before == [D("3.000")] * 30 + [D("5.000")]
    assert days.so_far == D("48.5")
    assert days.before_same_days == D("63")
    assert days.before_total == D("95")
    table = {row[0]: row[1:] for row in days.chart.table_rows}
    assert table["10"] == ["–", "3.0"]
    assert table["21"] == ["0.5", "3.0"]
    assert table["31"] == ["–", "5.0"]
    assert [s["kind"] for s in days.chart.legend] == ["bar", "line"]
    assert len(days.chart.bars) == 19  # one bar per day with data this month


def test_by_month_puts_each_month_beside_the_same_month_a_year_earlier(me):
    with_usage(me)
    months = usage.by_month(me, now=NOW)
    assert months.months[0] == dt.date(2025, 12, 1) and months.months[-1] == dt.date(2026, 11, 1)
    assert months.current[-1] == D("48.5") and months.current[-2] == D("95")
    assert months.current[:-2] == [None] * 10
    assert months.before[0] == D("4")  # December 2024 beside December 2025
    assert months.before[-1] == D("7")  # November 2025 beside November 2026
    assert D("9") not in months.before  # November 2024 is two years back
    assert months.total == D("143.5") and months.total_before == D("11")
    table = {row[0]: row[1:] for row in months.chart.table_rows}
    assert table["Nov"] == ["48.5", "7.0"] and table["Oct"] == ["95.0", "–"]


def test_the_usage_page_shows_both_charts_with_their_numbers(org, me, client_for):
    with_usage(me)
    body = client_for(org.customer).get(reverse("customers:portal-usage")).content.decode()
    assert body.count('<figure class="chart">') == 2
    assert "Energy by day" in body and "Energy by month" in body
    assert "<svg" in body and "The numbers" in body


def test_an_account_without_a_meter_gets_empty_charts(org, me, client_for):
    body = client_for(org.customer).get(reverse("customers:portal-usage")).content.decode()
    assert "no data for this period" in body
