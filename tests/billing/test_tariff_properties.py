"""Properties of energy-only bills: how readings are cut up never changes what is owed."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from billing.tariff_terms import parse_terms
from billing.tariffs import Bill, InForce, Interval
from tests.billing.tariff_fixtures import (
    CI1,
    DC,
    SC,
    UGANDA_DOMESTIC_2025Q1,
    kes_bill,
    local,
)

HOUR = dt.timedelta(hours=1)
START = local(dt.timezone(dt.timedelta(hours=3)), 2017, 12, 1)  # Nairobi midnight
LEVIES = [
    {"name": "Fuel cost charge", "per_kwh": "2.10"},
    {"name": "REP levy", "percent": "5", "base": "energy", "vat_exempt": True},
]
ENERGY_ONLY = {
    "DC": DC,
    "SC with levies": {**SC, "levies": LEVIES},
    "CI1 without demand": {**CI1, "demand": None},
    "lifeline": {
        **UGANDA_DOMESTIC_2025Q1,
        "energy": {**UGANDA_DOMESTIC_2025Q1["energy"], "lifeline_eligible_up_to": "30"},
    },
}


def _schedule(name: str, change: bool) -> list[InForce]:
    terms = parse_terms(ENERGY_ONLY[name])
    if not change:
        return [InForce(terms, dt.date(2017, 1, 1))]
    cheaper = parse_terms({**SC, "energy": {"type": "flat", "rate": "7.25"}})
    return [
        InForce(terms, dt.date(2017, 1, 1), dt.date(2017, 12, 11)),
        InForce(cheaper, dt.date(2017, 12, 11)),
    ]


# Milli-kWh per hour of December 2017, for up to 80 of its hours.
hours = st.dictionaries(st.integers(0, 31 * 24 - 1), st.integers(0, 40_000), max_size=80)
tariffs = st.sampled_from(sorted(ENERGY_ONLY))


def _hourly(usage: dict[int, int]) -> list[Interval]:
    return [
        Interval(START + h * HOUR, START + (h + 1) * HOUR, D(milli) / 1000)
        for h, milli in sorted(usage.items())
    ]


@st.composite
def _resplit(draw, usage: dict[int, int]) -> list[Interval]:
    """The same hours cut into up to four pieces each, the energy shared out any way."""
    out = []
    for h, milli in sorted(usage.items()):
        cuts = sorted(draw(st.sets(st.integers(1, 3599), max_size=3)))
        shares = sorted(
            draw(st.lists(st.integers(0, milli), min_size=len(cuts), max_size=len(cuts)))
        )
        edges = [0, *cuts, 3600]
        amounts = [b - a for a, b in zip([0, *shares], [*shares, milli], strict=True)]
        for (a, b), amount in zip(zip(edges, edges[1:], strict=False), amounts, strict=True):
            t = START + h * HOUR
            out.append(
                Interval(t + dt.timedelta(seconds=a), t + dt.timedelta(seconds=b), D(amount) / 1000)
            )
    return draw(st.permutations(out))


def _bill(name: str, usage: list[Interval], change: bool) -> Bill:
    return kes_bill(ENERGY_ONLY[name], usage, schedule=_schedule(name, change))


@settings(max_examples=60, deadline=None)
@given(name=tariffs, usage=hours, change=st.booleans(), data=st.data())
def test_an_energy_only_bill_does_not_depend_on_how_the_readings_are_split(
    name, usage, change, data
):
    split = data.draw(_resplit(usage))

    assert _bill(name, split, change).lines == _bill(name, _hourly(usage), change).lines


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(["DC", "SC with levies", "lifeline"]), usage=hours)
def test_without_time_of_use_only_the_total_matters(name, usage):
    if not usage:
        return
    first, last = min(usage), max(usage)
    whole = [
        Interval(START + first * HOUR, START + (last + 1) * HOUR, D(sum(usage.values())) / 1000)
    ]

    assert _bill(name, whole, False).lines == _bill(name, _hourly(usage), False).lines


@settings(max_examples=80, deadline=None)
@given(name=tariffs, usage=hours, change=st.booleans())
def test_totals_are_the_sum_of_rounded_non_negative_lines(name, usage, change):
    bill = _bill(name, _hourly(usage), change)

    assert bill.total == sum(line.amount for line in bill.lines)
    assert bill.total == bill.total_before_vat + bill.vat
    assert all(line.amount >= 0 and line.quantity >= 0 for line in bill.lines)
    assert all(line.amount.as_tuple().exponent == -2 for line in bill.lines)
    assert bill.kwh == D(sum(usage.values())) / 1000
