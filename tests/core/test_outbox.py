"""The outbox (tasks kept until the broker takes them) and the bound on lost workers.

The fault drills run them against real Redis and workers (tests/ops/test_drill_*.py);
these pin the rules on a broker that refuses connections (a closed port).
"""

from __future__ import annotations

import datetime as dt
import socket
import time

import pytest
from django.db import transaction

from mcoms.celery import app
from mcoms.core import outbox, taskbase
from mcoms.core.models import OutboxTask, TaskDelivery
from metering.tasks import refresh_rollups

pytestmark = pytest.mark.django_db
ARGS = ([1], "2026-04-04T12:00:00+00:00", "2026-04-04T13:00:00+00:00")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def broker_down(monkeypatch, settings):
    """Tasks go to a broker (not run in-process), one nothing listens for."""
    down = f"redis://127.0.0.1:{closed_port()}/0"
    monkeypatch.setattr(app.conf, "broker_url", down)
    monkeypatch.setenv("CELERY_BROKER_URL", down)
    monkeypatch.setattr(app.conf, "task_always_eager", False)
    monkeypatch.setattr(app.conf, "broker_transport_options", settings.BROKER_REDIS_OPTIONS)
    # Connections to it, not the cached ones to the real broker (put back afterwards).
    monkeypatch.setattr(app, "_pool", None)
    monkeypatch.setattr(app.amqp, "_producer_pool", None)


def test_a_task_is_kept_when_the_broker_is_down_and_the_caller_does_not_fail(
    broker_down, django_capture_on_commit_callbacks
):
    began = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        outbox.enqueue(refresh_rollups, ARGS)
    assert time.monotonic() - began < 5
    row = OutboxTask.objects.get()
    assert (row.task, row.args, row.attempts) == ("metering.tasks.refresh_rollups", list(ARGS), 1)
    assert "OperationalError" in row.last_error

    # The sweep tries again, stops at the broker error, keeps the row.
    report = outbox.sweep(now=row.created_at + dt.timedelta(minutes=5))
    assert report == {"sent": 0, "failed": 1, "waiting": 1}
    assert OutboxTask.objects.get().attempts == 2


def test_a_rolled_back_transaction_queues_nothing(django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        outbox.enqueue(refresh_rollups, ARGS)
        raise RuntimeError("rolled back")
    assert not callbacks and not OutboxTask.objects.exists()


def test_the_sweep_publishes_what_is_left_and_forgets_it(monkeypatch):
    sent = []
    monkeypatch.setattr(refresh_rollups, "apply_async", lambda *a, **kw: sent.append(a))
    at = dt.datetime(2026, 4, 4, 12, tzinfo=dt.UTC)
    OutboxTask.objects.create(task=refresh_rollups.name, args=list(ARGS), created_at=at)
    fresh = OutboxTask.objects.create(task=refresh_rollups.name, args=list(ARGS),
                                      created_at=at + dt.timedelta(minutes=10))
    # Only rows older than OUTBOX_SWEEP_AFTER_SECONDS: a fresh one is being published now.
    report = outbox.sweep(now=at + dt.timedelta(minutes=10, seconds=30))
    assert report == {"sent": 1, "failed": 0, "waiting": 1}
    assert list(OutboxTask.objects.values_list("pk", flat=True)) == [fresh.pk]
    assert sent == [(list(ARGS), {})]


def test_the_best_effort_publish_never_fails_the_caller(
    broker_down, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        outbox.publish(refresh_rollups, ARGS)
    assert not OutboxTask.objects.exists()


def test_a_task_that_keeps_losing_its_worker_is_stopped(settings):
    settings.TASK_WORKER_LOST_LIMIT = 2
    # Three deliveries of one message, the first two killed mid-task (never finished).
    taskbase._started("billing.tasks.post_run", "abc", 0)
    taskbase._started("billing.tasks.post_run", "abc", 0)
    with pytest.raises(taskbase.WorkerLostLimit, match="lost 2 times"):
        taskbase._started("billing.tasks.post_run", "abc", 0)
    row = TaskDelivery.objects.get()
    assert (row.started, row.finished) == (3, 1)
    # A retry is a new try with a count of its own; a finished run never counts as lost.
    taskbase._started("billing.tasks.post_run", "abc", 1)
    taskbase._finished("abc", 1)
    taskbase._started("billing.tasks.post_run", "abc", 1)  # e.g. an ETA copy, run again
    assert TaskDelivery.objects.get(retries=1).started == 2


def test_the_outbox_backlog_is_a_metric():
    from mcoms.ops import figures

    at = dt.datetime(2026, 4, 4, 12, tzinfo=dt.UTC)
    OutboxTask.objects.create(task=refresh_rollups.name, args=list(ARGS), created_at=at)
    report = figures.collect(now=at + dt.timedelta(minutes=3))
    by_name = {m.name: m for m in report.metrics}
    assert by_name["mcoms_outbox_waiting"].value() == 1
    assert by_name["mcoms_outbox_oldest_seconds"].value() == 180


def test_rollups_are_tried_again_when_the_database_connection_is_lost(monkeypatch):
    from django.db import OperationalError

    from metering import rollups

    calls = []

    def refresh(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr(rollups, "refresh", refresh)
    result = refresh_rollups.apply(ARGS, throw=False)  # in-process, the retry included
    assert result.successful()
    assert len(calls) == 2
