"""Prepaid pages: the list, a customer's page and the kWh quote, by capability and site."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from billing.prepaid import credit, hooks
from mcoms.core import clock
from tests.billing.prepaid.helpers import (
    UGANDA_DOMESTIC,
    Mode,
    hourly,
    package,
    pay,
    prepaid_customer,
    tariff_in_force,
)
from tests.billing.prepaid.test_credit import metered


@pytest.fixture
def token_customer(org):
    return prepaid_customer(
        org.block_a, package(tariff_in_force(org, UGANDA_DOMESTIC), Mode.PREPAID_TOKEN)
    )


def test_the_customer_page_shows_balance_purchases_with_breakdown_and_requests(
    org, client_for, token_customer
):
    hooks.payment_received(pay(token_customer, "20000", clock.now()))
    page = client_for(org.billing).get(reverse("prepaid:customer", args=[token_customer.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Monthly standing charge" in html and "3360" in html
    assert "Energy, first 15 kWh (lifeline)" in html
    assert "27.6 kWh" in html
    assert "Awaiting token" in html


def test_credit_page_lists_draws_and_the_open_disconnect(org, client_for):
    customer, meter = metered(org, since=dt.datetime(2026, 3, 2, 6, tzinfo=dt.UTC))
    hourly(meter, dt.datetime(2026, 3, 2, 6, tzinfo=dt.UTC), ["3"])
    credit.draw(customer, now=dt.datetime(2026, 3, 2, 8, tzinfo=dt.UTC))
    html = (
        client_for(org.billing)
        .get(reverse("prepaid:customer", args=[customer.pk]))
        .content.decode()
    )
    assert "Disconnect requested" in html and "Prepaid credit ran out" in html
    assert "UGX -6372" in html  # 3 kWh x 800 + 3,000 fixed, + 18 % VAT, owed
    assert "incl. fixed 3000" in html
    listing = client_for(org.billing).get(reverse("prepaid:list")).content.decode()
    assert customer.account_number in listing and "no credit" in listing


def test_the_quote_form_says_how_many_kwh_and_refuses_bad_amounts_plainly(
    org, client_for, token_customer
):
    client = client_for(org.billing)
    url = reverse("prepaid:quote", args=[token_customer.pk])
    full = client.get(url, {"amount": "20000"})
    assert "UGX 20000 buys 27.6 kWh now" in full.content.decode()
    partial = client.get(url, {"amount": "20,000"}, HTTP_HX_REQUEST="true").content.decode()
    assert "buys 27.6 kWh" in partial and "<html" not in partial
    bad = client.get(url, {"amount": "lots"}).content.decode()
    assert "is not an amount of money" in bad
    small = client.get(url, {"amount": "2000"}).content.decode()
    assert "standing charge" in small


def test_pages_need_billing_view_and_the_customer_site_in_scope(org, client_for, token_customer):
    url = reverse("prepaid:customer", args=[token_customer.pk])
    assert client_for(org.agent).get(url).status_code == 403
    assert client_for(org.customer).get(url).status_code == 403
    assert client_for(org.outsider_agent).get(url).status_code == 403
    other = prepaid_customer(org.jinja_town, token_customer.package)
    assert (
        client_for(org.billing).get(reverse("prepaid:customer", args=[other.pk])).status_code == 404
    )
    assert (
        client_for(org.billing)
        .get(reverse("prepaid:quote", args=[other.pk]), {"amount": "5000"})
        .status_code
        == 404
    )
    listing = client_for(org.billing).get(reverse("prepaid:list")).content.decode()
    assert token_customer.account_number in listing and other.account_number not in listing
    assert (
        client_for(org.admin).get(reverse("prepaid:customer", args=[other.pk])).status_code == 200
    )
