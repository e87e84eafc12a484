"""Paying from the menu: a request-to-pay started once the session has closed."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from billing.payments.models import PaymentRequest
from notifications.models import Message
from notifications.selfservice import messages
from tests import factories
from tests.notifications.selfservice.conftest import PIN, bill, with_pin

pytestmark = pytest.mark.django_db


@pytest.fixture
def owing(customer):
    bill(customer, "24500", issued=dt.date(2026, 11, 1), due=dt.date(2026, 11, 15))
    return customer


def test_pay_by_mobile_money(owing, phone_of, django_capture_on_commit_callbacks):
    phone = phone_of(owing.phone)
    phone.dial()
    phone.send("4")
    assert phone.send(PIN) == "CON You owe UGX 24,500. Amount to pay:"
    assert phone.send("20000.50") == (
        "CON Type an amount in whole UGX, e.g. 5000.\nYou owe UGX 24,500. Amount to pay:"
    )
    assert phone.send("100") == (
        "CON Type UGX 500 to 5,000,000.\nYou owe UGX 24,500. Amount to pay:"
    )
    assert phone.send("20,000") == (
        f"CON Pay UGX 20,000 by mobile money from {owing.phone}?\n1 Yes\n2 No"
    )
    with django_capture_on_commit_callbacks(execute=True):
        reply = phone.send("1")
    assert reply == (
        "END Thank you. A mobile money prompt will follow: approve it with your mobile money PIN."
    )
    request = PaymentRequest.objects.get(customer=owing)
    assert (request.amount, request.phone, request.channel, request.provider) == (
        D("20000"),
        owing.phone,
        "ussd",
        "mtn",
    )
    # Asking again (a repeated request) starts nothing more.
    with django_capture_on_commit_callbacks(execute=True):
        phone._reply(phone.post("*".join(phone.answers)))
    assert PaymentRequest.objects.count() == 1


def test_cancelled_payment_asks_nothing(owing, phone_of, django_capture_on_commit_callbacks):
    phone = phone_of(owing.phone)
    phone.dial()
    phone.send("4")
    phone.send(PIN)
    phone.send("5000")
    with django_capture_on_commit_callbacks(execute=True):
        assert phone.send("2") == "END Cancelled."
    assert not PaymentRequest.objects.exists()


def test_a_refused_request_is_told_by_sms(
    org, settings, templates, phone_of, django_capture_on_commit_callbacks
):
    # A Kenyan number falls to the default provider, here one that cannot be asked online.
    settings.PAYMENT_DEFAULT_PROVIDER = "bank"
    kenyan = factories.customer(org.block_a, first_name="Wanjiru", phone="+254712345678")
    with_pin(kenyan)
    phone = phone_of(kenyan.phone)
    phone.dial()
    phone.send("4")
    phone.send(PIN)
    phone.send("5000")
    with django_capture_on_commit_callbacks(execute=True):
        assert phone.send("1").startswith("END Thank you.")
    [sms] = Message.objects.filter(template_key=messages.PAYMENT_FAILED)
    assert sms.to == kenyan.phone
    assert sms.body.startswith("Wanjiru, your mobile money payment of UGX 5,000 could not start.")
