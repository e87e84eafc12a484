"""Monitoring: /metrics, the operations page, thresholds, and alerts to staff.

The figures come from what the platform really stored: a batch posted to the real edge
API (with a malformed reading), messages in the log, billing runs, beat's schedules,
a Celery task that really failed, and the SMS credit read from a fake Africa's Talking
user-data server on a local port.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from prometheus_client.parser import text_string_to_metric_families

from billing.models import BillingRun
from mcoms.core.models import AuditEvent
from mcoms.ops import figures, tasks, watch
from mcoms.ops.models import OpsAlert, ProviderBalance, TaskFailure, Threshold
from metering import partitions, schedules
from metering.models import Gateway
from notifications.models import Message
from tests.metering.edge_fixtures import batch, reading
from tests.ops.fake_balance import FakeUserData

pytestmark = pytest.mark.django_db
TOKEN = "scrape-token-0123456789"


def stamp(ts: dt.datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def families(text: str) -> dict:
    """Parse with Prometheus' own parser: a format error raises."""
    out = {}
    for family in text_string_to_metric_families(text):
        out[family.name] = family
    return out


def sample(fams: dict, name: str, **labels) -> float | None:
    family = fams.get(name)
    for s in family.samples if family else []:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return None


@pytest.fixture
def live(bus, client):
    """A batch through the real edge API now: three readings stored, one malformed."""
    now = timezone.now()
    partitions.ensure_ahead(now=now)
    boundary = now.replace(minute=now.minute // 15 * 15, second=0, microsecond=0)
    first = boundary - dt.timedelta(minutes=30)
    body = batch(
        reading(address=10, ts=stamp(first), energy=100.0),
        reading(address=10, ts=stamp(first + dt.timedelta(minutes=15)), energy=100.1),
        reading(address=100, ts=stamp(first), energy=500.0),
        reading(address=10, ts="yesterday", energy=1.0),
    )
    response = client.post(
        "/api/v1/edge/readings",
        json.dumps(body),
        content_type="application/json",
        **bus.headers(),
    )
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 3
    return bus


def test_metrics_need_the_token_or_an_admin(client, client_for, org, settings):
    settings.METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client_for(org.site_manager).get("/metrics").status_code == 401
    ok = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert ok.status_code == 200
    assert ok["Content-Type"].startswith("text/plain; version=0.0.4")
    assert client_for(org.admin).get("/metrics").status_code == 200
    settings.METRICS_TOKEN = ""  # no token configured: a bearer header opens nothing
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401


def test_metrics_show_ingest_beat_gateways_messages_and_billing(live, client, org, settings):
    settings.METRICS_TOKEN = TOKEN
    now = timezone.now()
    schedules.sync()
    PeriodicTask.objects.filter(name="notifications.release_deferred").update(
        last_run_at=now - dt.timedelta(hours=1)
    )
    PeriodicTask.objects.exclude(name="notifications.release_deferred").update(last_run_at=now)
    for status in ("failed", "failed", "sent"):
        Message.objects.create(
            channel="sms",
            to="+256772000001",
            body="x",
            status=status,
            created_at=now - dt.timedelta(hours=2),
        )
    BillingRun.objects.create(
        site=org.block_a,
        period_start=dt.date(2026, 9, 1),
        period_end=dt.date(2026, 10, 1),
        status=BillingRun.Status.PREVIEWING,
        created_at=now - dt.timedelta(hours=5),
        updated_at=now - dt.timedelta(hours=3),
    )

    text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    fams = families(text)

    assert sample(fams, "mcoms_readings_accepted_last_hour") == 3
    assert sample(fams, "mcoms_edge_batches_last_hour") == 1
    assert sample(fams, "mcoms_readings_rejected_last_hour", reason="malformed") == 1
    assert sample(fams, "mcoms_readings_rejected_last_hour", reason="no_meter") == 0
    # Delay from the interval end to storage: 15 to 45 minutes for these readings.
    p95 = sample(fams, "mcoms_ingest_latency_seconds", quantile="0.95")
    assert 15 * 60 <= p95 <= 45 * 60 + 60
    assert sample(fams, "mcoms_ingest_latency_samples") == 3
    # Beat: every schedule's age; the one-minute task that has not run for an hour is late.
    age = sample(fams, "mcoms_beat_last_run_age_seconds", schedule="notifications.release_deferred")
    assert 3590 <= age <= 3700
    assert (
        sample(fams, "mcoms_beat_interval_seconds", schedule="notifications.release_deferred") == 60
    )
    assert sample(fams, "mcoms_beat_overdue_schedules") == 1
    # The fixture's gateway has not sent a heartbeat since it was installed in April.
    assert sample(fams, "mcoms_gateways", state="offline") == 1
    assert sample(fams, "mcoms_messages_failed_last_day") == 2
    assert sample(fams, "mcoms_messages_last_day", status="sent") == 1
    assert sample(fams, "mcoms_billing_runs", status="previewing") == 1
    assert sample(fams, "mcoms_billing_runs_stuck") == 1
    assert sample(fams, "mcoms_celery_broker_up") in (0, 1)
    assert sample(fams, "mcoms_check_failing", check="beat_overdue_schedules") == 1
    assert sample(fams, "mcoms_check_failing", check="gateways_offline") == 1
    assert sample(fams, "mcoms_check_failing", check="billing_runs_stuck") == 1
    assert sample(fams, "mcoms_check_failing", check="messages_failed_per_day") == 0

    # After a heartbeat the gateway is online again.
    Gateway.objects.filter(pk=live.gateway.pk).update(last_heartbeat_at=now)
    fams = families(client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode())
    assert sample(fams, "mcoms_gateways", state="offline") == 0


def test_queue_depth_counts_waiting_tasks_and_a_dead_broker_is_none():
    from kombu import Connection

    from mcoms.celery import app

    queue = f"ops-test-{uuid.uuid4().hex[:8]}"
    with app.connection_for_write() as conn:
        producer = conn.Producer()
        for n in range(3):
            producer.publish({"n": n}, routing_key=queue, declare=[_queue(queue)])
    try:
        assert figures.queue_depth(queue=queue) == 3
    finally:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge(queue)
    assert figures.queue_depth(url="redis://127.0.0.1:9/0") is None
    assert Connection  # kombu is Celery's own transport layer


def _queue(name):
    from kombu import Queue

    return Queue(name, routing_key=name)


def test_a_failed_task_is_counted(org, settings, tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the archive folder should be")
    settings.READINGS_ARCHIVE_DIR = blocked / "readings"
    partitions.ensure_months([dt.date(2020, 1, 1)])
    # Run through Celery's tracer as a worker does (not re-raised into the caller).
    result = _archive_with_rows(dt.date(2020, 1, 1))
    assert result.failed() and isinstance(result.result, OSError)
    failure = TaskFailure.objects.get()
    assert failure.task == "mcoms.ops.tasks.archive_old_readings"
    report = figures.collect()
    assert (
        report.metric("mcoms_celery_task_failures_last_hour").value(
            task="mcoms.ops.tasks.archive_old_readings"
        )
        == 1
    )


def _archive_with_rows(month):
    from metering.models import Reading
    from tests import factories

    meter = factories.meter()
    Reading.objects.create(
        meter=meter,
        ts=dt.datetime.combine(month, dt.time(1), tzinfo=dt.UTC),
        energy_kwh=Decimal("1"),
        received_at=timezone.now(),
    )
    return tasks.archive_old_readings.apply(throw=False)


@pytest.fixture
def at_balance(settings):
    fake = FakeUserData(username="mcoms", api_key="at-key", balance="KES 120.5000")
    settings.SMS_BACKEND = "notifications.backends.africastalking.AfricasTalkingSMSBackend"
    settings.AFRICASTALKING_BASE_URL = fake.base_url
    settings.AFRICASTALKING_USERNAME = "mcoms"
    settings.AFRICASTALKING_API_KEY = "at-key"
    yield fake
    fake.close()


def test_sms_credit_is_read_from_the_provider(org, at_balance, settings, client):
    assert tasks.check_sms_balance.delay().get() == "KES 120.5000"
    row = ProviderBalance.objects.get(provider="africastalking")
    assert (row.amount, row.currency, row.error) == (Decimal("120.5"), "KES", "")
    assert at_balance.requests[-1]["query"] == {"username": "mcoms"}
    assert at_balance.requests[-1]["key"] == "at-key"
    settings.METRICS_TOKEN = TOKEN
    fams = families(client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode())
    assert sample(fams, "mcoms_sms_balance", provider="africastalking", currency="KES") == 120.5
    assert sample(fams, "mcoms_sms_balance_check_ok", provider="africastalking") == 1

    # A failed check keeps the last amount and says why.
    at_balance.fail = 500
    watch.check_sms_balance()
    row.refresh_from_db()
    assert row.amount == Decimal("120.5") and "500" in row.error
    settings.AFRICASTALKING_API_KEY = "wrong"
    at_balance.fail = None
    watch.check_sms_balance()
    row.refresh_from_db()
    assert "401" in row.error


def _only_sms_check(settings):
    """Thresholds that let every other check pass in an empty test database."""
    # (The test's own alerts stay queued: no worker sends them, so they would age.)
    for key in ("gateways_offline", "beat_overdue_schedules", "messages_waiting_seconds"):
        Threshold.objects.create(key=key, value=Decimal(10**6), updated_at=timezone.now())


def test_low_credit_tells_admins_once_then_again_later_and_when_fixed(org, at_balance, settings):
    _only_sms_check(settings)
    org.admin.phone = "+256772555001"
    org.admin.save()
    watch.check_sms_balance()
    t0 = timezone.now()

    first = watch.run(now=t0)
    assert "sms_balance" in first["raised"]
    told = Message.objects.filter(
        template_key=watch.FAILING_TEMPLATE, to="+256772555001", about="ops.check:sms_balance"
    )
    assert told.count() == 1
    assert "SMS provider credit is 120.50" in told.get().body
    assert OpsAlert.objects.get(key="sms_balance").firing

    # Five minutes later, still low: nobody is told again.
    again = watch.run(now=t0 + dt.timedelta(minutes=5))
    assert "sms_balance" not in again["raised"] + again["repeated"]
    assert told.count() == 1
    # Still low after the repeat interval: told once more.
    later = watch.run(now=t0 + dt.timedelta(hours=6, minutes=1))
    assert "sms_balance" in later["repeated"]
    assert told.count() == 2

    # Topped up: cleared, and admins hear it is back to normal.
    at_balance.balance = "KES 5000.0000"
    watch.check_sms_balance()
    cleared = watch.run(now=t0 + dt.timedelta(hours=7))
    assert "sms_balance" in cleared["cleared"]
    assert not OpsAlert.objects.get(key="sms_balance").firing
    assert Message.objects.filter(template_key=watch.RECOVERED_TEMPLATE).count() == 1
    # Non-admin staff are not messaged about operations.
    assert not Message.objects.filter(to=org.site_manager.email).exists()


def test_beat_stopping_is_told_by_email_to_an_admin_without_phone(org, settings):
    settings.SMS_BACKEND = "notifications.backends.console.ConsoleSMSBackend"
    Threshold.objects.create(
        key="gateways_offline", value=Decimal(10**6), updated_at=timezone.now()
    )
    schedules.sync()
    now = timezone.now()
    PeriodicTask.objects.update(last_run_at=now - dt.timedelta(days=3))
    done = watch.run(now=now)
    assert done["raised"] == ["beat_overdue_schedules"]
    mail = Message.objects.get(template_key=watch.FAILING_TEMPLATE)
    assert (mail.channel, mail.to) == ("email", org.admin.email)
    assert "metering.check_missing_reads" in mail.body


def test_the_operations_page_for_admins(live, client_for, org):
    Threshold.objects.create(key="gateways_offline", value=Decimal(5), updated_at=timezone.now())
    page = client_for(org.admin).get("/ops/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-check="gateways_offline"' in html
    assert '<tr class="ok" data-check="gateways_offline">' in html  # 1 offline, limit 5
    assert 'value="5"' in html
    assert '<tr class="bad" data-check="billing_runs_stuck">' not in html
    assert client_for(org.site_manager).get("/ops/").status_code == 403
    assert (
        client_for(org.billing).post("/ops/thresholds/", {"gateways_offline": "0"}).status_code
        == 403
    )

    admin = client_for(org.admin)
    response = admin.post("/ops/thresholds/", {"gateways_offline": "0", "sms_balance": "2000"})
    assert response.status_code == 302
    assert figures.thresholds()["gateways_offline"] == 0
    assert figures.thresholds()["sms_balance"] == 2000
    html = admin.get("/ops/").content.decode()
    assert '<tr class="bad" data-check="gateways_offline">' in html
    assert "kla-block-a" in html  # the offline gateway is named
    assert AuditEvent.objects.filter(
        note__contains="operations threshold gateways_offline"
    ).exists()

    bad = admin.post(
        "/ops/thresholds/", {"sms_balance": "lots", "gateways_offline": "-1"}, follow=True
    )
    text = bad.content.decode()
    assert "is not a number" in text and "give a number from 0 up" in text
    assert figures.thresholds()["sms_balance"] == 2000
