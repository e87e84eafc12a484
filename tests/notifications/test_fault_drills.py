"""Fault drill: the SMS provider fails (docs/fault-drills.md, "SMS provider failing").

The provider is a real HTTP server on a local port (``fake_providers``) that is stopped
(connection refused), answers 500, keeps silent past our time-out after taking a message,
or drops the connection after taking it. Time is injected: the retries are driven by
calling the real sweep (``release_deferred``) at the times the rows say they are due.
What each drill shows: messages wait and are retried; none is failed for good within the
retry window; each reaches the provider exactly once (the fake counts per recipient and
text); a message the provider may have taken is not sent again but settled by its
delivery report, or by staff.
"""

from __future__ import annotations

import datetime as dt
import random
import threading

import pytest
from django.db import connection
from django.db.models import Max, Min

from billing import runs
from mcoms.core import clock
from mcoms.core.audit import acting_as
from mcoms.core.models import AuditEvent
from notifications import catalog, ops_queries, services
from notifications.models import Message, MessageTemplate
from notifications.tasks import release_deferred
from tests.billing.test_runs_fixtures import FLAT, OCT, RUN_AT, customer, meter_of, package, usage
from tests.billing.test_runs_fixtures import tariff as make_tariff
from tests.notifications.fake_providers import FakeAfricasTalking, FakeTwilio

AT_BACKEND = "notifications.backends.africastalking.AfricasTalkingSMSBackend"
TWILIO_BACKEND = "notifications.backends.twilio.TwilioSMSBackend"
AT_REPORTS = "/notifications/dlr/africastalking/"
TIMEOUT = 0.5  # our time-out towards the provider in these drills


@pytest.fixture
def at(settings):
    server = FakeAfricasTalking(username="mcoms", api_key="at-key")
    server.hang_seconds = 1.0
    settings.SMS_BACKEND = AT_BACKEND
    settings.AFRICASTALKING_BASE_URL = server.base_url
    settings.AFRICASTALKING_USERNAME = "mcoms"
    settings.AFRICASTALKING_API_KEY = "at-key"
    settings.AFRICASTALKING_SENDER_ID = ""
    settings.SMS_PROVIDER_TIMEOUT = TIMEOUT
    settings.SMS_RETRY_HOURS = 24
    settings.NOTIFICATIONS_CALLBACK_SECRET = ""
    yield server
    server.close()


@pytest.fixture
def twilio(settings):
    server = FakeTwilio(auth_token="tw-token")
    server.hang_seconds = 1.0
    settings.SMS_BACKEND = TWILIO_BACKEND
    settings.TWILIO_BASE_URL = server.base_url
    settings.TWILIO_ACCOUNT_SID = server.account_sid
    settings.TWILIO_AUTH_TOKEN = "tw-token"
    settings.TWILIO_FROM_NUMBER = "+15005550006"
    settings.SMS_PROVIDER_TIMEOUT = TIMEOUT
    settings.NOTIFICATIONS_PUBLIC_URL = "http://testserver"
    settings.NOTIFICATIONS_CALLBACK_SECRET = ""
    yield server
    server.close()


@pytest.fixture
def note(db):
    MessageTemplate.objects.get_or_create(
        key="drill_note", language="en", defaults={"body": "{{ text }}", "essential": True}
    )


def queue_batch(n: int, *, prefix: str = "+2567720000") -> list[Message]:
    return [
        services.send_message(
            to=f"{prefix}{i:02d}",
            template="drill_note",
            context={"text": f"Dear customer {i}, your water pump meter was read."},
        )
        for i in range(n)
    ]


def sweep(at: dt.datetime, capture) -> int:
    """The periodic sweep at ``at``, its deliveries run as the worker would run them."""
    with capture(execute=True):
        return release_deferred.apply(args=[at.isoformat()]).result


def due_times() -> tuple[dt.datetime, dt.datetime]:
    """The earliest and latest retry time of the messages waiting."""
    found = Message.objects.filter(status="queued").aggregate(
        first=Min("retry_at"), last=Max("retry_at")
    )
    return found["first"], found["last"]


def statuses() -> dict[str, int]:
    out: dict[str, int] = {}
    for status in Message.objects.values_list("status", flat=True):
        out[status] = out.get(status, 0) + 1
    return out


