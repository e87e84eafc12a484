"""A sold token reaches the customer: bought once through Calin's POS, texted, pushed."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from billing.payments import services as payments
from billing.prepaid import vending
from billing.prepaid.models import TokenPurchase
from billing.prepaid.tasks import vend_waiting
from mcoms.core.audit import acting_as
from metering import services as meter_services
from metering.steering import fake_calin
from metering.steering.models import Vend
from notifications import catalog
from notifications.models import Message
from tests import factories
from tests.billing.prepaid.helpers import (
    UGANDA_DOMESTIC,
    Mode,
    package,
    prepaid_customer,
    tariff_in_force,
)

START = dt.datetime(2026, 4, 7, 7, 0, tzinfo=dt.UTC)


@pytest.fixture
def calin(settings):
    server = fake_calin.FakeCalin(pending_polls=0)
    settings.CALIN_BASE_URL = server.base_url
    settings.CALIN_COMPANY = fake_calin.COMPANY
    settings.CALIN_USER = fake_calin.USER
    settings.CALIN_PASSWORD = fake_calin.PASSWORD
    settings.CALIN_POS_USER = fake_calin.POS_USER
    settings.CALIN_POS_PASSWORD = fake_calin.POS_PASSWORD
    settings.CALIN_POS_VEND_PASSWORD = fake_calin.VEND_PASSWORD
    settings.CALIN_TIMEOUT = 2
    settings.CALIN_FIRST_POLL_SECONDS = 0
    yield server
    server.close()


def _token_customer(org, *, calin_meter: bool = True):
    tariff = tariff_in_force(org, UGANDA_DOMESTIC)
    customer = prepaid_customer(org.block_a, package(tariff, Mode.PREPAID_TOKEN))
    meter = factories.assigned_meter(org.block_a, 30, model="CALIN" if calin_meter else "DDSU666")
    with acting_as(label="test setup"):
        meter_services.meter_serve_customer(
            meter=meter, customer=customer, now=START - dt.timedelta(days=30)
        )
    catalog.install_defaults()
    return customer, meter


def _pay(org, customer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), acting_as(org.agent):
        return payments.record_cash(
            customer=customer, amount="20000", agent=org.agent, received_at=START
        )


def test_a_token_sale_buys_one_token_and_texts_it(org, calin, django_capture_on_commit_callbacks):
    customer, meter = _token_customer(org)
    payment = _pay(org, customer, django_capture_on_commit_callbacks)

    purchase = TokenPurchase.objects.get(payment=payment)
    assert purchase.status == TokenPurchase.Status.VENDED and len(purchase.token) >= 16
    vend = Vend.objects.get(purchase_ref=vending.purchase_ref(purchase))
    assert (vend.meter_id, vend.kwh, vend.token) == (meter.pk, D("27.600"), purchase.token)
    sms = Message.objects.get(template_key="token_issued", to=customer.phone)
    assert purchase.token[:4] in sms.body and "27.6 kWh" in sms.body and meter.serial in sms.body

    # Running again (a retry, the periodic sweep) buys nothing more.
    with django_capture_on_commit_callbacks(execute=True):
        assert vending.vend_purchase(purchase.pk).token == purchase.token
        assert vend_waiting.delay().get() == {"issued": 0, "waiting": 0}
    assert Vend.objects.count() == 1
    assert Message.objects.filter(template_key="token_issued").count() == 1


def test_calin_down_leaves_the_token_waiting_until_the_sweep(
    org, calin, settings, django_capture_on_commit_callbacks
):
    customer, _ = _token_customer(org)
    live = settings.CALIN_BASE_URL
    settings.CALIN_BASE_URL = "http://127.0.0.1:9/api"  # nothing listens
    payment = _pay(org, customer, django_capture_on_commit_callbacks)
    purchase = TokenPurchase.objects.get(payment=payment)
    assert purchase.status == TokenPurchase.Status.AWAITING_VEND
    assert purchase.detail.startswith("Token not yet bought")
    assert not Message.objects.filter(template_key="token_issued").exists()

    settings.CALIN_BASE_URL = live
    with django_capture_on_commit_callbacks(execute=True):
        assert vend_waiting.delay().get()["issued"] == 1
    purchase.refresh_from_db()
    assert purchase.status == TokenPurchase.Status.VENDED and purchase.token


def test_a_customer_without_a_calin_meter_waits_with_the_reason(
    org, calin, django_capture_on_commit_callbacks
):
    customer, _ = _token_customer(org, calin_meter=False)
    payment = _pay(org, customer, django_capture_on_commit_callbacks)
    purchase = TokenPurchase.objects.get(payment=payment)
    assert purchase.status == TokenPurchase.Status.AWAITING_VEND
    assert "No Calin meter" in purchase.detail
    assert not Vend.objects.exists()
