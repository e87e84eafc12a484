"""Requests to pay, callbacks, polls: verified, cross-checked, idempotent, over real HTTP."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from billing import ledger
from billing.models import Posting
from billing.payments import services, tasks
from billing.payments.models import Payment, PaymentRequest
from mcoms.core import clock
from mcoms.core.models import AuditEvent
from notifications.models import Message
from tests.billing.payments.conftest import make_invoice

Status = PaymentRequest.Status
MTN_PATH = "/payments/callback/mtn/"
AIRTEL_PATH = "/payments/callback/airtel/"
PESAPAL_PATH = "/payments/callback/pesapal/"


def _ask(customer, provider="mtn", amount="20000", phone=None):
    return services.request_to_pay(
        customer=customer,
        amount=Decimal(amount),
        phone=phone,
        provider=provider,
        channel=PaymentRequest.Channel.USSD,
    )


@pytest.mark.django_db
def test_mtn_callback_credits_once_however_many_times_it_comes(
    live, mtn, customer, client, templates, django_capture_on_commit_callbacks
):
    invoice = make_invoice(customer, "15000", dt.date(2026, 10, 1))
    req = _ask(customer)
    mtn.settle(req.reference, "SUCCESSFUL", txn="5551234")
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            response = mtn.callback(client, MTN_PATH, req.reference)
            assert response.status_code == 200
    services.refresh(PaymentRequest.objects.get(pk=req.pk))  # and a poll afterwards
    (payment,) = Payment.objects.filter(customer=customer)
    assert payment.method == "mtn" and payment.provider_txn_id == "5551234"
    assert payment.amount == Decimal("20000") and payment.request_id == req.pk
    assert Posting.objects.filter(kind=Posting.Kind.PAYMENT, reference="mtn:5551234").count() == 1
    assert ledger.customer_balance(customer) == Decimal("-5000")  # 15,000 billed, 20,000 paid
    assert payment.allocations.get().invoice == invoice
    assert PaymentRequest.objects.get(pk=req.pk).status == Status.SUCCESSFUL
    # One receipt SMS, with the new balance.
    (sms,) = Message.objects.filter(template_key="payment_received")
    assert payment.receipt_number in sms.body and "-5,000" in sms.body and "20,000" in sms.body
    assert AuditEvent.objects.filter(
        object_type="payments.payment", object_id=str(payment.pk)
    ).exists()


@pytest.mark.django_db
def test_callback_status_is_fetched_never_taken_from_the_body(live, mtn, customer, client):
    req = _ask(customer)
    # A forged callback says SUCCESSFUL; MTN still says PENDING.
    mtn.callback(
        client, MTN_PATH, req.reference, status="SUCCESSFUL", financialTransactionId="FORGED"
    )
    assert not Payment.objects.exists()
    assert PaymentRequest.objects.get(pk=req.pk).status == Status.PENDING
    assert mtn.calls("GET", f"/collection/v1_0/requesttopay/{req.reference}")


@pytest.mark.django_db
def test_amount_mismatch_is_held_for_review_not_credited(live, mtn, customer, client):
    req = _ask(customer)
    mtn.settle(req.reference, "SUCCESSFUL", amount="2000")  # the payer paid a tenth
    mtn.callback(client, MTN_PATH, req.reference)
    req.refresh_from_db()
    assert req.status == Status.HELD
    assert "amount 2000 instead of 20000" in req.detail
    assert not Payment.objects.exists()
    assert ledger.customer_balance(customer) == 0


@pytest.mark.django_db
def test_currency_and_reference_mismatch_are_held(live, mtn, customer, client):
    a = _ask(customer)
    mtn.settle(a.reference, "SUCCESSFUL", currency="KES")
    mtn.callback(client, MTN_PATH, a.reference)
    a.refresh_from_db()
    assert a.status == Status.HELD and "currency KES" in a.detail
    b = _ask(customer)
    mtn.settle(b.reference, "SUCCESSFUL", externalId="someone-else")
    services.refresh(b)
    b.refresh_from_db()
    assert b.status == Status.HELD and "reference 'someone-else' is not ours" in b.detail
    assert not Payment.objects.exists()


@pytest.mark.django_db
def test_a_callback_claiming_another_amount_is_held(live, airtel, customer, client):
    req = _ask(customer, "airtel", phone="+256701234567")
    airtel.settle(req.reference.hex, "TS")
    airtel.callback(client, AIRTEL_PATH, req.reference.hex, amount="5000")
    req.refresh_from_db()
    assert req.status == Status.HELD and "callback: amount 5000" in req.detail
    assert not Payment.objects.exists()


@pytest.mark.django_db
def test_held_request_resolved_by_a_person(live, mtn, customer, client, org):
    req = _ask(customer)
    mtn.settle(req.reference, "SUCCESSFUL", amount="19000", txn="777")
    services.refresh(req)
    req.refresh_from_db()
    assert req.status == Status.HELD
    with pytest.raises(services.PermissionDenied):
        services.resolve_held(request=req, action="credit", by=org.agent, note="ok")
    services.resolve_held(
        request=req,
        action="credit",
        amount="19000",
        by=org.billing,
        note="customer sent less; credit what arrived",
    )
    req.refresh_from_db()
    assert req.status == Status.SUCCESSFUL
    payment = Payment.objects.get(request=req)
    assert payment.amount == Decimal("19000") and payment.provider_txn_id == "777"
    other = _ask(customer)
    mtn.settle(other.reference, "SUCCESSFUL", amount="1")
    services.refresh(other)
    services.resolve_held(request=other, action="reject", by=org.billing, note="not ours")
    other.refresh_from_db()
    assert other.status == Status.FAILED and Payment.objects.count() == 1


@pytest.mark.django_db
def test_airtel_failure_and_success_by_callback(live, airtel, customer, client):
    failed = _ask(customer, "airtel", phone="+256701234567")
    airtel.settle(failed.reference.hex, "TF")
    airtel.callback(client, AIRTEL_PATH, failed.reference.hex)
    failed.refresh_from_db()
    assert failed.status == Status.FAILED
    paid = _ask(customer, "airtel", phone="0701234567")  # a local number is accepted
    airtel.settle(paid.reference.hex, "TS", airtel_money_id="MP1")
    airtel.callback(client, AIRTEL_PATH, paid.reference.hex)
    airtel.callback(client, AIRTEL_PATH, paid.reference.hex)
    (payment,) = Payment.objects.all()
    assert payment.method == "airtel" and payment.provider_txn_id == "MP1"


@pytest.mark.django_db
def test_pesapal_ipn_fetches_the_status(live, pesapal, customer, client):
    req = _ask(customer, "pesapal", amount="50000")
    tracking = pesapal.order_for(req.reference)
    response = pesapal.ipn(client, PESAPAL_PATH, tracking)
    assert response.status_code == 200 and response.json()["orderTrackingId"] == tracking
    assert not Payment.objects.exists()  # not paid yet: status_code 0
    pesapal.settle(tracking, 1)
    for _ in range(2):
        response = pesapal.ipn(client, PESAPAL_PATH, tracking)
        assert response.json()["status"] == 200
    (payment,) = Payment.objects.all()
    assert payment.method == "pesapal" and payment.provider_txn_id == tracking
    assert len(pesapal.calls("GET", "/Transactions/GetTransactionStatus")) == 3


@pytest.mark.django_db
def test_payer_return_page_checks_the_status(live, pesapal, customer, client):
    req = _ask(customer, "pesapal", amount="50000")
    tracking = pesapal.order_for(req.reference)
    pesapal.settle(tracking, 1)
    page = client.get(
        f"/payments/return/?OrderTrackingId={tracking}&OrderMerchantReference={req.reference}"
    )
    assert page.status_code == 200 and b"Paid" in page.content
    assert Payment.objects.filter(request=req).exists()


@pytest.mark.django_db
def test_callback_secret_path(live, mtn, customer, client, settings):
    settings.PAYMENT_CALLBACK_SECRET = "s3cret"
    req = _ask(customer)
    call = mtn.calls("POST", "/collection/v1_0/requesttopay")[-1]
    assert call.headers["X-Callback-Url"].endswith("/payments/callback/s3cret/mtn/")
    mtn.settle(req.reference, "SUCCESSFUL")
    assert mtn.callback(client, MTN_PATH, req.reference).status_code == 404
    assert mtn.callback(client, "/payments/callback/guess/mtn/", req.reference).status_code == 404
    assert not Payment.objects.exists()
    assert mtn.callback(client, "/payments/callback/s3cret/mtn/", req.reference).status_code == 200
    assert Payment.objects.count() == 1


@pytest.mark.django_db
def test_provider_down_during_callback_then_the_poller_credits(live, mtn, customer, client):
    req = _ask(customer)
    mtn.settle(req.reference, "SUCCESSFUL")
    mtn.fail_next("timeout")
    assert mtn.callback(client, MTN_PATH, req.reference).status_code == 503
    assert not Payment.objects.exists()
    counts = tasks.poll_pending_requests()
    assert counts["paid"] == 1 and Payment.objects.count() == 1


@pytest.mark.django_db
def test_unknown_request_callback_changes_nothing(live, mtn, client):
    import json
    import uuid

    body = {"externalId": str(uuid.uuid4()), "status": "SUCCESSFUL", "amount": "1"}
    response = client.put(MTN_PATH, json.dumps(body), content_type="application/json")
    assert response.status_code == 404 and not Payment.objects.exists()


@pytest.mark.django_db
def test_poller_credits_fails_and_expires(live, mtn, airtel, customer, settings):
    settings.PAYMENT_REQUEST_EXPIRY_MINUTES = 30
    paid, declined, silent = _ask(customer), _ask(customer), _ask(customer)
    ambiguous = _ask(customer, "airtel", phone="+256701234567")
    mtn.settle(paid.reference, "SUCCESSFUL")
    mtn.settle(declined.reference, "FAILED", reason="APPROVAL_REJECTED")
    airtel.settle(ambiguous.reference.hex, "TA")
    counts = services.poll_pending()
    assert counts == {"polled": 4, "paid": 1, "failed": 1, "expired": 0, "held": 0}
    assert Payment.objects.get().request_id == paid.pk
    declined.refresh_from_db()
    assert declined.status == Status.FAILED and declined.detail == "APPROVAL_REJECTED"
    later = clock.now() + dt.timedelta(minutes=31)
    counts = services.poll_pending(now=later)
    silent.refresh_from_db()
    ambiguous.refresh_from_db()
    assert silent.status == Status.EXPIRED
    assert ambiguous.status == Status.HELD  # money may have left the wallet: a person looks
    assert counts["expired"] == 1 and counts["held"] == 1
    assert silent.polls == 2


@pytest.mark.django_db
def test_request_refused_by_the_provider_fails_with_a_reason(live, mtn, customer):
    mtn.payments.clear()
    req = services.request_to_pay(
        customer=customer, amount="5000", provider="mtn", phone="+256772100200", channel="portal"
    )
    assert req.status == Status.PENDING
    mtn.subscription_key = "rotated"  # our key no longer works: every call is refused
    from django.core.cache import cache

    cache.clear()
    refused = _ask(customer)
    assert refused.status == Status.FAILED and "refused" in refused.detail


@pytest.mark.django_db
def test_bad_input_is_refused_clearly(live, customer):
    with pytest.raises(services.ValidationError, match="more than zero"):
        _ask(customer, amount="0")
    with pytest.raises(services.ValidationError, match="whole multiple"):
        _ask(customer, amount="100.50")  # UGX has no cents
    with pytest.raises(services.ValidationError):
        _ask(customer, phone="12")
    with pytest.raises(services.ValidationError, match="channel"):
        services.request_to_pay(customer=customer, amount="100", channel="fax")
    assert not PaymentRequest.objects.exists()


@pytest.mark.django_db
def test_provider_follows_the_phone_network(live, mtn, airtel, customer):
    assert _ask(customer, provider=None, phone="+256701234567").provider == "airtel"
    assert _ask(customer, provider=None).provider == "mtn"  # the customer's own 0772 number


@pytest.mark.django_db
def test_customer_fee_is_asked_on_top_and_shown(live, mtn, customer, settings):
    settings.PAYMENT_CUSTOMER_FEES = ["mtn:500:1"]
    req = _ask(customer, amount="20000")
    assert req.fee == Decimal("700")
    call = mtn.calls("POST", "/collection/v1_0/requesttopay")[-1]
    assert call.body["amount"] == "20700"
    mtn.settle(req.reference, "SUCCESSFUL")
    services.refresh(req)
    payment = Payment.objects.get()
    assert (payment.amount, payment.fee) == (Decimal("20000"), Decimal("700"))
    assert ledger.customer_balance(customer) == Decimal("-20000")
    fees = ledger.account(customer.site, "revenue_fees")
    assert ledger.balance(fees) == Decimal("-700")


@pytest.mark.django_db
def test_console_provider_pays_at_once_for_development(settings, customer):
    settings.PAYMENT_BACKEND = "console"
    req = _ask(customer, amount="3000")
    assert req.status == Status.SUCCESSFUL
    assert Payment.objects.get(request=req).amount == Decimal("3000")
    card = _ask(customer, "pesapal", amount="1000")
    assert card.status == Status.SUCCESSFUL and card.redirect_url


@pytest.mark.django_db
def test_a_transaction_id_already_receipted_is_held(live, mtn, customer):
    first, second = _ask(customer), _ask(customer)
    mtn.settle(first.reference, "SUCCESSFUL", txn="SAME1")
    mtn.settle(second.reference, "SUCCESSFUL", txn="SAME1")
    services.refresh(first)
    services.refresh(second)
    second.refresh_from_db()
    receipt = Payment.objects.get().receipt_number
    assert second.status == Status.HELD and receipt in second.detail
    assert Payment.objects.count() == 1


@pytest.mark.django_db
def test_airtel_and_pesapal_outages_leave_requests_pending(live, airtel, pesapal, customer):
    airtel.fail_next("server_error")
    down = _ask(customer, "airtel", phone="+256701234567")
    assert down.status == Status.PENDING and "HTTP 500" in down.detail
    card = _ask(customer, "pesapal", amount="20000")
    tracking = pesapal.order_for(card.reference)
    pesapal.settle(tracking, 1)
    pesapal.fail_next("timeout")
    services.refresh(card)  # no answer in time: nothing decided
    card.refresh_from_db()
    assert card.status == Status.PENDING and not Payment.objects.exists()
    pesapal.fail_next("server_error")
    services.refresh(card)
    assert not Payment.objects.exists()
    services.refresh(card)  # the provider is back
    card.refresh_from_db()
    assert card.status == Status.SUCCESSFUL and Payment.objects.count() == 1
    assert card.polls == 3


@pytest.mark.django_db
def test_pesapal_order_refused_fails_the_request(live, pesapal, customer, settings):
    settings.PESAPAL_IPN_ID = "not-registered"  # Pesapal refuses an unknown notification id
    req = _ask(customer, "pesapal", amount="20000")
    assert req.status == Status.FAILED and "invalid_ipn_id" in req.detail


@pytest.mark.django_db
def test_pesapal_order_that_timed_out_is_found_by_its_ipn(live, pesapal, customer, client):
    pesapal.fail_next("timeout")  # no answer in time: we never learn a tracking id
    req = _ask(customer, "pesapal", amount="30000")
    assert req.status == Status.PENDING and req.provider_txn_id == ""
    # Yet the order exists at Pesapal and the customer paid it.
    tracking = "a1b2c3"
    pesapal.orders[tracking] = {
        "merchant_reference": str(req.reference),
        "amount": 30000,
        "currency": "UGX",
        "status_code": 1,
        "payment_status_description": "Completed",
        "confirmation_code": "PP1",
        "callback_url": "",
    }
    forged = "f0f0"
    pesapal.orders[forged] = {**pesapal.orders[tracking], "merchant_reference": "someone-else"}
    other = _ask(customer, "pesapal", amount="30000")
    other.provider_txn_id = ""
    other.save()
    response = client.get(
        f"{PESAPAL_PATH}?OrderTrackingId={forged}&OrderMerchantReference={other.reference}"
    )
    assert response.status_code == 200
    other.refresh_from_db()
    assert other.status == Status.HELD  # the status names another reference: not credited
    response = client.get(
        f"{PESAPAL_PATH}?OrderTrackingId={tracking}&OrderMerchantReference={req.reference}"
    )
    req.refresh_from_db()
    assert req.status == Status.SUCCESSFUL and req.provider_txn_id == tracking
    assert Payment.objects.get().request == req
