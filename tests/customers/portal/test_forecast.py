"""This month's bill forecast: usage so far plus the recent daily average, priced by the tariff."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from django.urls import reverse

from billing.models import ServicePackage
from customers import services as customer_services
from customers.portal import forecast as forecasting
from mcoms.core import clock
from mcoms.core.audit import acting_as
from tests.billing.prepaid.helpers import UGANDA_DOMESTIC, package, tariff_in_force
from tests.customers.portal.conftest import NOW, with_usage

FLAT = {
    "fixed": [{"name": "Monthly standing charge", "amount": "3000"}],
    "energy": {"type": "flat", "rate": "800"},
    "vat_percent": "18",
}
Mode = ServicePackage.PaymentMode


def on_package(org, customer, terms, mode=Mode.POSTPAID):
    pkg = package(tariff_in_force(org, terms), mode)
    with acting_as(label="test setup"):
        customer_services.customer_update(customer=customer, package=pkg)
    customer.refresh_from_db()
    return customer


def test_the_forecast_adds_the_recent_average_for_the_days_to_come(org, me):
    with_usage(me)
    f = forecasting.forecast(on_package(org, me, FLAT), now=NOW)
    assert f.days_so_far == 20 and f.days_to_come == 10
    # Whole days before today: 2 kWh on 12 days (1st-13th but the 10th) + 1+2+3+5+6+7.
    assert f.kwh_so_far == D("48")
    assert f.average_days == 6  # 14th-20th, the 17th without readings left out
    assert f.daily_average == D("4.000")  # 24 kWh / 6 days
    assert f.kwh_to_come == D("40")  # today and the 9 days after at 4 kWh
    assert f.kwh_total == D("88")
    # 88 kWh x 800 = 70,400 + 3,000 standing = 73,400; VAT 18% = 13,212; total 86,612.
    assert f.total == D("86612")
    # So far: 48 x 800 = 38,400 + 3,000 = 41,400; VAT 7,452; total 48,852.
    assert f.total_so_far == D("48852")
    assert not f.prepaid and not f.problem


def test_the_forecast_prices_blocks_and_the_lifeline(org, me):
    with_usage(me)
    f = forecasting.forecast(on_package(org, me, UGANDA_DOMESTIC), now=NOW)
    # 88 kWh: 15 at 250 (lifeline) = 3,750; 73 at 775.7 = 56,626.1 -> 56,626; standing 3,360;
    # before VAT 63,736; VAT 18% = 11,472.48 -> 11,472; total 75,208.
    assert f.total == D("75208")


def test_a_prepaid_customer_gets_a_spend_forecast(org, me, client_for):
    with_usage(me)
    on_package(org, me, FLAT, Mode.PREPAID_CREDIT)
    f = forecasting.forecast(me, now=NOW)
    assert f.prepaid and f.total == D("86612")
    body = client_for(org.customer).get(reverse("customers:portal-forecast")).content.decode()
    assert "will cost" in body and "this is not a bill" in body


def test_no_tariff_or_no_recent_readings_means_no_forecast_and_says_why(org, me):
    f = forecasting.forecast(me, now=NOW)
    assert f.bill is None and "no meter readings" in f.problem
    with_usage(me)
    f = forecasting.forecast(me, now=NOW)
    assert f.bill is None and "no tariff" in f.problem


@pytest.mark.parametrize("path", ["customers:portal", "customers:portal-forecast"])
def test_the_pages_show_the_forecast_and_the_method(org, me, client_for, path):
    with_usage(me, now=clock.now())
    on_package(org, me, FLAT)
    body = client_for(org.customer).get(reverse(path)).content.decode()
    assert "Bill forecast" in body or "a forecast" in body
    if path == "customers:portal-forecast":
        assert "How we work it out" in body and "average over the last 7 days" in body
        assert "Monthly standing charge" in body
