"""Limits by source: many phone numbers tried from one address on the portal, codes asked
from one address, and one-time PINs sent to one account from the USSD menu."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse

from mcoms.core import clock
from mcoms.core.models import AuditEvent
from notifications.models import Message
from notifications.selfservice import pins
from tests.notifications.selfservice.conftest import PIN
from tests.notifications.selfservice.test_ussd_pin import newcomer, one_time_pins  # noqa: F401

SIGN_IN = reverse("selfservice:portal-sign-in")
CODE = reverse("selfservice:portal-sign-in-code")
HOME = reverse("customers:portal")
ATTACKER, NEIGHBOUR = "203.0.113.9", "198.51.100.4"


def test_one_address_trying_many_numbers_is_locked_out_of_the_portal(customer, settings):
    settings.PORTAL_FAILURES_PER_ADDRESS = 5
    client = Client(REMOTE_ADDR=ATTACKER)
    for n in range(4):  # numbers that have no account: nothing else counts them
        page = client.post(SIGN_IN, {"phone": f"+25677290000{n}", "pin": "4826"})
        assert "The phone number or the PIN is not right" in page.content.decode()
    locked = client.post(SIGN_IN, {"phone": "+256772900009", "pin": "4826"})
    assert "Too many tries from this connection: try again at 11:" in locked.content.decode()
    # Now even the right PIN of a real account is refused from there, and the code too...
    refused = client.post(SIGN_IN, {"phone": customer.phone, "pin": PIN})
    assert refused.status_code == 400 and "Too many tries" in refused.content.decode()
    assert client.get(HOME).status_code != 200
    asked = client.post(CODE, {"step": "phone", "phone": customer.phone})
    assert asked.status_code == 429
    # ...while the customer's own account was never locked and opens from another address.
    assert pins.locked_until(customer) is None
    assert (
        Client(REMOTE_ADDR=NEIGHBOUR)
        .post(SIGN_IN, {"phone": customer.phone, "pin": PIN})
        .status_code
        == 302
    )
    lock = AuditEvent.objects.get(object_type="security.counter")
    assert lock.object_repr == f"portal-address {ATTACKER}"


def test_codes_by_sms_asked_from_one_address_are_limited(org, templates, settings):
    settings.PORTAL_CODES_PER_ADDRESS_PER_HOUR = 3
    client = Client(REMOTE_ADDR=ATTACKER)
    numbers = [f"+25677291000{n}" for n in range(4)]
    answers = [client.post(CODE, {"step": "phone", "phone": p}).status_code for p in numbers]
    assert answers == [302, 302, 302, 429]
    page = client.post(CODE, {"step": "phone", "phone": numbers[3]}).content.decode()
    assert "Too many codes asked from this connection. Try again after 60 minutes." in page
    assert (
        Client(REMOTE_ADDR=NEIGHBOUR).post(CODE, {"step": "phone", "phone": numbers[3]}).status_code
        == 302
    )


def test_the_ussd_menu_sends_an_account_few_one_time_pins_a_day(newcomer, phone_of, settings):  # noqa: F811
    settings.USSD_ONE_TIME_PINS_PER_DAY = 2
    phone = phone_of(newcomer.phone)
    phone.dial()
    phone.send("1")
    phone.send("0")
    phone.send("0")  # a third ask the same day: nothing more is sent
    assert len(one_time_pins(newcomer)) == 2
    phone.dial()
    phone.send("1")
    assert len(one_time_pins(newcomer)) == 2
    # The last PIN sent still opens the account.
    assert pins.verify(newcomer, one_time_pins(newcomer)[-1]).ok
    # A day later the menu may send one again.
    later = clock.now() + dt.timedelta(days=1, minutes=1)
    assert pins.send_one_time_pin(newcomer, now=later, limited=True) is not None
    assert Message.objects.filter(to=newcomer.phone).count() == 3


@pytest.fixture(autouse=True)
def _kampala(monkeypatch):
    """Stop the clock at 08:00 UTC (11:00 in Kampala): lock times read 11:15."""
    stopped = dt.datetime(2026, 4, 1, 8, 0, tzinfo=dt.UTC)
    monkeypatch.setattr(clock, "now", lambda: stopped)
