"""Properties of turning money into kWh (pure: no database).

- money is never created or lost: a purchase's breakdown adds up to the amount paid;
- what is left over would not buy one more step of kWh;
- two purchases A then B in a month cost exactly what the tariff prices the month's
  kWh at (the remainders aside), and buy the same kWh as one purchase of A + B to
  within one step (rounding of one minor unit can make the single purchase one step
  better, never worse).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from billing.prepaid.pricing import price_month
from billing.prepaid.tokens import STEP, QuoteError, _without_lifeline, convert
from billing.tariff_terms import parse_terms
from billing.tariffs import Calendar, InForce, Interval
from tests.billing.prepaid.helpers import UGANDA_DOMESTIC
from tests.billing.tariff_fixtures import DC, KAMPALA, NAIROBI, SC

MARCH = dt.date(2026, 3, 1)
UGX_FLAT = {
    "fixed": [{"name": "Service", "amount": "2500"}],
    "energy": {"type": "flat", "rate": "833.3"},
    "levies": [{"name": "REA levy", "percent": "1"}],
    "vat_percent": "18",
}
TOU = {
    "fixed": [{"name": "Fixed", "amount": "150"}],
    "energy": {
        "type": "tou",
        "rates": {"peak": "9.20", "off_peak": "4.60"},
        "default": "peak",
        "windows": [{"days": ["everyday"], "from": "22:00", "to": "06:00", "period": "off_peak"}],
    },
    "levies": [{"name": "Fuel", "per_kwh": "2.10"}],
    "vat_percent": "16",
}
# Tariffs without a lifeline block: (terms, currency, zone, smallest amount in minor units).
PLAIN = {
    "kenya_dc": (DC, "KES", NAIROBI, D("0.01")),
    "kenya_sc": (SC, "KES", NAIROBI, D("0.01")),
    "kenya_tou": (TOU, "KES", NAIROBI, D("0.01")),
    "uganda_flat": (UGX_FLAT, "UGX", KAMPALA, D(1)),
}


def setup(name):
    terms, currency, zone, unit = PLAIN[name]
    return [InForce(parse_terms(terms), dt.date(2020, 1, 1))], currency, Calendar(zone), unit


def sale_time(day, minute):
    return dt.datetime(2026, 3, day, tzinfo=dt.UTC) + dt.timedelta(minutes=minute)


# In minor units: from what a first purchase usually covers up to 20 million.
firsts = st.integers(min_value=20_000, max_value=20_000_000)
amounts = st.integers(min_value=1, max_value=20_000_000)
times = st.tuples(st.integers(1, 30), st.integers(0, 1439))


def buy(money, schedule, currency, calendar, at, bought=()):
    try:
        return convert(
            money,
            currency=currency,
            schedule=schedule,
            calendar=calendar,
            at=at,
            bought=list(bought),
        )
    except QuoteError:
        return None


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(PLAIN)), firsts, amounts, times, times)
def test_a_then_b_is_priced_back_exactly_and_matches_one_purchase(name, a, b, ta, tb):
    schedule, currency, calendar, unit = setup(name)
    A, B = D(a) * unit, D(b) * unit
    at_a, at_b = sorted([sale_time(*ta), sale_time(*tb)])
    first = buy(A, schedule, currency, calendar, at_a)
    assume(first is not None)
    second = buy(B, schedule, currency, calendar, at_b, [(at_a, first.kwh)])
    assume(second is not None)
    for purchase, paid in ((first, A), (second, B)):
        assert sum(D(x["amount"]) for x in purchase.breakdown) == paid
        assert purchase.remainder >= 0 and purchase.kwh > 0
        assert purchase.kwh % STEP == 0
    # The tariff prices the month's kWh back at exactly what the two purchases spent.
    usage = [
        Interval(at_a, at_a + dt.timedelta(minutes=1), first.kwh),
        Interval(at_b, at_b + dt.timedelta(minutes=1), second.kwh),
    ]
    back = price_month(
        month=MARCH, currency=currency, schedule=schedule, calendar=calendar, usage=usage
    )
    assert back.total == first.cost + second.cost == A + B - first.remainder - second.remainder
    # One purchase of A + B buys the same kWh to within one step (for time of use, when
    # bought in the same moment: kWh cost different amounts at different times).
    if name != "kenya_tou" or at_a == at_b:
        whole = buy(A + B, schedule, currency, calendar, at_a)
        assert whole is not None
        assert first.kwh + second.kwh <= whole.kwh <= first.kwh + second.kwh + STEP


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(PLAIN)), firsts, times)
def test_the_remainder_never_buys_one_more_step(name, a, t):
    schedule, currency, calendar, unit = setup(name)
    money = D(a) * unit
    at = sale_time(*t)
    got = buy(money, schedule, currency, calendar, at)
    assume(got is not None)
    more = buy(got.cost + got.remainder, schedule, currency, calendar, at)
    assert more.kwh == got.kwh
    one_more = price_month(
        month=MARCH,
        currency=currency,
        schedule=schedule,
        calendar=calendar,
        usage=[Interval(at, at + dt.timedelta(minutes=1), got.kwh + STEP)],
    ).total
    assert one_more > money


@settings(max_examples=100, deadline=None)
@given(st.integers(3965, 2_000_000), st.integers(1, 2_000_000), times, times)
def test_uganda_lifeline_and_standing_charge_only_on_the_first_purchase(a, b, ta, tb):
    schedule = [InForce(parse_terms(UGANDA_DOMESTIC), dt.date(2020, 1, 1))]
    calendar = Calendar(KAMPALA)
    at_a, at_b = sorted([sale_time(*ta), sale_time(*tb)])
    first = buy(D(a), schedule, "UGX", calendar, at_a)
    assume(first is not None)
    second = buy(D(b), schedule, "UGX", calendar, at_b, [(at_a, first.kwh)])
    assume(second is not None)
    assert first.first_of_month and not second.first_of_month
    assert sum(D(x["amount"]) for x in first.breakdown) == a
    assert sum(D(x["amount"]) for x in second.breakdown) == b
    assert any(x["kind"] == "fixed" for x in first.breakdown)
    assert not any(x["kind"] == "fixed" for x in second.breakdown)
    assert {D(x["rate"]) for x in second.breakdown if x["kind"] == "energy"} == {D("775.7")}
    # The second purchase is what the month without lifeline prices the extra kWh at.
    plain = [_without_lifeline(f) for f in schedule]

    def month(*kwhs):
        usage = [Interval(at_a, at_a + dt.timedelta(minutes=1), k) for k in kwhs]
        return price_month(
            month=MARCH, currency="UGX", schedule=plain, calendar=calendar, usage=usage
        ).total

    assert month(first.kwh, second.kwh) - month(first.kwh) == second.cost
