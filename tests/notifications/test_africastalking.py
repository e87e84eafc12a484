"""Africa's Talking SMS against a fake AT server on a local port: sending, failures, reports."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

import pytest

from notifications import services
from notifications.models import Message, MessageTemplate, SiteSMSBackend, SMSBackendChoice
from notifications.tasks import deliver_message
from tests.notifications.fake_providers import FakeAfricasTalking

pytestmark = pytest.mark.django_db

AT_BACKEND = "notifications.backends.africastalking.AfricasTalkingSMSBackend"
REPORTS = "/notifications/dlr/africastalking/"


@pytest.fixture
def fake(settings):
    server = FakeAfricasTalking(username="mcoms", api_key="at-key-123")
    settings.SMS_BACKEND = AT_BACKEND
    settings.AFRICASTALKING_BASE_URL = server.base_url
    settings.AFRICASTALKING_USERNAME = "mcoms"
    settings.AFRICASTALKING_API_KEY = "at-key-123"
    settings.AFRICASTALKING_SENDER_ID = "MCOMS"
    settings.SMS_PROVIDER_TIMEOUT = 1.5
    settings.NOTIFICATIONS_CALLBACK_SECRET = ""
    yield server
    server.close()


@pytest.fixture(autouse=True)
def template(db):
    MessageTemplate.objects.create(key="note", language="en", body="{{ text }}")


def queue(text="Hello Amina, your bill is 12,000 KES.", to="+254711000001", **kwargs) -> Message:
    return services.send_message(to=to, template="note", context={"text": text}, **kwargs)


def test_sends_through_the_celery_task_and_records_id_cost_and_segments(
    fake, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        message = queue()
    message.refresh_from_db()
    assert message.status == "sent" and message.attempts == 1
    assert message.provider_message_id.startswith("ATXid_")
    assert (message.cost, message.currency, message.segments) == (Decimal("0.8000"), "KES", 1)
    assert message.provider_status == "Success" and message.backend == AT_BACKEND
    [request] = fake.requests
    assert request.path == "/version1/messaging"
    assert request.headers["apiKey"] == "at-key-123"
    assert request.form == {
        "username": "mcoms",
        "to": "+254711000001",
        "message": "Hello Amina, your bill is 12,000 KES.",
        "from": "MCOMS",
    }


def test_a_long_message_counts_and_costs_two_segments(fake):
    message = queue("x" * 200)
    assert message.segments == 2
    assert services.deliver(message.pk) is True
    message.refresh_from_db()
    assert (message.cost, message.currency) == (Decimal("1.6000"), "KES")


def test_a_server_error_is_retried_by_the_sweep_then_sent_once(
    fake, django_capture_on_commit_callbacks
):
    message = queue()
    fake.fail_next("server_error")
    assert deliver_message.apply(args=[message.pk]).result is False
    message.refresh_from_db()
    assert message.status == "queued" and "server error (500)" in message.error
    with django_capture_on_commit_callbacks(execute=True):
        assert services.release_due(now=message.retry_at) == 1
    message.refresh_from_db()
    assert (message.status, message.attempts, message.error) == ("sent", 2, "")
    # A sent message is never sent again, whoever asks.
    assert services.deliver(message.pk) is True
    deliver_message.apply(args=[message.pk])
    assert len(fake.requests) == 2


def test_rate_limits_are_retried(fake):
    message = queue()
    fake.fail_next("rate_limit")
    assert services.deliver(message.pk) is False
    message.refresh_from_db()
    assert message.status == "queued" and "rate limited" in message.error


def test_a_timeout_leaves_the_outcome_unknown_and_is_not_sent_again(fake, settings):
    settings.SMS_PROVIDER_TIMEOUT = 0.5
    fake.slow_seconds = 1.0
    message = queue()
    fake.fail_next("slow")
    assert services.deliver(message.pk) is True
    message.refresh_from_db()
    assert message.status == "unknown" and "no answer in 0.5 s" in message.error
    assert services.release_due(now=message.created_at + dt.timedelta(days=1)) == 0


def test_an_auth_failure_fails_for_good_and_logs_loudly(fake, settings, caplog):
    settings.AFRICASTALKING_API_KEY = "wrong-key"
    message = queue()
    with caplog.at_level(logging.ERROR, logger="notifications.backends.africastalking"):
        result = deliver_message.apply(args=[message.pk])
    assert result.state == "SUCCESS"  # no retry
    message.refresh_from_db()
    assert message.status == "failed" and "authentication failed (401)" in message.error
    assert any(
        r.levelno == logging.ERROR and "AFRICASTALKING_API_KEY" in r.getMessage()
        for r in caplog.records
    )
    assert len(fake.requests) == 1


def test_an_invalid_number_fails_without_retry(fake):
    fake.invalid_numbers.add("+254700000000")
    message = queue(to="+254700000000")
    assert services.deliver(message.pk) is True
    message.refresh_from_db()
    assert (message.status, message.provider_status) == ("failed", "InvalidPhoneNumber")
    assert "InvalidPhoneNumber (403)" in message.error and message.cost is None


def test_an_unregistered_sender_id_fails_without_retry(fake, settings, caplog):
    settings.AFRICASTALKING_SENDER_ID = "NOTOURS"
    message = queue()
    with caplog.at_level(logging.ERROR, logger="notifications.backends.africastalking"):
        assert services.deliver(message.pk) is True
    message.refresh_from_db()
    assert (message.status, message.error) == ("failed", "Africa's Talking: InvalidSenderId")
    assert "InvalidSenderId" in caplog.text


def test_missing_credentials_fail_without_calling_out(fake, settings):
    settings.AFRICASTALKING_API_KEY = ""
    message = queue()
    assert services.deliver(message.pk) is True
    message.refresh_from_db()
    assert message.status == "failed" and fake.requests == []


def test_delivery_reports_move_the_status_and_never_backwards(fake, client):
    message = queue()
    services.deliver(message.pk)
    message.refresh_from_db()
    mid = message.provider_message_id

    assert fake.delivery_report(client, REPORTS, mid, "Buffered").status_code == 200
    message.refresh_from_db()
    assert (message.status, message.provider_status) == ("sent", "Buffered")

    assert fake.delivery_report(client, REPORTS, mid, "Success").status_code == 200
    message.refresh_from_db()
    assert (message.status, message.provider_status) == ("delivered", "Success")
    assert message.delivered_at is not None

    # Late or repeated reports do not undo delivery.
    fake.delivery_report(client, REPORTS, mid, "Sent")
    fake.delivery_report(client, REPORTS, mid, "Failed", "DeliveryFailure")
    message.refresh_from_db()
    assert (message.status, message.provider_status) == ("delivered", "Success")


def test_a_failure_report_marks_the_message_failed_with_the_reason(fake, client):
    message = queue()
    services.deliver(message.pk)
    message.refresh_from_db()
    response = fake.delivery_report(
        client, REPORTS, message.provider_message_id, "Failed", "UserInBlacklist"
    )
    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == "failed"
    assert message.error == "Africa's Talking: Failed (UserInBlacklist)"


def test_a_report_for_an_unknown_message_is_accepted_and_ignored(fake, client):
    message = queue()
    services.deliver(message.pk)
    assert fake.delivery_report(client, REPORTS, "ATXid_unknown", "Success").status_code == 200
    message.refresh_from_db()
    assert message.status == "sent"
    assert client.post(REPORTS, {"status": "Success"}).status_code == 400
    assert client.get(REPORTS).status_code == 405


def test_the_secret_path_segment_guards_reports_when_set(fake, client, settings):
    message = queue()
    services.deliver(message.pk)
    message.refresh_from_db()
    mid = message.provider_message_id
    settings.NOTIFICATIONS_CALLBACK_SECRET = "s3cret-path"
    assert fake.delivery_report(client, REPORTS, mid, "Success").status_code == 404
    wrong = "/notifications/dlr/guess/africastalking/"
    assert fake.delivery_report(client, wrong, mid, "Success").status_code == 404
    message.refresh_from_db()
    assert message.status == "sent"
    right = "/notifications/dlr/s3cret-path/africastalking/"
    assert fake.delivery_report(client, right, mid, "Success").status_code == 200
    message.refresh_from_db()
    assert message.status == "delivered"
    # Without a secret configured, the secret form does not answer at all.
    settings.NOTIFICATIONS_CALLBACK_SECRET = ""
    assert fake.delivery_report(client, right, mid, "Success").status_code == 404


def test_a_site_can_use_its_own_provider(fake, settings):
    settings.SMS_BACKEND = "notifications.backends.console.ConsoleSMSBackend"
    SiteSMSBackend.objects.create(site_id=7, backend=SMSBackendChoice.AFRICASTALKING)
    on_site_7 = queue(site_id=7)
    elsewhere = queue(site_id=8)
    assert on_site_7.backend == AT_BACKEND
    services.deliver(on_site_7.pk)
    services.deliver(elsewhere.pk)
    on_site_7.refresh_from_db()
    elsewhere.refresh_from_db()
    assert on_site_7.provider_message_id.startswith("ATXid_")
    assert elsewhere.provider_message_id == f"console-{elsewhere.pk}"
    assert len(fake.requests) == 1
