"""The customer portal's test data: an account with a year and more of daily usage.

``NOW`` is 21 November 2026, 10:00 in Kampala. The meter has served the account since
June 2024. November so far: 2 kWh a day on the 1st to the 13th (none on the 10th),
then 1, 2, 3, –, 5, 6, 7 kWh (14th–20th; none on the 17th), 0.5 kWh today. October:
3 kWh a day, 5 kWh on the 31st. One day each in November 2025 (7 kWh), December
2024 (4 kWh) and November 2024 (9 kWh, two years back: on no chart).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from customers import services as customer_services
from mcoms.core.audit import acting_as
from metering import services as meter_services
from metering.models import DailyUsage
from tests import factories

NOW = dt.datetime(2026, 11, 21, 7, 0, tzinfo=dt.UTC)  # 10:00 in Kampala
NOVEMBER = {
    **{n: "2" for n in range(1, 14) if n != 10},
    14: "1", 15: "2", 16: "3", 18: "5", 19: "6", 20: "7", 21: "0.5",
}  # fmt: skip


def usage_rows(meter) -> list[DailyUsage]:
    days = {dt.date(2026, 11, n): kwh for n, kwh in NOVEMBER.items()}
    days |= {dt.date(2026, 10, n): ("5" if n == 31 else "3") for n in range(1, 32)}
    days |= {
        dt.date(2025, 11, 15): "7",
        dt.date(2024, 12, 5): "4",
        dt.date(2024, 11, 30): "9",
    }
    return [DailyUsage(meter=meter, day=d, kwh=D(k), intervals=96) for d, k in days.items()]


def with_usage(customer, *, now: dt.datetime = NOW):
    """The usage above; with ``now`` given, every day moved so that ``NOW`` falls on it.

    Pages read the wall clock: their tests pass the real time so the account has
    recent readings whatever the day the tests run.
    """
    meter = factories.assigned_meter(customer.site, 21)
    with acting_as(label="test setup"):
        meter_services.meter_serve_customer(
            meter=meter, customer=customer, now=dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
        )
    rows = usage_rows(meter)
    shift = now.date() - NOW.date()
    for row in rows:
        row.day += shift
    DailyUsage.objects.bulk_create(rows)
    return meter


@pytest.fixture
def me(org):
    """The ``customer`` user's own account, on Block A."""
    customer = factories.customer(
        org.block_a, first_name="Winnie", last_name="Auma", status="active", location="Plot 4"
    )
    with acting_as(label="test setup"):
        customer_services.customer_link_user(customer=customer, user=org.customer)
    return customer


@pytest.fixture
def neighbour(org):
    return factories.customer(org.block_a, first_name="Neighbour", status="active")
