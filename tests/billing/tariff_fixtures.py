"""Tariff terms from shared/reference/tariff_examples.md, and helpers to build usage."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal

from billing.tariff_terms import parse_terms
from billing.tariffs import Calendar, InForce, Interval, price_period

NAIROBI = zoneinfo.ZoneInfo("Africa/Nairobi")
KAMPALA = zoneinfo.ZoneInfo("Africa/Kampala")
DEC_2017 = (dt.date(2017, 12, 1), dt.date(2018, 1, 1))
# Kenyan public holidays in December 2017: Jamhuri Day, Christmas, Boxing Day.
KENYA_HOLIDAYS_DEC_2017 = frozenset(
    {dt.date(2017, 12, 12), dt.date(2017, 12, 25), dt.date(2017, 12, 26)}
)
KENYA_VAT = "16"

KENYA_OFF_PEAK = [
    {"days": ["weekday"], "from": "22:00", "to": "06:00", "period": "off_peak"},
    # Monday's early hours follow a Sunday, so the weekday night window is written out.
    {"days": ["monday"], "from": "00:00", "to": "06:00", "period": "off_peak"},
    {"days": ["saturday", "holiday"], "from": "14:00", "to": "08:00", "period": "off_peak"},
    {"days": ["sunday"], "from": "00:00", "to": "24:00", "period": "off_peak"},
]

DC = {
    "fixed": [{"name": "Fixed charge", "amount": "150"}],
    "energy": {
        "type": "blocks",
        "blocks": [
            {"up_to": "50", "rate": "2.50"},
            {"up_to": "1500", "rate": "12.75"},
            {"rate": "20.57"},
        ],
    },
    "vat_percent": KENYA_VAT,
}
SC = {
    "fixed": [{"name": "Fixed charge", "amount": "150"}],
    "energy": {"type": "flat", "rate": "13.50"},
    "vat_percent": KENYA_VAT,
}
CI1 = {
    "fixed": [{"name": "Fixed charge", "amount": "2500"}],
    "energy": {
        "type": "tou",
        "rates": {"peak": "9.20", "off_peak": "4.60"},
        "default": "peak",
        "windows": KENYA_OFF_PEAK,
    },
    "demand": {"rate": "800", "unit": "kVA", "interval_minutes": 30},
    "vat_percent": KENYA_VAT,
}
UGANDA_DOMESTIC_2025Q1 = {
    "fixed": [{"name": "Monthly standing charge", "amount": "3360"}],
    "energy": {
        "type": "blocks",
        "blocks": [{"up_to": "15", "rate": "250", "lifeline": True}, {"rate": "775.7"}],
    },
    "vat_percent": "18",
}


def kes_bill(terms: dict, usage, *, demand=(), schedule=None, period=DEC_2017):
    """Price December 2017 in Nairobi with Kenya's holidays."""
    return price_period(
        starts=period[0],
        ends=period[1],
        currency="KES",
        schedule=schedule or [InForce(parse_terms(terms), dt.date(2017, 1, 1))],
        calendar=Calendar(NAIROBI, KENYA_HOLIDAYS_DEC_2017),
        usage=usage,
        demand=demand,
    )


def local(zone: zoneinfo.ZoneInfo, *args: int) -> dt.datetime:
    """An aware UTC instant from a local wall-clock time."""
    return dt.datetime(*args, tzinfo=zone).astimezone(dt.UTC)


def one_interval(kwh: str, zone=NAIROBI, day=(2017, 12, 5, 10)) -> list[Interval]:
    """All of ``kwh`` in one hour of a weekday."""
    start = local(zone, *day)
    return [Interval(start, start + dt.timedelta(hours=1), Decimal(kwh))]


def amounts(bill) -> list[tuple[str, Decimal]]:
    return [(line.description, line.amount) for line in bill.lines]