def test_provider_down_then_erroring_then_timing_out_loses_and_doubles_nothing(
    at, note, org, client_for, django_capture_on_commit_callbacks
):
    catalog.install_defaults()
    # Bills from a real billing run, and 20 messages to 20 customers, while AT is down.
    at.stop()
    flat = package("shop", make_tariff("flat", FLAT, org))
    with django_capture_on_commit_callbacks(execute=True):
        # Registering them sends their welcome messages too.
        for name in ("Amina", "Bosco", "Cissy"):
            usage(meter_of(customer(org.block_a, flat, first_name=name)), "0.1")
        with acting_as(org.billing):
            run = runs.run_start(site=org.block_a, month=OCT, now=RUN_AT, queue=False)
            runs.preview(run.pk)
            runs.post(run.pk, by=org.billing, now=RUN_AT)
        batch = queue_batch(20)
    bills = list(Message.objects.filter(template_key="bill_issued"))
    welcomes = Message.objects.filter(template_key="customer_registered").count()
    assert len(bills) == 3 and len(batch) == 20 and welcomes == 3
    total = 26
    # Each was tried once as it was queued: connection refused, waiting for a retry.
    assert statuses() == {"queued": total}
    assert all("unreachable" in m.error for m in Message.objects.all())
    assert at.accepted == {}
    assert set(Message.objects.values_list("attempts", flat=True)) == {1}
    # Monitoring sees the oldest message waiting.
    oldest = Message.objects.order_by("created_at").first().created_at
    assert ops_queries.oldest_waiting(oldest + dt.timedelta(minutes=10)) == 600

    # Still down a while: each sweep retries only what is due, with growing waits.
    first, last = due_times()
    assert sweep(first - dt.timedelta(seconds=1), django_capture_on_commit_callbacks) == 0
    assert sweep(last, django_capture_on_commit_callbacks) == total
    assert statuses() == {"queued": total}
    assert set(Message.objects.values_list("attempts", flat=True)) == {2}
    assert due_times() == (last + dt.timedelta(minutes=2),) * 2

    # Back, but answering 500 to everything.
    at.start()
    at.fail_next("server_error", times=total)
    t, _ = due_times()
    assert sweep(t, django_capture_on_commit_callbacks) == total
    assert statuses() == {"queued": total}
    assert all("server error (500)" in m.error for m in Message.objects.all())

    # Back for real, but the first answer never comes (AT took it) and the second
    # connection drops after AT took it: both would be sent twice by a blind retry.
    at.fail_next("hang")
    at.fail_next("drop")
    t, _ = due_times()
    assert t == last + dt.timedelta(minutes=2 + 4)
    assert sweep(t, django_capture_on_commit_callbacks) == total
    assert statuses() == {"sent": total - 2, "unknown": 2}
    unknown = list(Message.objects.filter(status="unknown").order_by("pk"))
    assert "no answer in 0.5 s" in unknown[0].error and "connection lost" in unknown[1].error
    # AT took every message exactly once, the two unknown ones included.
    assert len(at.outbox) == total
    assert set(at.accepted.values()) == {1}
    for m in Message.objects.all():
        assert at.accepted[(m.to, m.body)] == 1

    # Nothing waits, nothing is resent by later sweeps, however late.
    for hours in (1, 25, 72):
        assert sweep(t + dt.timedelta(hours=hours), django_capture_on_commit_callbacks) == 0
    assert len(at.outbox) == total
    assert not Message.objects.filter(status="failed").exists()

    # The delivery reports come in: the unknown ones are settled by theirs
    # (matched on the phone number, as AT's report carries no id of ours).
    client = client_for(org.admin)
    for sent in at.outbox:
        at.delivery_report(client, AT_REPORTS, sent["id"], "Success", phone=sent["to"])
    assert statuses() == {"delivered": total}
    for m in unknown:
        m.refresh_from_db()
        assert m.provider_message_id.startswith("ATXid_") and m.error == ""
    assert sum(at.accepted.values()) == total


def test_an_unknown_message_without_a_report_waits_for_staff_who_settle_it(
    at, note, org, django_capture_on_commit_callbacks
):
    at.fail_next("drop")
    with django_capture_on_commit_callbacks(execute=True):
        [message] = queue_batch(1)
    message.refresh_from_db()
    assert message.status == "unknown" and at.accepted[(message.to, message.body)] == 1
    assert sweep(clock.now() + dt.timedelta(days=2), django_capture_on_commit_callbacks) == 0
    # Staff see it (status "unknown", the admin's filter) and settle it: the customer
    # says it never came, so it is marked failed and sent again — their decision, audited.
    assert services.settle_unknown(message.pk, delivered=False, by=org.admin, note="not received")
    with django_capture_on_commit_callbacks(execute=True):
        assert services.send_again(message.pk, by=org.admin, note="customer asked")
    message.refresh_from_db()
    assert message.status == "sent" and message.attempts == 2
    assert AuditEvent.objects.filter(
        object_type="notifications.message", note__contains="sent again by admin"
    ).exists()


