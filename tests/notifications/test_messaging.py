"""The messaging core: templated messages, a log with status, delivery after commit."""

from __future__ import annotations

import datetime as dt

import pytest

from customers import services as customer_services
from notifications import services
from notifications.models import Message, MessageTemplate

pytestmark = pytest.mark.django_db


@pytest.fixture
def templates(db):
    MessageTemplate.objects.create(
        key="bill_issued", language="en", body="Hello {{ name }}, your bill is {{ amount }} UGX."
    )
    MessageTemplate.objects.create(
        key="bill_issued", language="sw", body="Habari {{ name }}, bili yako ni {{ amount }} UGX."
    )


def test_renders_in_the_preferred_language_with_english_fallback(templates):
    sw = services.render(
        "bill_issued", language="sw", channel="sms", context={"name": "Amina", "amount": "12,000"}
    )
    assert sw.body == "Habari Amina, bili yako ni 12,000 UGX." and sw.language == "sw"
    lg = services.render(
        "bill_issued", language="lg", channel="sms", context={"name": "Kato", "amount": "5,000"}
    )
    assert lg.body == "Hello Kato, your bill is 5,000 UGX." and lg.language == "en"
    with pytest.raises(services.TemplateMissing):
        services.render("no_such_event", language="en", channel="sms", context={})


def test_message_is_logged_then_sent_after_commit(templates, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        message = services.send_message(
            to="+256772123456",
            template="bill_issued",
            context={"name": "A", "amount": 1},
            about="x:1",
            site_id=7,
        )
    assert Message.objects.get(pk=message.pk).status == "queued"
    assert len(callbacks) == 1
    callbacks[0]()  # the commit happens: the task runs (eagerly in tests)
    message.refresh_from_db()
    assert message.status == "sent"
    assert message.provider_message_id == f"console-{message.pk}"
    assert (message.attempts, message.about, message.site_id) == (1, "x:1", 7)


def test_nothing_is_sent_when_the_change_rolls_back(templates, django_capture_on_commit_callbacks):
    from django.db import transaction

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                services.send_message(
                    to="+256772123456", template="bill_issued", context={"name": "A", "amount": 1}
                )
                raise RuntimeError("the change failed")
        except RuntimeError:
            pass
    assert callbacks == []
    assert not Message.objects.exists()


def test_a_failing_provider_keeps_the_message_for_retry(
    templates, settings, django_capture_on_commit_callbacks
):
    settings.SMS_BACKEND = "tests.notifications.backends.FlakyBackend"
    message = services.send_message(
        to="+256772123456", template="bill_issued", context={"name": "A", "amount": 1}
    )
    assert services.deliver(message.pk) is False
    message.refresh_from_db()
    assert (message.status, message.error, message.attempts) == ("queued", "provider down", 1)
    settings.SMS_BACKEND = "notifications.backends.console.ConsoleSMSBackend"
    # Not before its retry time; then it goes.
    assert services.deliver(message.pk) is True
    message.refresh_from_db()
    assert message.status == "queued" and message.retry_at is not None
    assert services.deliver(message.pk, now=message.retry_at) is True
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("sent", 2)
    # Delivered once: a second delivery attempt does nothing.
    assert services.deliver(message.pk) is True
    message.refresh_from_db()
    assert message.attempts == 2


def test_retries_wait_in_the_row_with_growing_delays_then_give_up(
    templates, settings, django_capture_on_commit_callbacks
):
    from notifications.tasks import deliver_message, release_deferred

    settings.SMS_BACKEND = "tests.notifications.backends.FlakyBackend"
    settings.SMS_RETRY_HOURS = 1
    t0 = dt.datetime(2026, 5, 4, 8, 0, tzinfo=dt.UTC)
    message = services.send_message(
        to="+256772123456", template="bill_issued", context={"name": "A", "amount": 1}, now=t0
    )
    assert deliver_message.apply(args=[message.pk, t0.isoformat()]).result is False
    message.refresh_from_db()
    assert message.retry_at == t0 + dt.timedelta(minutes=1)
    assert message.retry_until == t0 + dt.timedelta(hours=1)
    waits = []
    t = t0
    for _ in range(20):
        if message.status != "queued":
            break
        t = message.retry_at
        with django_capture_on_commit_callbacks(execute=True):
            release_deferred.apply(args=[t.isoformat()])
        message.refresh_from_db()
        if message.retry_at:
            waits.append((message.retry_at - t).total_seconds() / 60)
    # 1, 2, 4, 8, 16 then 30-minute waits, until the hour after the first failure is over.
    assert waits == [2, 4, 8, 16]
    assert (message.status, message.attempts) == ("failed", 6)
    assert message.error.startswith("gave up after 6 attempts over 1 h: provider down")
    assert services.backoff(9) == dt.timedelta(minutes=30)


def test_a_permanent_refusal_is_not_retried(templates, settings):
    settings.SMS_BACKEND = "tests.notifications.backends.RejectingBackend"
    message = services.send_message(
        to="+256700000000", template="bill_issued", context={"name": "A", "amount": 1}
    )
    assert services.deliver(message.pk) is True
    message.refresh_from_db()
    assert (message.status, message.error) == ("failed", "invalid recipient")


def test_registering_a_customer_messages_them_in_their_language(
    org, django_capture_on_commit_callbacks
):
    MessageTemplate.objects.create(
        key="customer_registered",
        language="lg",
        body="Tukusanyukidde {{ customer.first_name }} ({{ account }})",
    )
    with django_capture_on_commit_callbacks(execute=True):
        customer = customer_services.customer_create(
            site=org.block_a,
            first_name="Kato",
            last_name="M",
            phone="0772123456",
            language="lg",
        ).customer
    message = Message.objects.get(about=f"customers.customer:{customer.pk}")
    assert message.body == f"Tukusanyukidde Kato ({customer.account_number})"
    assert (message.to, message.status, message.site_id) == (
        "+256772123456",
        "sent",
        org.block_a.pk,
    )


def test_missing_template_never_blocks_registration(org):
    customer = customer_services.customer_create(
        site=org.block_a, first_name="A", last_name="B", phone="0772123456"
    ).customer
    assert customer.pk and not Message.objects.exists()
