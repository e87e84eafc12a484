"""Signing in to the customer portal with phone and PIN, or a one-time code by SMS."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client
from django.urls import reverse

from customers.models import Customer
from mcoms.core import clock
from mcoms.core.models import AuditEvent, User
from mcoms.core.roles import Role
from notifications.models import Message
from notifications.selfservice import pins, portal_auth
from notifications.selfservice.models import PortalCode, PortalSignIn
from tests import factories
from tests.notifications.selfservice.conftest import PIN, with_pin

SIGN_IN = reverse("selfservice:portal-sign-in")
CODE = reverse("selfservice:portal-sign-in-code")
CHOOSE = reverse("selfservice:portal-choose")
HOME = reverse("customers:portal")


def local_form(e164: str) -> str:
    """``+256772123456`` as people type it in Uganda: ``0772 123456``."""
    return "0" + e164.removeprefix("+256")[:3] + " " + e164[-6:]


def pin_sign_in(client: Client, phone: str, pin: str):
    return client.post(SIGN_IN, {"phone": phone, "pin": pin})


def codes_sent_to(phone: str) -> list[str]:
    bodies = Message.objects.filter(to=phone, template_key=portal_auth.CODE_TEMPLATE)
    return [re.search(r"\b(\d{6})\b", m.body).group(1) for m in bodies.order_by("created_at", "id")]


def signed_in_user(client: Client) -> User | None:
    response = client.get(HOME)
    return response.wsgi_request.user if response.status_code == 200 else None


# --- phone and PIN --------------------------------------------------------------------------


def test_the_right_pin_signs_in_and_creates_a_linked_customer_login(customer):
    client = Client()
    response = pin_sign_in(client, local_form(customer.phone), PIN)
    assert response.status_code == 302 and response["Location"] == HOME
    customer.refresh_from_db()
    user = customer.user
    assert user is not None and user.role == Role.CUSTOMER and not user.has_usable_password()
    assert signed_in_user(client) == user
    home = client.get(HOME).content.decode()
    assert customer.account_number in home
    assert "To set your PIN" not in home  # they have one
    row = PortalSignIn.objects.get()
    assert (row.customer, row.user, row.method, row.phone) == (
        customer,
        user,
        "pin",
        customer.phone,
    )
    event = AuditEvent.objects.get(object_type="selfservice.portalsignin")
    assert event.channel == AuditEvent.Channel.PORTAL and event.actor == user
    assert customer.account_number in event.note
    # The link itself is audited too (customers.services.customer_link_user).
    assert AuditEvent.objects.filter(
        object_type="customers.customer", object_id=str(customer.pk), after__user=user.pk
    ).exists()


def test_a_second_sign_in_reuses_the_login(customer):
    pin_sign_in(Client(), customer.phone, PIN)
    pin_sign_in(Client(), customer.phone, PIN)
    assert User.objects.filter(role=Role.CUSTOMER, customer=customer).count() == 1
    assert PortalSignIn.objects.count() == 2


def test_a_wrong_pin_is_refused_and_counted_like_ussd(customer):
    client = Client()
    response = pin_sign_in(client, customer.phone, "1111")
    assert response.status_code == 400
    assert "phone number or the PIN is not right" in response.content.decode()
    assert pins.pin_of(customer).failed == 1
    assert signed_in_user(client) is None
    assert not PortalSignIn.objects.exists()


def test_an_unknown_number_reads_like_a_wrong_pin(org, customer):
    known = pin_sign_in(Client(), customer.phone, "1111").content.decode()
    unknown = pin_sign_in(Client(), "+256772999999", "1111").content.decode()
    sentence = "The phone number or the PIN is not right."
    assert sentence in known and sentence in unknown


def test_three_wrong_pins_lock_the_account_even_for_the_right_pin(customer):
    client = Client()
    for _ in range(pins.MAX_TRIES):
        pin_sign_in(client, customer.phone, "1111")
    locked = pins.pin_of(customer).locked_until
    assert locked is not None
    response = pin_sign_in(client, customer.phone, PIN)
    body = response.content.decode()
    assert response.status_code == 400 and "locked until" in body
    assert "code by SMS" in body
    assert signed_in_user(client) is None
    # The owner is told by SMS, as on USSD.
    assert Message.objects.filter(to=customer.phone, template_key="selfservice_pin_locked").exists()


def test_a_customer_without_a_pin_is_pointed_to_the_code_and_to_ussd(org, templates):
    no_pin = factories.customer(org.block_a, status="active")
    response = pin_sign_in(Client(), no_pin.phone, "2580")
    body = response.content.decode()
    assert response.status_code == 400
    assert CODE in body and "choose <strong>8 PIN</strong>" in body


def test_a_staff_login_linked_to_an_account_is_not_opened_by_a_pin(org, customer):
    customer.user = org.agent
    customer.save(update_fields=["user"])
    client = Client()
    response = pin_sign_in(client, customer.phone, PIN)
    assert response.status_code == 403
    assert signed_in_user(client) is None


# --- several accounts on one phone ------------------------------------------------------------


@pytest.fixture
def family(org, templates):
    """Two accounts on one phone with their own PINs, and a third with the same PIN as the first."""
    phone = "+256772555000"
    first = with_pin(factories.customer(org.block_a, phone=phone, first_name="Aisha"), "2580")
    second = with_pin(factories.customer(org.block_a, phone=phone, first_name="Bosco"), "3691")
    third = with_pin(factories.customer(org.block_b, alt_phone=phone, first_name="Cissy"), "2580")
    return phone, first, second, third


def test_a_pin_shared_by_two_accounts_offers_the_choice_of_those(family):
    phone, first, second, third = family
    client = Client()
    response = pin_sign_in(client, phone, "2580")
    assert response.status_code == 302 and response["Location"] == CHOOSE
    page = client.get(CHOOSE).content.decode()
    assert first.account_number in page and third.account_number in page
    assert second.account_number not in page
    assert pins.pin_of(second).failed == 0  # the PIN was someone's: no wrong try counted
    client.post(CHOOSE, {"account": second.pk})  # not on offer: nothing happens
    assert signed_in_user(client) is None
    response = client.post(CHOOSE, {"account": third.pk})
    assert response["Location"] == HOME
    assert signed_in_user(client) == Customer.objects.get(pk=third.pk).user


def test_a_pin_of_nobody_on_the_phone_counts_against_every_account(family):
    phone, first, second, third = family
    pin_sign_in(Client(), phone, "1470")
    assert [pins.pin_of(c).failed for c in (first, second, third)] == [1, 1, 1]


def test_the_choice_expires(family):
    phone, first, *_ = family
    client = Client()
    pin_sign_in(client, phone, "2580")
    session = client.session
    proof = session[portal_auth.SESSION_PROOF]
    proof["at"] = (clock.now() - portal_auth.PROOF_VALID - dt.timedelta(seconds=1)).isoformat()
    session[portal_auth.SESSION_PROOF] = proof
    session.save()
    assert client.get(CHOOSE)["Location"] == SIGN_IN
    client.post(CHOOSE, {"account": first.pk})
    assert signed_in_user(client) is None


# --- a code by SMS ----------------------------------------------------------------------------


def ask_code(client: Client, phone: str):
    return client.post(CODE, {"step": "phone", "phone": phone})


def enter_code(client: Client, code: str):
    return client.post(CODE, {"step": "code", "code": code})


def test_a_code_by_sms_signs_in_once(org):
    someone = factories.customer(org.block_a, status="active")  # no PIN at all
    client = Client()
    response = ask_code(client, local_form(someone.phone))
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "we have sent it a 6-digit code" in page
    [code] = codes_sent_to(someone.phone)
    row = PortalCode.objects.get()
    assert code not in row.code_hash and row.sent
    assert Message.objects.get(template_key=portal_auth.CODE_TEMPLATE).status != "skipped"
    response = enter_code(client, code)
    assert response["Location"] == HOME
    home = client.get(HOME).content.decode()
    assert signed_in_user(client).customer == someone
    assert "To set your PIN, dial our USSD menu" in home  # no PIN yet: told how, once
    assert "To set your PIN" not in client.get(HOME).content.decode()
    assert PortalSignIn.objects.get().method == "code"
    # Used: the same code opens nothing again.
    other = Client()
    other.post(CODE, {"step": "phone", "phone": someone.phone})  # a new code, not entered
    session = other.session
    session[portal_auth.SESSION_CODE_PHONE] = someone.phone
    session.save()
    assert portal_auth.check_code(someone.phone, code).proof is None


def test_a_code_goes_even_to_an_opted_out_phone(org):
    from notifications import preferences

    someone = factories.customer(org.block_a, status="active")
    preferences.opt_out(someone.phone)
    ask_code(Client(), someone.phone)
    assert Message.objects.get(template_key=portal_auth.CODE_TEMPLATE).status == "queued"


def test_a_used_code_is_refused(org):
    someone = factories.customer(org.block_a)
    portal_auth.send_code(someone.phone)
    [code] = codes_sent_to(someone.phone)
    assert portal_auth.check_code(someone.phone, code).proof is not None
    again = portal_auth.check_code(someone.phone, code)
    assert again.proof is None and "expired or was used" in again.error


def test_an_expired_code_is_refused(org):
    someone = factories.customer(org.block_a)
    sent_at = clock.now()
    portal_auth.send_code(someone.phone, now=sent_at)
    [code] = codes_sent_to(someone.phone)
    late = portal_auth.check_code(
        someone.phone, code, now=sent_at + portal_auth.CODE_VALID + dt.timedelta(seconds=1)
    )
    assert late.proof is None and "expired" in late.error
    in_time = portal_auth.check_code(someone.phone, code, now=sent_at + dt.timedelta(minutes=9))
    assert in_time.proof is not None


def test_a_new_code_ends_the_one_before(org):
    someone = factories.customer(org.block_a)
    portal_auth.send_code(someone.phone)
    portal_auth.send_code(someone.phone)
    first, second = codes_sent_to(someone.phone)
    if first != second:
        assert portal_auth.check_code(someone.phone, first).proof is None
    assert portal_auth.check_code(someone.phone, second).proof is not None


def test_wrong_codes_are_counted_and_too_many_end_the_code(org):
    someone = factories.customer(org.block_a)
    client = Client()
    ask_code(client, someone.phone)
    [code] = codes_sent_to(someone.phone)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    response = enter_code(client, wrong)
    assert "Tries left: 4" in response.content.decode()
    for _ in range(portal_auth.CODE_TRIES - 1):
        response = enter_code(client, wrong)
    assert "Too many wrong codes" in response.content.decode()
    response = enter_code(client, code)  # the right one, too late
    assert "Too many wrong codes" in response.content.decode()
    assert signed_in_user(client) is None


def test_codes_per_phone_are_limited_alike_for_known_and_unknown_numbers(org):
    someone = factories.customer(org.block_a)
    unknown = "+256772999998"
    for phone in (someone.phone, unknown):
        client = Client()
        answers = [ask_code(client, phone) for _ in range(portal_auth.SENDS_PER_WINDOW)]
        assert all(a.status_code == 302 for a in answers)
        refused = ask_code(client, phone)
        assert refused.status_code == 200
        assert "Too many codes asked for this number" in refused.content.decode()
    assert len(codes_sent_to(someone.phone)) == portal_auth.SENDS_PER_WINDOW
    assert not Message.objects.filter(to=unknown).exists()  # nothing sent to a stranger
    assert PortalCode.objects.filter(phone=unknown, sent=False).count() == 3
    later = clock.now() + portal_auth.SEND_WINDOW + dt.timedelta(seconds=1)
    assert portal_auth.send_code(someone.phone, now=later) is None


def test_an_unknown_number_gets_the_same_page_and_no_code_opens_it(org):
    client = Client()
    response = ask_code(client, "0772 999997")
    assert response.status_code == 302
    assert "we have sent it a 6-digit code" in client.get(response["Location"]).content.decode()
    # A wrong code reads as it would for a known number, and nothing is opened.
    assert "That code is not right. Tries left: 4." in enter_code(client, "123456").content.decode()
    assert signed_in_user(client) is None


def test_a_code_for_a_shared_phone_offers_every_account_on_it(family):
    phone, first, second, third = family
    client = Client()
    ask_code(client, phone)
    [code] = codes_sent_to(phone)
    assert enter_code(client, code)["Location"] == CHOOSE
    page = client.get(CHOOSE).content.decode()
    for c in (first, second, third):
        assert c.account_number in page
    client.post(CHOOSE, {"account": second.pk})
    assert signed_in_user(client).customer == second


def test_a_bad_phone_number_is_explained(db):
    response = ask_code(Client(), "12")
    assert "Enter your phone number" in response.content.decode()


def test_the_pages_have_labelled_fields(db):
    for url in (SIGN_IN, CODE):
        body = Client().get(url).content.decode()
        for field in re.findall(r'<input[^>]+id="([^"]+)"', body):
            assert f'for="{field}"' in body, (url, field)


def test_old_codes_are_forgotten(org):
    someone = factories.customer(org.block_a)
    long_ago = clock.now() - portal_auth.CODES_KEPT - dt.timedelta(minutes=1)
    portal_auth.send_code(someone.phone, now=long_ago)
    portal_auth.send_code(someone.phone)
    assert portal_auth.purge_codes() == 1
    assert PortalCode.objects.count() == 1


def test_the_periodic_purge_forgets_old_codes_too(org):
    from notifications.selfservice import tasks

    someone = factories.customer(org.block_a)
    portal_auth.send_code(someone.phone, now=clock.now() - portal_auth.CODES_KEPT * 2)
    portal_auth.send_code(someone.phone)
    assert tasks.purge_sessions() == 1
    assert PortalCode.objects.count() == 1


def test_with_the_backend_listed_the_session_is_kept_by_it(customer, settings):
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, portal_auth.BACKEND]
    client = Client()
    pin_sign_in(client, customer.phone, PIN)
    assert client.session["_auth_user_backend"] == portal_auth.BACKEND
    assert signed_in_user(client) == Customer.objects.get(pk=customer.pk).user
    # It never signs anyone in by username and password.
    from django.contrib.auth import authenticate

    assert authenticate(username=signed_in_user(client).username, password="") is None