def test_a_provider_down_past_the_retry_window_fails_visibly_and_staff_send_again(
    at, note, org, settings, django_capture_on_commit_callbacks
):
    settings.SMS_RETRY_HOURS = 2
    start = clock.now()
    at.stop()
    with django_capture_on_commit_callbacks(execute=True):
        messages = queue_batch(3)
    until = set(Message.objects.values_list("retry_until", flat=True))
    assert len(until) <= 3 and min(until) >= start + dt.timedelta(hours=2)
    sweeps = 0
    while Message.objects.filter(status="queued").exists():
        assert not Message.objects.filter(status="failed").exists()  # not within the window
        _, t = due_times()
        sweep(t, django_capture_on_commit_callbacks)
        sweeps += 1
        assert sweeps < 20
    assert statuses() == {"failed": 3}
    assert t > min(until) - dt.timedelta(minutes=30)  # the last try came near the end
    failed = Message.objects.first()
    assert failed.error.startswith("gave up after") and "over 2 h" in failed.error
    at.start()
    with django_capture_on_commit_callbacks(execute=True):
        for m in messages:
            assert services.send_again(m.pk, by=org.admin)
    assert statuses() == {"sent": 3}
    assert set(at.accepted.values()) == {1} and len(at.accepted) == 3


def test_twilio_unknown_outcomes_are_settled_by_the_callback_naming_our_message(
    twilio, note, org, django_capture_on_commit_callbacks
):
    from django.test import Client

    twilio.stop()
    with django_capture_on_commit_callbacks(execute=True):
        batch = queue_batch(5)
    assert statuses() == {"queued": 5}
    twilio.start()
    twilio.fail_next("server_error", times=2)
    twilio.fail_next("hang")
    twilio.fail_next("drop")
    sweep(due_times()[1], django_capture_on_commit_callbacks)
    assert statuses() == {"queued": 2, "unknown": 2, "sent": 1}
    sweep(due_times()[1], django_capture_on_commit_callbacks)
    assert statuses() == {"unknown": 2, "sent": 3}
    assert len(twilio.outbox) == 5 and set(twilio.accepted.values()) == {1}
    # Twilio posts each message's status to the callback URL it was given.
    client = Client()
    for sent in twilio.outbox:
        path = twilio.callbacks[sent["id"]].removeprefix("http://testserver")
        assert "?message=" in path
        assert twilio.status_callback(client, path, sent["id"], "delivered").status_code == 200
    assert statuses() == {"delivered": 5}
    assert sweep(clock.now() + dt.timedelta(days=1), django_capture_on_commit_callbacks) == 0
    assert len(twilio.outbox) == len(batch)


def test_an_attempt_whose_worker_died_is_unknown_not_resent(
    at, note, django_capture_on_commit_callbacks
):
    [message] = queue_batch(1)  # its task never ran (no commit callbacks)
    claimed_at = clock.now()
    Message.objects.filter(pk=message.pk).update(
        status="sending", claimed_at=claimed_at, attempts=1
    )
    assert sweep(claimed_at + dt.timedelta(minutes=1), django_capture_on_commit_callbacks) == 0
    assert Message.objects.get(pk=message.pk).status == "sending"
    assert sweep(claimed_at + dt.timedelta(minutes=6), django_capture_on_commit_callbacks) == 0
    message.refresh_from_db()
    assert message.status == "unknown" and "worker" in message.error
    assert at.requests == []


def test_a_message_whose_first_task_was_lost_is_sent_by_the_sweep(
    at, note, django_capture_on_commit_callbacks
):
    [message] = queue_batch(1)  # the broker lost its task
    assert (
        sweep(message.created_at + dt.timedelta(minutes=1), django_capture_on_commit_callbacks) == 0
    )
    assert (
        sweep(message.created_at + dt.timedelta(minutes=3), django_capture_on_commit_callbacks) == 1
    )
    message.refresh_from_db()
    assert message.status == "sent" and len(at.outbox) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_workers_racing_for_the_same_messages_send_each_once(at, note):
    messages = queue_batch(12)
    ids = [m.pk for m in messages]
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        order = ids[:]
        random.Random(seed).shuffle(order)
        try:
            barrier.wait()
            for pk in order:
                services.deliver(pk)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert statuses() == {"sent": 12}
    assert len(at.outbox) == 12 and set(at.accepted.values()) == {1}
    assert set(Message.objects.values_list("attempts", flat=True)) == {1}
