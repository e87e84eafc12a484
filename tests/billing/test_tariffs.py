"""The tariff engine against the structures and conventions of tariff_examples.md."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from billing.tariff_terms import parse_terms
from billing.tariffs import (
    Calendar,
    DemandInterval,
    InForce,
    Interval,
    TariffError,
    demand_from_register,
    intervals_from_hourly,
    price_period,
    tou_period,
)
from tests.billing.tariff_fixtures import (
    CI1,
    DC,
    KAMPALA,
    KENYA_HOLIDAYS_DEC_2017,
    NAIROBI,
    SC,
    UGANDA_DOMESTIC_2025Q1,
    amounts,
    kes_bill,
    local,
    one_interval,
)

HOUR = dt.timedelta(hours=1)
HALF_HOUR = dt.timedelta(minutes=30)


# --- Kenya Power, December 2017 ------------------------------------------------------------


def test_kenya_dc_120_kwh_pays_each_kwh_at_its_blocks_rate():
    bill = kes_bill(DC, one_interval("120"))

    assert amounts(bill) == [
        ("Fixed charge", D("150.00")),
        ("Energy, first 50 kWh", D("125.00")),  # 50 × 2.50
        ("Energy, 50–1,500 kWh", D("892.50")),  # 70 × 12.75
        ("VAT 16%", D("186.80")),
    ]
    assert bill.total == D("1354.30")


def test_kenya_dc_1600_kwh_reaches_the_top_block():
    bill = kes_bill(DC, one_interval("1600"))

    assert [line.quantity for line in bill.lines if line.kind == "energy"] == [50, 1450, 100]
    assert amounts(bill)[1:4] == [
        ("Energy, first 50 kWh", D("125.00")),
        ("Energy, 50–1,500 kWh", D("18487.50")),
        ("Energy, above 1,500 kWh", D("2057.00")),
    ]
    assert bill.total_before_vat == D("20819.50")
    assert bill.vat == D("3331.12")
    assert bill.total == D("24150.62")


def test_kenya_dc_exactly_50_kwh_stays_in_the_first_block():
    bill = kes_bill(DC, one_interval("50"))

    assert [line.description for line in bill.lines if line.kind == "energy"] == [
        "Energy, first 50 kWh"
    ]


def test_kenya_sc_flat_rate_rounds_each_line_to_the_cent():
    bill = kes_bill(SC, one_interval("257.345"))

    assert amounts(bill) == [
        ("Fixed charge", D("150.00")),
        ("Energy", D("3474.16")),  # 257.345 × 13.50 = 3474.1575
        ("VAT 16%", D("579.87")),  # 16 % of 3624.16 = 579.8656
    ]
    assert bill.total == D("4204.03")


def _ci1_month() -> tuple[list[Interval], list[DemandInterval]]:
    """10 kW all month; on Tuesday 5 Dec 09:00–09:30 the load is 40 kW at power factor 0.85."""
    start = local(NAIROBI, 2017, 12, 1)
    spike = local(NAIROBI, 2017, 12, 5, 9)
    usage, demand = [], []
    for h in range(31 * 24):
        t = start + h * HOUR
        usage.append(Interval(t, t + HOUR, D(20) if t == spike else D(10)))
        for half in (t, t + HALF_HOUR):
            if half == spike:
                demand.append(DemandInterval(half, half + HALF_HOUR, D(20), D("0.85")))
            elif half == spike + HALF_HOUR:
                demand.append(DemandInterval(half, half + HALF_HOUR, D(0), D("0.95")))
            else:
                demand.append(DemandInterval(half, half + HALF_HOUR, D(5), D("0.95")))
    return usage, demand


def test_kenya_ci1_month_with_time_of_use_and_demand_charge():
    usage, demand = _ci1_month()

    bill = kes_bill(CI1, usage, demand=demand)

    # December 2017 has 398 off-peak hours in Nairobi: 21 weekdays with 8 each, the
    # morning after Jamhuri Day (12th) and Boxing Day (26th) 10, 5 Saturdays 16,
    # 5 Sundays 24, Jamhuri Day and Christmas 16, Boxing Day 18; the other 346 are peak.
    assert [(line.description, line.quantity, line.amount) for line in bill.lines] == [
        ("Fixed charge", D("1.0000"), D("2500.00")),
        ("Energy, peak", D("3470.000"), D("31924.00")),  # 346 × 10 + 10 kWh
        ("Energy, off-peak", D("3980.000"), D("18308.00")),  # 398 × 10
        (
            "Demand charge, maximum demand 47.06 kVA (interval from 5 Dec 09:00)",
            D("47.06"),  # 40 kW ÷ 0.85
            D("37648.00"),
        ),
        ("VAT 16%", D("90380.00"), D("14460.80")),
    ]
    assert bill.total == D("104840.80")


# --- Time of use in the site's calendar ----------------------------------------------------


@pytest.mark.parametrize(
    ("wall_clock", "period"),
    [
        ((2017, 12, 4, 3), "off_peak"),  # Monday 03:00, after a Sunday
        ((2017, 12, 4, 6), "peak"),  # Monday 06:00
        ((2017, 12, 5, 21, 59), "peak"),  # Tuesday 21:59
        ((2017, 12, 5, 22), "off_peak"),  # Tuesday 22:00
        ((2017, 12, 9, 5), "off_peak"),  # Saturday 05:00: Friday night continues
        ((2017, 12, 9, 7), "peak"),  # Saturday 07:00
        ((2017, 12, 9, 14), "off_peak"),  # Saturday 14:00
        ((2017, 12, 10, 12), "off_peak"),  # Sunday noon
        ((2017, 12, 12, 10), "peak"),  # Jamhuri Day (Tuesday) 10:00
        ((2017, 12, 12, 15), "off_peak"),  # Jamhuri Day 15:00
        ((2017, 12, 13, 7), "off_peak"),  # the morning after a holiday, until 08:00
        ((2017, 12, 13, 8), "peak"),
        ((2017, 12, 14, 7), "peak"),  # an ordinary Thursday 07:00
    ],
)
def test_kenya_off_peak_windows_by_weekday_saturday_sunday_and_holiday(wall_clock, period):
    terms = parse_terms(CI1)
    calendar = Calendar(NAIROBI, KENYA_HOLIDAYS_DEC_2017)

    assert tou_period(terms, dt.datetime(*wall_clock, tzinfo=NAIROBI), calendar) == period


SUNDAY_CHEAP = {
    "energy": {
        "type": "tou",
        "rates": {"normal": "800", "cheap": "400"},
        "default": "normal",
        "windows": [
            {"days": ["sunday", "holiday"], "from": "00:00", "to": "24:00", "period": "cheap"}
        ],
    }
}


def _ugx(terms: dict, usage, holidays=frozenset()):
    return price_period(
        starts=dt.date(2025, 1, 1),
        ends=dt.date(2025, 2, 1),
        currency="UGX",
        schedule=[InForce(parse_terms(terms), dt.date(2025, 1, 1))],
        calendar=Calendar(KAMPALA, frozenset(holidays)),
        usage=usage,
    )


def test_a_reading_at_2330_utc_falls_on_the_next_local_day_in_kampala():
    # Saturday 4 January 2025, 23:30 UTC is Sunday 02:30 in Kampala (UTC+3).
    start = dt.datetime(2025, 1, 4, 23, 30, tzinfo=dt.UTC)
    bill = _ugx(SUNDAY_CHEAP, [Interval(start, start + HALF_HOUR, D(2))])

    assert amounts(bill) == [("Energy, cheap", D(800))]


def test_a_public_holiday_starts_at_local_midnight():
    # Tuesday 7 January 2025 made a holiday; 21:00 UTC on the 6th is 00:00 local on the 7th.
    before = dt.datetime(2025, 1, 6, 20, tzinfo=dt.UTC)
    usage = [
        Interval(before, before + HOUR, D(1)),
        Interval(before + HOUR, before + 2 * HOUR, D(1)),
    ]
    bill = _ugx(SUNDAY_CHEAP, usage, holidays={dt.date(2025, 1, 7)})

    assert amounts(bill) == [("Energy, normal", D(800)), ("Energy, cheap", D(400))]


def test_an_interval_across_a_window_edge_is_shared_by_time():
    # Tuesday 21:30–22:30 in Nairobi: half peak, half off-peak.
    start = local(NAIROBI, 2017, 12, 5, 21, 30)
    bill = kes_bill({**CI1, "demand": None}, [Interval(start, start + HOUR, D(4))])

    assert [(line.description, line.quantity) for line in bill.lines if line.kind == "energy"] == [
        ("Energy, peak", D(2)),
        ("Energy, off-peak", D(2)),
    ]


# --- Demand --------------------------------------------------------------------------------


def test_demand_is_taken_from_the_interval_with_most_kw_not_most_kva():
    t = local(NAIROBI, 2017, 12, 5, 9)
    demand = [
        DemandInterval(t, t + HALF_HOUR, D(20), D("0.85")),  # 40 kW, 47.06 kVA
        DemandInterval(t + HALF_HOUR, t + 2 * HALF_HOUR, D(15), D("0.6")),  # 30 kW, 50 kVA
    ]
    bill = kes_bill(CI1, one_interval("35"), demand=demand)

    (line,) = [line for line in bill.lines if line.kind == "demand"]
    assert (line.quantity, line.amount) == (D("47.06"), D("37648.00"))


def test_demand_intervals_are_derived_from_the_cumulative_register():
    t = dt.datetime(2017, 12, 5, 6, tzinfo=dt.UTC)
    quarter = dt.timedelta(minutes=15)
    readings = [  # 15-minute logging; the register and the power factor at each read
        (t, D("1000.0"), D("0.9")),
        (t + quarter, D("1004.0"), D("0.8")),
        (t + 2 * quarter, D("1010.0"), D("0.9")),  # 10 kWh in 30 min = 20 kW
        (t + 3 * quarter, D("1012.5"), D("0.95")),
        (t + 4 * quarter, D("1015.0"), D("0.95")),  # 5 kWh = 10 kW
        (t + 5 * quarter, D("3.0"), None),  # register reset: no interval
        (t + 6 * quarter, D("5.0"), None),
    ]

    intervals = demand_from_register(readings, 30)

    assert [(d.start, d.kwh, d.power_factor, d.kw) for d in intervals] == [
        (t, D("10.0"), D("0.85"), D(20)),
        (t + 2 * quarter, D("5.0"), D("0.95"), D(10)),
    ]
    assert intervals[0].kva.quantize(D("0.01")) == D("23.53")


def test_kw_demand_charge_and_no_line_without_demand_data():
    terms = {**SC, "demand": {"rate": "500", "unit": "kW", "interval_minutes": 15}}
    t = local(NAIROBI, 2017, 12, 5, 9)
    demand = [DemandInterval(t, t + dt.timedelta(minutes=15), D("2.5"), D("0.5"))]

    with_demand = kes_bill(terms, one_interval("10"), demand=demand)
    without = kes_bill(terms, one_interval("10"))

    assert [(x.quantity, x.amount) for x in with_demand.lines if x.kind == "demand"] == [
        (D("10.00"), D("5000.00"))
    ]
    assert [x for x in without.lines if x.kind == "demand"] == []


# --- Lifeline blocks, levies, VAT ----------------------------------------------------------


def test_uganda_domestic_lifeline_in_whole_shillings():
    bill = _ugx(UGANDA_DOMESTIC_2025Q1, one_interval("40", KAMPALA, (2025, 1, 10, 20)))

    assert amounts(bill) == [
        ("Monthly standing charge", D(3360)),
        ("Energy, first 15 kWh (lifeline)", D(3750)),
        ("Energy, above 15 kWh", D(19393)),  # 25 × 775.7 = 19392.5
        ("VAT 18%", D(4771)),  # 18 % of 26503 = 4770.54
    ]
    assert bill.total == D(31274)


def test_lifeline_is_lost_above_the_eligibility_threshold():
    terms = {
        **UGANDA_DOMESTIC_2025Q1,
        "energy": {**UGANDA_DOMESTIC_2025Q1["energy"], "lifeline_eligible_up_to": "30"},
    }
    small = _ugx(terms, one_interval("30", KAMPALA, (2025, 1, 10, 20)))
    large = _ugx(terms, one_interval("31", KAMPALA, (2025, 1, 10, 20)))

    assert [x.rate for x in small.lines if x.kind == "energy"] == [D(250), D("775.7")]
    assert [(x.rate, x.amount) for x in large.lines if x.kind == "energy"] == [
        (D("775.7"), D(11636)),  # the first 15 kWh at the normal rate
        (D("775.7"), D(12411)),
    ]
    assert "lifeline not applicable" in large.lines[1].description


def test_per_kwh_and_percentage_levies_and_vat_on_the_total():
    terms = {
        **SC,
        "levies": [
            {"name": "Fuel cost charge", "per_kwh": "2.10"},
            {"name": "REP levy", "percent": "5", "base": "energy", "vat_exempt": True},
            {"name": "Regulator levy", "per_kwh": "0.03", "vat_exempt": True},
            {"name": "Inflation adjustment", "percent": "1.5"},
        ],
    }
    bill = kes_bill(terms, one_interval("100"))

    assert amounts(bill) == [
        ("Fixed charge", D("150.00")),
        ("Energy", D("1350.00")),
        ("Fuel cost charge", D("210.00")),
        ("REP levy", D("67.50")),  # 5 % of the energy charge
        ("Regulator levy", D("3.00")),
        ("Inflation adjustment", D("22.50")),  # 1.5 % of fixed + energy charges
        ("VAT 16%", D("277.20")),  # 16 % of 150 + 1350 + 210 + 22.50
    ]
    assert bill.total == sum(amount for _, amount in amounts(bill)) == D("2080.20")


# --- A tariff change inside the period ------------------------------------------------------

DC_2018 = {
    **DC,
    "fixed": [{"name": "Fixed charge", "amount": "200"}],
    "energy": {
        "type": "blocks",
        "blocks": [
            {"up_to": "50", "rate": "3.00"},
            {"up_to": "1500", "rate": "14.00"},
            {"rate": "22.00"},
        ],
    },
    "vat_percent": "0",
}


def _dc_change_on_11_december():
    return [
        InForce(
            parse_terms({**DC, "vat_percent": "0"}), dt.date(2017, 1, 1), dt.date(2017, 12, 11)
        ),
        InForce(parse_terms(DC_2018), dt.date(2017, 12, 11)),
    ]


def _daily(kwh: str) -> list[Interval]:
    start = local(NAIROBI, 2017, 12, 1)
    return [Interval(start + d * 24 * HOUR, start + (d + 1) * 24 * HOUR, D(kwh)) for d in range(31)]


def test_a_mid_period_change_splits_by_days_and_prorates_blocks_and_fixed_charges():
    bill = kes_bill(DC, _daily("10"), schedule=_dc_change_on_11_december())

    rows = [(x.starts.day, x.quantity, x.rate, x.amount) for x in bill.lines]
    assert rows == [
        # 1–10 December: 10 of 31 days, 100 kWh; blocks of 50 × 10/31 and 1500 × 10/31 kWh
        (1, D("0.3226"), D(150), D("48.39")),
        (1, D("16.129"), D("2.50"), D("40.32")),
        (1, D("83.871"), D("12.75"), D("1069.36")),
        # 11–31 December: 21 of 31 days, 210 kWh under the new terms
        (11, D("0.6774"), D(200), D("135.48")),
        (11, D("33.871"), D("3.00"), D("101.61")),
        (11, D("176.129"), D("14.00"), D("2465.81")),
    ]
    assert bill.lines[0].description == "Fixed charge (1 Dec–10 Dec 2017, 32.3% of the period)"
    assert bill.lines[2].description.startswith("Energy, 16.129–483.871 kWh")
    assert bill.total == D("3860.97")


def test_usage_is_priced_under_the_version_in_force_on_its_local_day():
    # 21:30 UTC on 10 December is 00:30 on the 11th in Nairobi: the new terms.
    start = dt.datetime(2017, 12, 10, 21, 30, tzinfo=dt.UTC)
    bill = kes_bill(
        DC, [Interval(start, start + HALF_HOUR, D(5))], schedule=_dc_change_on_11_december()
    )

    assert [(x.starts.day, x.rate) for x in bill.lines if x.kind == "energy"] == [(11, D("3.00"))]


def test_a_period_without_a_tariff_in_force_is_refused():
    late_start = [InForce(parse_terms(DC), dt.date(2017, 12, 5))]

    with pytest.raises(TariffError, match="2017-12-01"):
        kes_bill(DC, one_interval("1"), schedule=late_start)


# --- Input and terms -----------------------------------------------------------------------


def test_estimated_consumption_is_marked_on_each_line_it_reaches():
    start = local(NAIROBI, 2017, 12, 5, 10)
    hourly = intervals_from_hourly([(start, D(3), D(0)), (start + HOUR, D(2), D(2))])
    bill = kes_bill({**SC, "levies": [{"name": "Fuel cost charge", "per_kwh": "2"}]}, hourly)

    assert [(x.description, x.estimated) for x in bill.lines] == [
        ("Fixed charge", False),
        ("Energy", True),
        ("Fuel cost charge", True),
        ("VAT 16%", False),
    ]
    assert bill.estimated


def test_time_of_use_lines_are_marked_estimated_only_where_estimates_fell():
    peak = local(NAIROBI, 2017, 12, 5, 10)
    off_peak = local(NAIROBI, 2017, 12, 5, 23)
    hourly = intervals_from_hourly([(peak, D(3), D(0)), (off_peak, D(2), D("0.5"))])
    bill = kes_bill({**CI1, "demand": None}, hourly)

    assert [(x.description, x.estimated) for x in bill.lines if x.kind == "energy"] == [
        ("Energy, peak", False),
        ("Energy, off-peak", True),
    ]


def test_usage_outside_the_period_is_ignored():
    inside = one_interval("10")
    outside = one_interval("99", NAIROBI, (2018, 1, 1, 0))

    assert kes_bill(SC, inside + outside).lines == kes_bill(SC, inside).lines


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"energy": {"type": "flat", "rate": 13.5}}, "string"),
        ({"energy": {"type": "flat", "rate": "-1"}}, "zero or more"),
        ({"energy": {"type": "blocks", "blocks": [{"up_to": "50", "rate": "1"}]}}, "last block"),
        (
            {
                "energy": {
                    "type": "blocks",
                    "blocks": [
                        {"up_to": "50", "rate": "1"},
                        {"up_to": "20", "rate": "2"},
                        {"rate": "3"},
                    ],
                }
            },
            "rise",
        ),
        ({"energy": {"type": "tou", "rates": {"peak": "1"}, "default": "off"}}, "default"),
        ({"levies": [{"name": "X", "per_kwh": "1", "percent": "2"}]}, "exactly one"),
        ({"demand": {"rate": "1", "unit": "kVAh"}}, "unit"),
        ({"vat": "16"}, "unknown key"),
    ],
)
def test_terms_that_cannot_be_priced_are_refused(document, message):
    with pytest.raises(TariffError, match=message):
        parse_terms(document)


@pytest.mark.parametrize(
    "interval",
    [
        Interval(dt.datetime(2017, 12, 5, 10), dt.datetime(2017, 12, 5, 11), D(1)),  # naive
        Interval(local(NAIROBI, 2017, 12, 5, 10), local(NAIROBI, 2017, 12, 5, 10), D(1)),
        Interval(local(NAIROBI, 2017, 12, 5, 10), local(NAIROBI, 2017, 12, 5, 11), D(-1)),
    ],
)
def test_naive_empty_or_negative_intervals_are_refused(interval):
    with pytest.raises(TariffError):
        kes_bill(SC, [interval])
