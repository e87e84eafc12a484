"""Twilio SMS through the SDK against a fake Twilio on a local port; signed status callbacks."""

from __future__ import annotations

import base64
import logging
from decimal import Decimal

import pytest

from notifications import services
from notifications.models import Message, MessageTemplate
from notifications.tasks import deliver_message
from tests.notifications.fake_providers import FakeTwilio

pytestmark = pytest.mark.django_db

TWILIO_BACKEND = "notifications.backends.twilio.TwilioSMSBackend"
CALLBACKS = "/notifications/dlr/twilio/"
SID = "AC" + "1" * 32


@pytest.fixture
def fake(settings):
    server = FakeTwilio(account_sid=SID, auth_token="tw-token-abc")
    settings.SMS_BACKEND = TWILIO_BACKEND
    settings.TWILIO_BASE_URL = server.base_url
    settings.TWILIO_ACCOUNT_SID = SID
    settings.TWILIO_AUTH_TOKEN = "tw-token-abc"
    settings.TWILIO_FROM_NUMBER = "+15005550006"
    settings.SMS_PROVIDER_TIMEOUT = 1.5
    settings.NOTIFICATIONS_PUBLIC_URL = ""
    settings.NOTIFICATIONS_CALLBACK_SECRET = ""
    yield server
    server.close()


@pytest.fixture(autouse=True)
def template(db):
    MessageTemplate.objects.create(key="note", language="en", body="{{ text }}")


def queue(text="Your token is 1234-5678.", to="+256772123456", **kwargs) -> Message:
    return services.send_message(to=to, template="note", context={"text": text}, **kwargs)


def sent(fake) -> Message:
    message = queue()
    assert services.deliver(message.pk) is True
    message.refresh_from_db()
    assert message.status == "sent"
    return message


