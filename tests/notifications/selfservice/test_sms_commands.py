"""SMS commands from Africa's Talking and Twilio: the replies, as the message log records them."""

from __future__ import annotations

import datetime as dt

import pytest
from twilio.request_validator import RequestValidator

from customers.models import Customer
from notifications.models import Message
from notifications.selfservice import messages
from notifications.selfservice.models import CustomerPin, InboundSms
from notifications.selfservice.sms import parse
from tests import factories
from tests.notifications.selfservice.conftest import bill, local_today, usage

pytestmark = pytest.mark.django_db

AT_URL = "/sms/africastalking/"
TWILIO_URL = "/sms/twilio/"
TOKEN = "tw-inbound-token"
_ids = iter(range(1, 10_000))


def at_sms(client, sender, text, *, url=AT_URL, id_=None):
    return client.post(
        url,
        {
            "date": "2026-11-22 08:15:02",
            "from": sender,
            "id": id_ or f"ATXid_{next(_ids)}",
            "linkId": "SampleLinkId123",
            "text": text,
            "to": "20880",
            "networkCode": "63902",
        },
    )


def replies(to: str) -> list[Message]:
    return list(Message.objects.filter(to=to).order_by("id"))


@pytest.fixture
def billed(customer):
    bill(customer, "24500", issued=dt.date(2026, 11, 1), due=dt.date(2026, 11, 15))
    return customer


def test_bal_replies_with_the_balance_by_sms(client, billed):
    response = at_sms(client, billed.phone, "bal")
    assert response.status_code == 200
    [reply] = replies(billed.phone)
    assert reply.template_key == messages.BALANCE
    assert reply.body == (
        f"{billed.account_number}: you owe UGX 24,500. Pay UGX 24,500 by 15 Nov 2026."
    )
    assert (reply.channel, reply.status, reply.site_id) == ("sms", "queued", billed.site_id)
    inbound = InboundSms.objects.get()
    assert (inbound.provider, inbound.sender, inbound.command, inbound.customers) == (
        "africastalking",
        billed.phone,
        "balance",
        1,
    )


def test_balance_by_sms_needs_no_pin(client, billed):
    CustomerPin.objects.filter(customer=billed).delete()
    at_sms(client, billed.phone, "BAL")
    assert "24,500" in replies(billed.phone)[0].body


def test_swahili_and_luganda_words_are_answered_in_their_language(client, billed):
    at_sms(client, billed.phone, "Salio")
    at_sms(client, billed.phone, "bbalansi")
    sw, lg = replies(billed.phone)
    assert sw.body.startswith(f"{billed.account_number}: unadaiwa UGX 24,500.")
    assert sw.language == "sw"
    assert lg.body.startswith(f"{billed.account_number}: obanjibwa UGX 24,500.")
    assert lg.language == "lg"


def test_an_english_word_is_answered_in_the_customers_language(client, billed):
    Customer.objects.filter(pk=billed.pk).update(language="sw")
    at_sms(client, billed.phone, "BAL")
    assert replies(billed.phone)[0].body.startswith(f"{billed.account_number}: unadaiwa")


def test_bill(client, billed):
    at_sms(client, billed.phone, "BILL")
    [reply] = replies(billed.phone)
    assert reply.template_key == messages.BILL
    assert reply.body.startswith("Bill INV-KLA-") and "UGX 24,500" in reply.body


def test_use(client, customer):
    usage(customer, {local_today(customer): "2.25"})
    at_sms(client, customer.phone, "matumizi")
    [reply] = replies(customer.phone)
    assert reply.template_key == messages.USAGE
    assert reply.body.startswith(f"{customer.account_number}: matumizi leo kWh 2.3, mwezi huu")


@pytest.mark.parametrize(
    ("word", "opening"),
    [
        ("HELP", "Send BAL for your balance"),
        ("msaada", "Tuma SALIO"),
        ("Obuyambi", "Weereza BBALANSI"),
        ("what is this", "Send BAL for your balance"),
    ],
)
def test_help_and_anything_unknown_get_help(client, customer, word, opening):
    at_sms(client, customer.phone, word)
    [reply] = replies(customer.phone)
    assert reply.template_key == messages.HELP and reply.body.startswith(opening)


def test_an_unknown_sender_gets_help_and_never_account_data(client, billed):
    stranger = "+256772444333"
    at_sms(client, stranger, "BAL")
    at_sms(client, stranger, "BILL")
    sent = replies(stranger)
    assert [m.template_key for m in sent] == [messages.HELP_UNKNOWN] * 2
    assert sent[0].body.startswith("This number has no account with us.")
    assert all("24,500" not in m.body and billed.account_number not in m.body for m in sent)
    assert Message.objects.filter(to=billed.phone).count() == 0


