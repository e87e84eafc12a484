"""Each provider client against its fake server: the calls the contract describes."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest

from billing.payments import providers, services
from billing.payments.models import PaymentRequest
from billing.payments.providers import airtel as airtel_module
from billing.payments.providers import mtn as mtn_module


def _request(customer, provider, amount="20000", phone="+256772100200"):
    return services.request_to_pay(
        customer=customer,
        amount=Decimal(amount),
        phone=phone,
        provider=provider,
        channel=PaymentRequest.Channel.STAFF,
    )


def test_network_from_ugandan_prefixes(settings):
    settings.PAYMENT_DEFAULT_PROVIDER = "mtn"
    assert providers.network_for("+256772123456") == "mtn"
    assert providers.network_for("+256782123456") == "mtn"
    assert providers.network_for("+256701234567") == "airtel"
    assert providers.network_for("+256752123456") == "airtel"
    assert providers.network_for("+254712345678") == "mtn"  # not Ugandan: the setting
    settings.PAYMENT_DEFAULT_PROVIDER = "airtel"
    assert providers.network_for("+254712345678") == "airtel"


def test_console_backend_is_the_development_default(settings):
    settings.PAYMENT_BACKEND = "console"
    assert isinstance(providers.get("mtn"), providers.ConsoleProvider)
    settings.PAYMENT_BACKEND = "live"
    assert isinstance(providers.get("mtn"), mtn_module.MtnMomo)


@pytest.mark.django_db
def test_mtn_token_reference_and_202(live, mtn, customer):
    req = _request(customer, "mtn")
    assert req.status == PaymentRequest.Status.PENDING
    token_calls = mtn.calls("POST", "/collection/token/")
    assert len(token_calls) == 1
    (call,) = mtn.calls("POST", "/collection/v1_0/requesttopay")
    assert call.headers["X-Reference-Id"] == str(req.reference)
    assert call.headers["X-Target-Environment"] == "sandbox"
    assert call.headers["Ocp-Apim-Subscription-Key"] == "mtn-sub"
    assert call.headers["X-Callback-Url"] == "https://mcoms.example.org/payments/callback/mtn/"
    assert call.body["amount"] == "20000"  # a string, as MTN wants
    assert call.body["currency"] == "UGX"
    assert call.body["externalId"] == str(req.reference)
    assert call.body["payer"] == {"partyIdType": "MSISDN", "partyId": "256772100200"}
    # The same reference again (a retry) is accepted as already sent: 409 is not a failure.
    assert providers.get("mtn").request_payment(req).state == providers.PENDING
    # The token is reused, not asked for on every call.
    assert len(mtn.calls("POST", "/collection/token/")) == 1


@pytest.mark.django_db
def test_mtn_status_reads_the_provider(live, mtn, customer):
    req = _request(customer, "mtn")
    client = providers.get("mtn")
    assert client.status(req).state == providers.PENDING
    mtn.settle(req.reference, "SUCCESSFUL", txn="9876543210")
    outcome = client.status(req)
    assert outcome.state == providers.SUCCESSFUL
    assert outcome.provider_txn_id == "9876543210"
    assert outcome.amount == Decimal("20000")
    assert outcome.account == str(req.reference)
    other = PaymentRequest(reference=uuid.uuid4(), provider="mtn", currency="UGX")
    assert client.status(other).state == providers.UNKNOWN


@pytest.mark.django_db
def test_mtn_expired_token_is_renewed_once(live, mtn, customer):
    req = _request(customer, "mtn")
    mtn.fail_next("auth")
    assert providers.get("mtn").status(req).state == providers.PENDING
    assert len(mtn.calls("POST", "/collection/token/")) == 2


@pytest.mark.django_db
def test_mtn_refusal_and_outage(live, mtn, customer):
    mtn.fail_next("server_error")
    down = _request(customer, "mtn")
    assert down.status == PaymentRequest.Status.PENDING  # unknown: the poller asks later
    assert "No answer" in down.detail
    mtn.fail_next("timeout")
    slow = _request(customer, "mtn")
    assert slow.status == PaymentRequest.Status.PENDING and "no answer" in slow.detail


@pytest.mark.django_db
def test_airtel_payment_body_and_status_codes(live, airtel, customer):
    req = _request(customer, "airtel", phone="+256701234567")
    (call,) = airtel.calls("POST", "/merchant/v1/payments/")
    assert call.headers["X-Country"] == "UG" and call.headers["X-Currency"] == "UGX"
    assert call.body["subscriber"]["msisdn"] == "701234567"  # without the country code
    assert call.body["transaction"]["id"] == req.reference.hex
    assert call.body["transaction"]["amount"] == "20000"
    client = providers.get("airtel")
    assert client.status(req).state == providers.PENDING  # TIP
    airtel.settle(req.reference.hex, "TA")
    ambiguous = client.status(req)
    assert ambiguous.state == providers.PENDING and ambiguous.reason == airtel_module.AMBIGUOUS
    airtel.settle(req.reference.hex, "TF")
    assert client.status(req).state == providers.FAILED
    airtel.settle(req.reference.hex, "TS", airtel_money_id="MP261122ABCD")
    done = client.status(req)
    assert done.state == providers.SUCCESSFUL and done.provider_txn_id == "MP261122ABCD"


@pytest.mark.django_db
def test_airtel_refuses_a_bad_number(live, airtel, customer):
    req = _request(customer, "airtel", phone="+256701234567")
    airtel.payments.clear()
    airtel.payments[req.reference.hex] = {}  # a duplicate id is refused by Airtel
    with pytest.raises(providers.ProviderRefused):
        providers.get("airtel").request_payment(req)


@pytest.mark.django_db
def test_pesapal_token_ipn_order_and_status(live, pesapal, customer):
    req = services.request_to_pay(
        customer=customer,
        amount=Decimal("50000"),
        provider="pesapal",
        channel=PaymentRequest.Channel.PORTAL,
    )
    assert len(pesapal.calls("POST", "/URLSetup/RegisterIPN")) == 1
    (ipn,) = pesapal.ipns.values()
    assert ipn == "https://mcoms.example.org/payments/callback/pesapal/"
    (order,) = pesapal.calls("POST", "/Transactions/SubmitOrderRequest")
    assert order.body["id"] == str(req.reference)
    assert order.body["notification_id"] in pesapal.ipns
    assert order.body["callback_url"] == "https://mcoms.example.org/payments/return/"
    tracking = pesapal.order_for(req.reference)
    assert req.provider_txn_id == tracking
    assert req.redirect_url.endswith(f"/iframe/{tracking}")
    client = providers.get("pesapal")
    assert client.status(req).state == providers.PENDING
    pesapal.settle(tracking, 2)
    assert client.status(req).state == providers.FAILED
    pesapal.settle(tracking, 3)
    assert client.status(req).state == providers.REVERSED
    pesapal.settle(tracking, 1)
    done = client.status(req)
    assert done.state == providers.SUCCESSFUL and done.amount == Decimal("50000")
    assert done.account == str(req.reference)
    # A second checkout reuses the registered IPN.
    services.request_to_pay(
        customer=customer,
        amount=Decimal("1000"),
        provider="pesapal",
        channel=PaymentRequest.Channel.PORTAL,
    )
    assert len(pesapal.calls("POST", "/URLSetup/RegisterIPN")) == 1


def test_pesapal_callback_carries_only_ids():
    info = providers.Pesapal().parse_callback(
        b"", {"OrderTrackingId": "t-1", "OrderMerchantReference": "m-1"}
    )
    assert (info.provider_ref, info.reference, info.amount) == ("t-1", "m-1", None)
    posted = providers.Pesapal().parse_callback(
        json.dumps({"OrderTrackingId": "t-2", "OrderMerchantReference": "m-2"}).encode(), {}
    )
    assert posted.provider_ref == "t-2"
