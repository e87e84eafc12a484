"""The USSD PIN: a one-time PIN by SMS on first use, hashed storage, a lock after 3 wrong."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.auth.hashers import check_password, identify_hasher

from customers.models import ServiceRequest
from mcoms.core import clock
from notifications.models import Message
from notifications.selfservice import messages, pins
from notifications.selfservice.models import CustomerPin
from tests import factories
from tests.notifications.selfservice.conftest import PIN

pytestmark = pytest.mark.django_db


@pytest.fixture
def newcomer(org, templates):
    """An account that has never used USSD: no PIN yet."""
    return factories.customer(org.block_a, first_name="Okello", status="active")


def one_time_pins(customer) -> list[str]:
    sent = Message.objects.filter(template_key=messages.ONE_TIME_PIN, to=customer.phone)
    return [re.search(r"\b(\d{4})\b", m.body).group(1) for m in sent.order_by("id")]


def test_first_use_sends_a_one_time_pin_by_sms_then_the_customer_chooses_their_own(
    newcomer, phone_of
):
    phone = phone_of(newcomer.phone)
    phone.dial()
    assert phone.send("1") == (
        f"CON We sent a one-time PIN by SMS to {newcomer.phone}. Enter it:\n0 Send it again"
    )
    [otp] = one_time_pins(newcomer)
    message = Message.objects.get(template_key=messages.ONE_TIME_PIN)
    assert message.body.startswith(f"Your one-time USSD PIN is {otp}.")
    row = CustomerPin.objects.get(customer=newcomer)
    assert row.one_time and row.pin_hash != otp and check_password(otp, row.pin_hash)

    assert phone.send(otp) == "CON Choose a new 4-digit PIN:"
    phone.send("4826")
    assert phone.send("4826") == f"END {newcomer.account_number}: you owe nothing."
    row.refresh_from_db()
    assert not row.one_time and check_password("4826", row.pin_hash)
    assert not check_password(otp, row.pin_hash)
    # Replaying the session (as a repeated request would) sends no second SMS.
    phone._reply(phone.post("*".join(phone.answers)))
    assert len(one_time_pins(newcomer)) == 1


def test_zero_sends_another_one_time_pin_and_the_first_stops_working(newcomer, phone_of):
    phone = phone_of(newcomer.phone)
    phone.dial()
    phone.send("1")
    assert phone.send("0").startswith("CON We sent a one-time PIN by SMS")
    first, second = one_time_pins(newcomer)
    if first != second:
        assert phone.send(first).startswith("CON Wrong PIN. 2 tries left.")
    assert phone.send(second) == "CON Choose a new 4-digit PIN:"


def test_a_one_time_pin_expires_and_a_fresh_one_is_sent(newcomer, phone_of):
    pins.send_one_time_pin(newcomer, now=clock.now() - dt.timedelta(hours=25))
    [stale] = one_time_pins(newcomer)
    assert not pins.usable(newcomer)
    assert not pins.verify(newcomer, stale).ok
    phone = phone_of(newcomer.phone)
    phone.dial()
    assert phone.send("1").startswith("CON We sent a one-time PIN by SMS")
    stale, fresh = one_time_pins(newcomer)
    if stale != fresh:  # one chance in 10,000 that they are the same digits
        assert phone.send(stale).startswith("CON Wrong PIN.")
    assert phone.send(fresh) == "CON Choose a new 4-digit PIN:"


def test_a_one_time_pin_before_change_pin_asks_for_the_new_pin_once(newcomer, phone_of):
    phone = phone_of(newcomer.phone)
    phone.dial()
    phone.send("8")
    [otp] = one_time_pins(newcomer)
    phone.send(otp)
    phone.send("5173")
    assert phone.send("5173") == "END Your PIN is changed. Keep it secret."


def test_the_pin_is_stored_with_the_configured_password_hasher(settings, customer):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    settings.USSD_PIN_HASHER = "pbkdf2_sha256"
    pins.set_pin(customer, "3691")
    row = CustomerPin.objects.get(customer=customer)
    assert identify_hasher(row.pin_hash).algorithm == "pbkdf2_sha256"
    assert "3691" not in row.pin_hash
    assert pins.verify(customer, "3691").ok


def test_three_wrong_pins_lock_ussd_for_30_minutes_and_tell_the_customer(customer, phone_of):
    phone = phone_of(customer.phone)
    phone.dial()
    phone.send("1")
    assert phone.send("0000") == "CON Wrong PIN. 2 tries left.\nEnter your 4-digit PIN:"
    assert phone.send("1111") == "CON Wrong PIN. 1 tries left.\nEnter your 4-digit PIN:"
    locked = phone.send("2222")
    row = CustomerPin.objects.get(customer=customer)
    until = row.locked_until
    assert dt.timedelta(minutes=29) < until - clock.now() <= dt.timedelta(minutes=30)
    local = f"{until.astimezone(customer.site.zone):%H:%M}"
    assert locked == f"END Too many wrong PINs. USSD is locked for this account until {local}."
    sms = Message.objects.get(template_key=messages.PIN_LOCKED)
    assert sms.to == customer.phone and local in sms.body
    assert sms.body.startswith("Amina, a wrong USSD PIN was entered 3 times")

    # Even the right PIN, in a new session, meets the lock; nothing is read.
    again = phone_of(customer.phone)
    again.dial()
    assert again.send("1") == locked
    assert pins.verify(customer, PIN).locked_until == until
    # The language needs no PIN and can still be changed.
    other = phone_of(customer.phone)
    other.dial()
    assert other.send("7").startswith("CON Language:")

    # Once the lock has run out the right PIN opens the account and clears the count.
    later = until + dt.timedelta(seconds=1)
    assert pins.verify(customer, PIN, now=later).ok
    row.refresh_from_db()
    assert (row.failed, row.locked_until) == (0, None)
    assert Message.objects.filter(template_key=messages.PIN_LOCKED).count() == 1


def test_a_right_pin_resets_the_count_of_wrong_ones(customer, phone_of):
    assert pins.verify(customer, "0000").left == 2
    assert pins.verify(customer, "1111").left == 1
    assert pins.verify(customer, PIN).ok
    assert pins.verify(customer, "0000").left == 2


def test_a_replayed_wrong_pin_is_counted_once(customer, phone_of):
    phone = phone_of(customer.phone)
    phone.dial()
    phone.send("1")
    phone.send("0000")
    for _ in range(3):
        phone._reply(phone.post("*".join(phone.answers)))
    assert CustomerPin.objects.get(customer=customer).failed == 1


def test_locks_are_per_account(org, customer, phone_of):
    other = factories.customer(org.block_a, first_name="Other")
    pins.set_pin(other, "9513")
    for wrong in ("0000", "1111", "2222"):
        pins.verify(customer, wrong)
    assert pins.locked_until(customer) is not None
    assert pins.locked_until(other) is None and pins.verify(other, "9513").ok


def test_reporting_a_fault_needs_the_pin(customer, phone_of):
    phone = phone_of(customer.phone)
    phone.dial()
    assert phone.send("5") == "CON Enter your 4-digit PIN:"
    assert not ServiceRequest.objects.exists()


def test_staff_can_send_a_new_one_time_pin_from_the_admin(org, customer, client_for):
    row = CustomerPin.objects.get(customer=customer)
    client = client_for(org.admin)
    response = client.post(
        "/admin/selfservice/customerpin/",
        {"action": "send_new_one_time_pin", "_selected_action": [row.pk]},
    )
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.one_time and not check_password(PIN, row.pin_hash)
    [otp] = one_time_pins(customer)
    assert check_password(otp, row.pin_hash)
    page = client.get(f"/admin/selfservice/customerpin/{row.pk}/change/").content.decode()
    assert row.pin_hash not in page


@pytest.mark.parametrize(
    ("pin", "easy"),
    [
        ("1111", True),
        ("1234", True),
        ("9876", True),
        ("0123", True),
        ("1357", False),
        ("2580", False),
        ("1123", False),
    ],
)
def test_too_easy(pin, easy):
    assert pins.too_easy(pin) is easy