def test_sends_through_the_sdk_and_the_celery_task(fake, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        message = queue()
    message.refresh_from_db()
    assert (message.status, message.attempts, message.provider_status) == ("sent", 1, "queued")
    assert message.provider_message_id.startswith("SM") and message.segments == 1
    # Twilio knows no price when it accepts a message.
    assert (message.cost, message.currency) == (None, "")
    [request] = fake.requests
    assert request.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert (
        request.headers["Authorization"]
        == "Basic " + base64.b64encode(f"{SID}:tw-token-abc".encode()).decode()
    )
    assert request.form == {
        "To": "+256772123456",
        "From": "+15005550006",
        "Body": "Your token is 1234-5678.",
    }


def test_a_price_in_the_answer_is_recorded_as_a_positive_cost(fake):
    fake.price = "-0.00790"
    message = sent(fake)
    assert (message.cost, message.currency) == (Decimal("0.00790"), "USD")


def test_status_callbacks_are_requested_at_the_public_url(fake, settings):
    settings.NOTIFICATIONS_PUBLIC_URL = "https://mcoms.example.org/"
    message = sent(fake)
    # The URL names our message: its callback settles it even if Twilio's answer is lost.
    assert fake.requests[-1].form["StatusCallback"] == (
        f"https://mcoms.example.org/notifications/dlr/twilio/?message={message.pk}"
    )
    settings.NOTIFICATIONS_CALLBACK_SECRET = "s3cret"
    message = sent(fake)
    assert fake.requests[-1].form["StatusCallback"] == (
        f"https://mcoms.example.org/notifications/dlr/s3cret/twilio/?message={message.pk}"
    )


def test_server_errors_are_retried_by_the_sweep_and_the_message_sent_once(
    fake, django_capture_on_commit_callbacks
):
    message = queue()
    fake.fail_next("server_error")
    assert deliver_message.apply(args=[message.pk]).result is False
    message.refresh_from_db()
    assert message.status == "queued" and "HTTP 500" in message.error
    with django_capture_on_commit_callbacks(execute=True):
        assert services.release_due(now=message.retry_at) == 1
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("sent", 2)
    assert services.deliver(message.pk) is True
    assert len(fake.requests) == 2


def test_rate_limits_are_retried(fake):
    message = queue()
    fake.fail_next("rate_limit")
    assert services.deliver(message.pk) is False
    message.refresh_from_db()
    assert message.status == "queued" and "HTTP 429" in message.error


def test_a_timeout_leaves_the_outcome_unknown_and_is_not_sent_again(fake, settings):
    settings.SMS_PROVIDER_TIMEOUT = 0.5
    fake.slow_seconds = 1.0
    message = queue()
    fake.fail_next("slow")
    assert services.deliver(message.pk) is True
    message.refresh_from_db()
    assert message.status == "unknown" and "no answer" in message.error


def test_an_auth_failure_fails_for_good_and_logs_loudly(fake, settings, caplog):
    settings.TWILIO_AUTH_TOKEN = "stale-token"
    message = queue()
    with caplog.at_level(logging.ERROR, logger="notifications.backends.twilio"):
        assert deliver_message.apply(args=[message.pk]).state == "SUCCESS"
    message.refresh_from_db()
    assert message.status == "failed" and "code 20003" in message.error
    assert any(
        r.levelno == logging.ERROR and "TWILIO_AUTH_TOKEN" in r.getMessage() for r in caplog.records
    )
    assert len(fake.requests) == 1


def test_an_invalid_number_fails_without_retry(fake):
    fake.invalid_numbers.add("+256700000000")
    message = queue(to="+256700000000")
    assert services.deliver(message.pk) is True
    message.refresh_from_db()
    assert message.status == "failed" and "code 21211" in message.error


def test_signed_callbacks_move_the_status_and_never_backwards(fake, client):
    message = sent(fake)
    sid = message.provider_message_id
    assert fake.status_callback(client, CALLBACKS, sid, "sent").status_code == 200
    message.refresh_from_db()
    assert (message.status, message.provider_status) == ("sent", "sent")
    assert fake.status_callback(client, CALLBACKS, sid, "delivered").status_code == 200
    message.refresh_from_db()
    assert (message.status, message.provider_status) == ("delivered", "delivered")
    assert message.delivered_at is not None
    fake.status_callback(client, CALLBACKS, sid, "sent")
    fake.status_callback(client, CALLBACKS, sid, "undelivered", error_code="30003")
    message.refresh_from_db()
    assert message.status == "delivered"


def test_an_undelivered_callback_fails_the_message_with_the_error_code(fake, client):
    message = sent(fake)
    response = fake.status_callback(
        client, CALLBACKS, message.provider_message_id, "undelivered", error_code="30003"
    )
    assert response.status_code == 200
    message.refresh_from_db()
    assert (message.status, message.error) == ("failed", "Twilio: undelivered (error 30003)")


@pytest.mark.parametrize(
    "forgery",
    ["no signature", "wrong signature", "signed for another URL", "signed with another token"],
)
def test_unsigned_or_wrongly_signed_callbacks_get_403_and_change_nothing(fake, client, forgery):
    message = sent(fake)
    sid = message.provider_message_id
    kwargs = {
        "no signature": {"signature": ""},
        "wrong signature": {"signature": "bm90IGEgc2lnbmF0dXJl"},
        "signed for another URL": {"signed_url": "http://testserver/elsewhere/"},
        "signed with another token": {
            "signature": FakeTwilio(account_sid=SID, auth_token="other").sign(
                f"http://testserver{CALLBACKS}", {"MessageSid": sid, "MessageStatus": "delivered"}
            )
        },
    }[forgery]
    response = fake.status_callback(client, CALLBACKS, sid, "delivered", **kwargs)
    assert response.status_code == 403
    message.refresh_from_db()
    assert (message.status, message.provider_status, message.delivered_at) == (
        "sent",
        "queued",
        None,
    )


def test_signatures_are_checked_against_the_public_url(fake, client, settings):
    settings.NOTIFICATIONS_PUBLIC_URL = "https://mcoms.example.org"
    message = sent(fake)
    sid = message.provider_message_id
    # Signed for the address Django sees behind the proxy: not what Twilio signed.
    assert fake.status_callback(client, CALLBACKS, sid, "delivered").status_code == 403
    public = "https://mcoms.example.org" + CALLBACKS
    response = fake.status_callback(client, CALLBACKS, sid, "delivered", signed_url=public)
    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == "delivered"


def test_a_signed_callback_for_an_unknown_message_is_accepted_and_ignored(fake, client):
    message = sent(fake)
    assert fake.status_callback(client, CALLBACKS, "SM" + "f" * 32, "failed").status_code == 200
    message.refresh_from_db()
    assert message.status == "sent"


def test_the_secret_path_segment_guards_callbacks_when_set(fake, client, settings):
    message = sent(fake)
    settings.NOTIFICATIONS_CALLBACK_SECRET = "s3cret"
    sid = message.provider_message_id
    assert fake.status_callback(client, CALLBACKS, sid, "delivered").status_code == 404
    right = "/notifications/dlr/s3cret/twilio/"
    assert fake.status_callback(client, right, sid, "delivered").status_code == 200
    message.refresh_from_db()
    assert message.status == "delivered"
