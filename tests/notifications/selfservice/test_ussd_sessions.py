"""Whole USSD sessions through the real endpoint, posted with Africa's Talking's fields."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal as D

import pytest

from billing.models import ServicePackage
from customers.models import Customer, ServiceRequest
from notifications.selfservice.models import Interest, UssdSession
from tests import factories
from tests.notifications.selfservice.conftest import (
    PIN,
    bill,
    local_today,
    months_before,
    usage,
    with_pin,
)

pytestmark = pytest.mark.django_db

MAIN_EN = (
    "CON {account}\n1 Balance\n2 Last bill\n3 Usage\n4 Pay\n5 Report fault\n"
    "6 Change package\n7 Language\n8 Change PIN"
)


def test_first_screen_is_the_main_menu_of_the_callers_account(customer, phone_of):
    phone = phone_of(customer.phone)
    assert phone.dial() == MAIN_EN.format(account=customer.account_number)
    # Screens that only read store nothing; the session is stored once it has
    # something to remember (here, that the PIN was right).
    assert phone.send("1") == "CON Enter your 4-digit PIN:"
    assert not UssdSession.objects.exists()
    phone.send(PIN)
    session = UssdSession.objects.get(session_id=phone.session_id)
    assert (session.phone, session.service_code, session.network_code) == (
        customer.phone,
        "*384*2026#",
        "63902",
    )
    assert session.memo == {"pin:1": {"ok": True, "one_time": False, "left": 0}}


def test_balance_and_amount_due_after_the_pin(customer, phone_of):
    bill(customer, "24500", issued=dt.date(2026, 10, 1), due=dt.date(2026, 10, 15))
    bill(customer, "18000", issued=dt.date(2026, 11, 1), due=dt.date(2026, 11, 15))
    phone = phone_of(customer.phone)
    phone.dial()
    assert phone.send("1") == "CON Enter your 4-digit PIN:"
    assert phone.send(PIN) == (
        f"END {customer.account_number}: you owe UGX 42,500. Pay UGX 42,500 by 15 Oct 2026."
    )


def test_credit_is_shown_as_credit(customer, phone_of):
    from billing import ledger
    from mcoms.core.audit import acting_as

    with acting_as(label="test"):
        ledger.payment_post(
            customer=customer,
            date=dt.date(2026, 11, 2),
            amount=D("5000"),
            source=ledger.Source(channel="bank"),
            reference="BANK-1",
        )
    phone = phone_of(customer.phone)
    phone.dial()
    phone.send("1")
    assert phone.send(PIN) == f"END {customer.account_number}: you have UGX 5,000 credit."


def test_last_bill(customer, phone_of):
    bill(customer, "18000", issued=dt.date(2026, 10, 1), due=dt.date(2026, 10, 15))
    latest = bill(customer, "24500", issued=dt.date(2026, 11, 1), due=dt.date(2026, 11, 15))
    phone = phone_of(customer.phone)
    phone.dial()
    phone.send("2")
    assert phone.send(PIN) == (
        f"END Bill {latest.number} (Oct 2026): 120.5 kWh, UGX 24,500. Amount due UGX 24,500."
        " Due 15 Nov 2026."
    )


def test_no_bill_yet(customer, phone_of):
    phone = phone_of(customer.phone)
    phone.dial()
    phone.send("2")
    assert phone.send(PIN) == f"END {customer.account_number}: no bill yet."


@pytest.fixture
def used(customer):
    today = local_today(customer)
    this_month = today.replace(day=1)
    days = {today: "1.5"}
    for n, kwh in ((1, "50.25"), (2, "40"), (3, "30")):
        days[months_before(this_month, n).replace(day=10)] = kwh
    days[months_before(this_month, 4).replace(day=10)] = "99"  # too old to show
    usage(customer, days)
    return this_month


def test_usage_today_this_month_and_the_last_three_months(customer, phone_of, used):
    phone = phone_of(customer.phone)
    phone.dial()
    phone.send("3")
    assert phone.send(PIN) == "CON Usage:\n1 Today\n2 This month\n3 Last 3 months\n0 Back"
    assert phone.send("1") == "END Used today: 1.5 kWh."

    phone = phone_of(customer.phone)
    phone.dial()
    phone.send("3")
    phone.send(PIN)
    assert phone.send("2") == f"END Used this month ({used:%b %Y}): 1.5 kWh."

    phone = phone_of(customer.phone)
    phone.dial()
    phone.send("3")
    phone.send(PIN)
    m3, m2, m1 = (months_before(used, n) for n in (3, 2, 1))
    assert phone.send("3") == (
        f"END Used in the last 3 months:\n{m3:%b %Y}: 30.0 kWh\n"
        f"{m2:%b %Y}: 40.0 kWh\n{m1:%b %Y}: 50.3 kWh"
    )


def test_the_pin_is_asked_once_per_session(customer, phone_of, used):
    phone = phone_of(customer.phone)
    phone.dial()
    assert phone.send("3") == "CON Enter your 4-digit PIN:"
    assert phone.send(PIN).startswith("CON Usage:")
    assert phone.send("0") == MAIN_EN.format(account=customer.account_number)
    # Back in the main menu, the balance needs no second PIN.
    assert phone.send("1") == f"END {customer.account_number}: you owe nothing."


def test_invalid_input_re_prompts_with_a_hint(customer, phone_of):
    phone = phone_of(customer.phone)
    phone.dial()
    hinted = phone.send("9")
    assert (
        hinted
        == "CON Choose a number from the list.\n"
        + MAIN_EN.format(account=customer.account_number)[4:]
    )
    assert phone.send("") == hinted
    assert phone.send("1") == "CON Enter your 4-digit PIN:"
    assert phone.send("12") == "CON A PIN is 4 digits.\nEnter your 4-digit PIN:"
    assert phone.send(PIN).startswith("END ")


def test_report_a_fault_opens_a_service_request(customer, phone_of):
    phone = phone_of(customer.phone)
    phone.dial()
    phone.send("5")
    assert phone.send(PIN).startswith("CON Report:\n1 No power\n")
    reply = phone.send("1")
    request = ServiceRequest.objects.get(customer=customer)
    assert reply == (f"END Thank you. Request #{request.pk} is open; our agent will contact you.")
    assert (request.kind, request.channel, request.status) == ("fault", "ussd", "open")
    assert request.description == "Reported by USSD: No power"
    # The audit trail names the channel and the number.
    event = request.events.get()
    assert event.by_label == f"ussd {customer.phone}"


def test_other_complaint_takes_the_customers_words(customer, phone_of):
    phone = phone_of(customer.phone)
    phone.dial()
    phone.send("5")
    phone.send(PIN)
    assert phone.send("5") == "CON Describe the problem briefly:"
    assert phone.send("ok") == "CON Type 3 to 120 characters.\nDescribe the problem briefly:"
    phone.send("Agent was rude at the office")
    request = ServiceRequest.objects.get(customer=customer)
    assert request.kind == "complaint"
    assert request.description == "Reported by USSD: Agent was rude at the office"


def test_a_repeated_request_does_not_open_a_second_service_request(customer, phone_of):
    phone = phone_of(customer.phone)
    phone.dial()
    phone.send("5")
    phone.send(PIN)
    first = phone.send("2")
    again = phone._reply(phone.post("*".join(phone.answers)))
    assert again == first
    assert ServiceRequest.objects.filter(customer=customer).count() == 1


@pytest.fixture
def packages(db):
    return [
        ServicePackage.objects.create(code=code, name=name, load_limit_w=watts)
        for code, name, watts in (
            ("home", "Home 200 W", 200),
            ("shop", "Shop 500 W", 500),
            ("mill", "Maize mill 3 kW", 3000),
        )
    ]


def test_package_change_request(customer, phone_of, packages):
    Customer.objects.filter(pk=customer.pk).update(package=packages[0])
    phone = phone_of(customer.phone)
    phone.dial()
    phone.send("6")
    assert phone.send(PIN) == "CON Change package to:\n1 Shop 500 W\n2 Maize mill 3 kW\n0 Back"
    assert phone.send("2") == "CON Ask to change to Maize mill 3 kW?\n1 Yes\n2 No"
    reply = phone.send("1")
    request = ServiceRequest.objects.get(customer=customer)
    assert reply == (f"END Thank you. Request #{request.pk} to change to Maize mill 3 kW is open.")
    assert (request.kind, request.requested_package, request.channel) == (
        "package_change",
        packages[2],
        "ussd",
    )


def test_package_change_can_be_cancelled(customer, phone_of, packages):
    phone = phone_of(customer.phone)
    phone.dial()
    phone.send("6")
    phone.send(PIN)
    phone.send("1")
    assert phone.send("2") == "END Cancelled."
    assert not ServiceRequest.objects.exists()


def test_language_change_needs_no_pin_and_every_later_screen_follows_it(customer, phone_of):
    phone = phone_of(customer.phone)
    phone.dial()
    assert phone.send("7") == "CON Language:\n1 English\n2 Kiswahili\n3 Luganda\n0 Back"
    assert phone.send("2") == "END Lugha yako sasa ni Kiswahili."
    customer.refresh_from_db()
    assert customer.language == "sw"

    phone = phone_of(customer.phone)
    assert phone.dial().startswith(f"CON {customer.account_number}\n1 Salio\n2 Bili ya mwisho")
    assert phone.send("1") == "CON Weka PIN yako ya tarakimu 4:"
    assert phone.send(PIN) == f"END {customer.account_number}: huna deni."


def test_change_pin(customer, phone_of):
    phone = phone_of(customer.phone)
    phone.dial()
    phone.send("8")
    assert phone.send(PIN) == "CON Choose a new 4-digit PIN:"
    assert phone.send("1234") == (
        "CON Too easy to guess: no 1111 or 1234.\nChoose a new 4-digit PIN:"
    )
    assert phone.send("7351") == "CON Enter the new PIN again:"
    assert phone.send("7352") == "CON The PINs did not match.\nChoose a new 4-digit PIN:"
    phone.send("7351")
    assert phone.send("7351") == "END Your PIN is changed. Keep it secret."

    old = phone_of(customer.phone)
    old.dial()
    old.send("1")
    assert old.send(PIN) == "CON Wrong PIN. 2 tries left.\nEnter your 4-digit PIN:"
    assert old.send("7351").startswith("END ")


def test_a_number_with_several_accounts_chooses_one_first(org, customer, phone_of):
    shop = factories.customer(
        org.block_b, first_name="Duka", phone="+256701000111", alt_phone=customer.phone
    )
    with_pin(shop, "8642")
    bill(shop, "7000", issued=dt.date(2026, 11, 1))
    phone = phone_of(customer.phone)
    assert phone.dial() == (
        f"CON Choose account:\n1 {customer.account_number} Amina\n2 {shop.account_number} Duka"
    )
    assert phone.send("3").startswith("CON Choose a number from the list.\nChoose account:")
    assert phone.send("2") == MAIN_EN.format(account=shop.account_number)
    phone.send("1")
    # Each account has its own PIN.
    assert phone.send(PIN).startswith("CON Wrong PIN.")
    assert phone.send("8642") == f"END {shop.account_number}: you owe UGX 7,000."


def test_closed_accounts_are_not_offered(org, customer, phone_of):
    other = factories.customer(org.block_a, phone=customer.phone)
    Customer.objects.filter(pk=other.pk).update(status=Customer.Status.CLOSED)
    phone = phone_of(customer.phone)
    assert phone.dial() == MAIN_EN.format(account=customer.account_number)


def test_an_unknown_number_can_register_interest(org, phone_of, client_for, templates):
    phone = phone_of("+256772999888")
    assert phone.dial() == (
        "CON Welcome. This number has no account.\n1 Register interest\n"
        "2 English\n3 Kiswahili\n4 Luganda"
    )
    assert phone.send("3").startswith("CON Karibu. Nambari hii haina akaunti.")
    assert phone.send("1") == "CON Jina lako kamili:"
    assert phone.send("X") == "CON Andika herufi 2 hadi 40.\nJina lako kamili:"
    assert phone.send("Grace  Atim") == "CON Kijiji au eneo lako:"
    assert phone.send("block a") == "END Asante, Grace Atim. Tutakupigia kwa +256772999888."
    interest = Interest.objects.get()
    assert (interest.name, interest.place, interest.phone, interest.site, interest.language) == (
        "Grace Atim",
        "block a",
        "+256772999888",
        org.block_a,
        "sw",
    )
    page = client_for(org.admin).get("/admin/selfservice/interest/")
    assert page.status_code == 200 and "Grace Atim" in page.content.decode()


def test_an_unknown_number_sees_no_account_menu(customer, phone_of):
    phone = phone_of("+256772999777")
    phone.dial()
    assert phone.send("1") == "CON Your full name:"
    assert customer.account_number not in "".join(phone.screens)


def test_a_too_long_session_is_closed(customer, phone_of):
    phone = phone_of(customer.phone)
    response = phone.post("*".join(["9"] * 60))
    assert response.content.decode() == "END This session is too long. Please dial again."


def test_every_step_answers_within_a_second(customer, phone_of, used):
    bill(customer, "24500", issued=dt.date(2026, 11, 1), due=dt.date(2026, 11, 15))
    phone = phone_of(customer.phone)
    steps = ["", "3", PIN, "3", "0"]
    for n in range(len(steps)):
        started = time.perf_counter()
        phone.post("*".join(steps[1 : n + 1]))
        assert time.perf_counter() - started < 1.0


def test_secret_path(settings, customer, client):
    settings.NOTIFICATIONS_CALLBACK_SECRET = "s3cr3t-path"
    fields = {"sessionId": "S1", "serviceCode": "*1#", "phoneNumber": customer.phone, "text": ""}
    assert client.post("/ussd/africastalking/", fields).status_code == 404
    assert client.post("/ussd/wrong/africastalking/", fields).status_code == 404
    ok = client.post("/ussd/s3cr3t-path/africastalking/", fields)
    assert ok.status_code == 200 and ok.content.decode().startswith("CON ")
    settings.NOTIFICATIONS_CALLBACK_SECRET = ""
    assert client.post("/ussd/s3cr3t-path/africastalking/", fields).status_code == 404
    assert client.post("/ussd/africastalking/", fields).status_code == 200


def test_only_post_with_the_session_fields(client, customer):
    assert client.get("/ussd/africastalking/").status_code == 405
    assert client.post("/ussd/africastalking/", {"text": ""}).status_code == 400