def test_every_account_on_the_number_gets_its_answer(org, client, billed):
    shop = factories.customer(org.block_b, first_name="Duka", alt_phone=billed.phone)
    at_sms(client, billed.phone, "BAL")
    bodies = [m.body for m in replies(billed.phone)]
    assert bodies == [
        f"{billed.account_number}: you owe UGX 24,500. Pay UGX 24,500 by 15 Nov 2026.",
        f"{shop.account_number}: you owe nothing.",
    ]


def test_a_repeated_message_is_answered_once(client, billed):
    at_sms(client, billed.phone, "BAL", id_="ATXid_same")
    again = at_sms(client, billed.phone, "BAL", id_="ATXid_same")
    assert again.status_code == 200
    assert len(replies(billed.phone)) == 1 and InboundSms.objects.count() == 1


def test_africastalking_secret_path(settings, client, billed):
    settings.NOTIFICATIONS_CALLBACK_SECRET = "in-s3cret"
    assert at_sms(client, billed.phone, "BAL").status_code == 404
    assert at_sms(client, billed.phone, "BAL", url="/sms/nope/africastalking/").status_code == 404
    assert not Message.objects.exists()
    ok = at_sms(client, billed.phone, "BAL", url="/sms/in-s3cret/africastalking/")
    assert ok.status_code == 200 and len(replies(billed.phone)) == 1


def test_a_command_word_after_a_keyword(client, billed):
    assert parse("MCOMS bal") == ("balance", "")
    assert parse("  biiru!") == ("bill", "lg")
    assert parse("") == ("help", "")


# --- Twilio ---------------------------------------------------------------------------------------


@pytest.fixture
def twilio(settings):
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.NOTIFICATIONS_PUBLIC_URL = ""
    settings.NOTIFICATIONS_CALLBACK_SECRET = ""
    return RequestValidator(TOKEN)


def twilio_fields(sender, body, sid="SM" + "a" * 32):
    return {
        "From": sender,
        "To": "+15005550006",
        "Body": body,
        "MessageSid": sid,
        "AccountSid": "AC" + "1" * 32,
        "NumMedia": "0",
    }


def test_twilio_signed_message_is_answered(client, billed, twilio):
    fields = twilio_fields(billed.phone, "BAL")
    signature = twilio.compute_signature(f"http://testserver{TWILIO_URL}", fields)
    response = client.post(TWILIO_URL, fields, HTTP_X_TWILIO_SIGNATURE=signature)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/xml"
    [reply] = replies(billed.phone)
    assert reply.body.startswith(f"{billed.account_number}: you owe UGX 24,500.")
    assert InboundSms.objects.get().provider == "twilio"


@pytest.mark.parametrize("how", ["unsigned", "wrong token", "other url", "changed body"])
def test_twilio_without_a_valid_signature_gets_403_and_nothing_is_done(client, billed, twilio, how):
    fields = twilio_fields(billed.phone, "BAL")
    headers = {}
    if how == "wrong token":
        wrong = RequestValidator("not-the-token")
        headers["HTTP_X_TWILIO_SIGNATURE"] = wrong.compute_signature(
            f"http://testserver{TWILIO_URL}", fields
        )
    elif how == "other url":
        headers["HTTP_X_TWILIO_SIGNATURE"] = twilio.compute_signature(
            "http://testserver/elsewhere/", fields
        )
    elif how == "changed body":
        headers["HTTP_X_TWILIO_SIGNATURE"] = twilio.compute_signature(
            f"http://testserver{TWILIO_URL}", fields
        )
        fields = {**fields, "Body": "BILL"}
    response = client.post(TWILIO_URL, fields, **headers)
    assert response.status_code == 403
    assert not Message.objects.exists() and not InboundSms.objects.exists()


def test_twilio_signature_is_checked_against_the_public_url(settings, client, billed, twilio):
    settings.NOTIFICATIONS_PUBLIC_URL = "https://ops.example.org"
    settings.NOTIFICATIONS_CALLBACK_SECRET = "tw-s3cret"
    url = "/sms/tw-s3cret/twilio/"
    fields = twilio_fields(billed.phone, "USE")
    local = twilio.compute_signature(f"http://testserver{url}", fields)
    assert client.post(url, fields, HTTP_X_TWILIO_SIGNATURE=local).status_code == 403
    public = twilio.compute_signature(f"https://ops.example.org{url}", fields)
    assert client.post(url, fields, HTTP_X_TWILIO_SIGNATURE=public).status_code == 200
    assert replies(billed.phone)[0].template_key == messages.USAGE


def test_twilio_unknown_sender_gets_help(client, customer, twilio):
    fields = twilio_fields("+256772444000", "BAL")
    signature = twilio.compute_signature(f"http://testserver{TWILIO_URL}", fields)
    client.post(TWILIO_URL, fields, HTTP_X_TWILIO_SIGNATURE=signature)
    [reply] = replies("+256772444000")
    assert reply.template_key == messages.HELP_UNKNOWN
    assert customer.account_number not in reply.body
