"""Command reliability: task-and-poll, read-back, retries with backoff, restarts, one in flight."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, transaction

from mcoms.core.models import AuditEvent
from metering.steering import calin, engine, services
from metering.steering.models import Command, MeterState
from tests.metering.steering.conftest import T0, autonomy

S = Command.Status
CONTROL = "/COMM_RemoteControl"


def seconds(n: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=n)


def disconnect(grid, *, reason="prepaid_empty", **kwargs) -> Command:
    return services.submit(
        customer_id=grid.customer.pk,
        meter=None,
        action="disconnect",
        reason=reason,
        source="billing",
        now=T0,
        **kwargs,
    )


def run(command: Command, *, start: float = 0, step: float = 15, limit: float = 7200) -> float:
    """Sweep every ``step`` seconds until the command is finished; returns the time reached."""
    t = start
    while t <= limit:
        engine.sweep(now=seconds(t))
        command.refresh_from_db()
        if not command.is_open:
            return t
        t += step
    raise AssertionError(f"still {command.status} after {limit} s")


@pytest.fixture
def level3(org):
    return autonomy(org.block_a, 3)


def test_disconnect_is_sent_polled_and_confirmed_by_reading_the_relay(fake, grid, level3):
    command = disconnect(grid)
    assert command.status == S.WAITING and command.meter == grid.calin
    assert command.decided_by == "steering policy" and "level 3" in command.decision

    engine.sweep(now=T0)
    command.refresh_from_db()
    assert command.status == S.SENT and command.task_no
    assert fake.calls(CONTROL) == [
        {**fake.calls(CONTROL)[0], "MeterNo": grid.calin.serial, "DataItem": "Switch Off"}
    ]
    # The first poll waits for the delay.
    assert engine.sweep(now=seconds(10)) == 0
    assert fake.calls("/COMM_RemoteControlTask") == []
    engine.sweep(now=seconds(15))  # pending
    command.refresh_from_db()
    assert command.status == S.SENT and command.next_attempt_at == seconds(45)
    engine.sweep(now=seconds(45))  # done: read the relay back
    command.refresh_from_db()
    assert command.status == S.CONFIRMING and command.read_purpose == "confirm"
    assert fake.calls("/COMM_RemoteReading")[0]["DataItem"] == "Current Credit Register"
    run(command, start=60)
    assert command.status == S.DONE and command.confirmed_relay == "off"
    assert fake.meters[grid.calin.serial].relay_on is False
    state = MeterState.objects.get(meter=grid.calin)
    assert state.relay == "off" and state.relay_source == "remote reading"
    assert len(fake.calls(CONTROL)) == 1
    notes = list(
        AuditEvent.objects.filter(object_type="steering.command", object_id=str(command.pk))
        .order_by("id")
        .values_list("actor_label", "note")
    )
    assert "prepaid_empty" in notes[0][1] and "go" in notes[0][1]
    assert any(
        label == "steering engine" and "confirmed: relay off" in note for label, note in notes
    )


def test_at_most_one_command_in_flight_per_meter_is_a_database_rule(grid):
    base = dict(
        meter=grid.calin,
        site=grid.calin.site,
        action="disconnect",
        reason="safety",
        source="staff",
        created_at=T0,
    )
    Command.objects.create(status=S.SENT, **base)
    Command.objects.create(status=S.DONE, **base)
    with pytest.raises(IntegrityError), transaction.atomic():
        Command.objects.create(status=S.CONFIRMING, **base)


def test_a_second_command_waits_until_the_first_is_finished(fake, grid, level3, org):
    first = disconnect(grid)
    engine.sweep(now=T0)
    second = services.force(
        meter=grid.calin,
        action="reconnect",
        reason="customer_request",
        by=org.site_manager,
        note="paid at the office",
        now=seconds(1),
    )
    assert second.status == S.WAITING
    engine.sweep(now=seconds(1))
    second.refresh_from_db()
    assert second.status == S.WAITING and second.last_error == "busy"
    assert len(fake.calls(CONTROL)) == 1
    run(first, start=15)
    assert first.status == S.DONE
    t = run(second, start=120)
    assert second.status == S.DONE and second.confirmed_relay == "on" and t > 120
    assert [c["DataItem"] for c in fake.calls(CONTROL)] == ["Switch Off", "Switch On"]


def test_a_restarted_worker_finishes_a_sent_command_without_sending_again(fake, grid, level3):
    command = disconnect(grid)
    engine.step(command.pk, now=T0)
    command.refresh_from_db()
    assert command.status == S.SENT
    # The worker dies: its queued countdown is lost. A new process starts much later;
    # the sweeper finds the row due and carries on from the database alone.
    engine.sweep(now=seconds(600), client=calin.Client())
    run(command, start=630)
    assert command.status == S.DONE and command.confirmed_relay == "off"
    assert len(fake.calls(CONTROL)) == 1


def test_a_send_whose_answer_was_lost_is_checked_before_switching_again(fake, grid, level3):
    command = disconnect(grid)
    engine.sweep(now=T0)
    command.refresh_from_db()
    task_no = command.task_no
    # The switch happens at the meter, but the worker died before recording the task:
    # the row still says "sending", with the attempt's start written before the call.
    client = calin.Client()
    client.poll("Control", task_no)
    client.poll("Control", task_no)
    assert fake.meters[grid.calin.serial].relay_on is False
    Command.objects.filter(pk=command.pk).update(
        status=S.SENDING, task_no="", sent_at=None, next_attempt_at=seconds(5)
    )
    run(command, start=180)
    assert command.status == S.DONE and command.confirmed_relay == "off"
    assert len(fake.calls(CONTROL)) == 1  # read back, found off: not sent twice
    assert fake.calls("/COMM_RemoteReading")


def test_a_send_whose_answer_was_lost_is_sent_again_when_the_relay_did_not_move(fake, grid, level3):
    command = disconnect(grid)
    Command.objects.filter(pk=command.pk).update(
        status=S.SENDING, send_started_at=T0, attempts=1, next_attempt_at=T0
    )
    run(command, start=180)
    assert command.status == S.DONE
    assert len(fake.calls(CONTROL)) == 1 and len(fake.calls("/COMM_RemoteReading")) == 2


def test_gateway_errors_are_retried_with_backoff(fake, grid, level3):
    fake.fail_next("html", CONTROL)
    command = disconnect(grid)
    engine.sweep(now=T0)
    command.refresh_from_db()
    assert command.status == S.SENDING and command.attempts == 1
    assert "gateway error" in command.last_error
    assert command.next_attempt_at == seconds(30)
    assert engine.sweep(now=seconds(20)) == 0
    assert len(fake.calls(CONTROL)) == 1
    run(command, start=30)
    assert command.status == S.DONE and len(fake.calls(CONTROL)) == 2
    assert engine.backoff(2) == dt.timedelta(seconds=60)
    assert engine.backoff(20) == dt.timedelta(minutes=30)


def test_a_task_failing_at_the_meter_is_retried_then_given_up(fake, grid, level3):
    fake.fail_next("task_fails", CONTROL, times=3)
    command = disconnect(grid)
    run(command, step=15)
    assert command.status == S.FAILED and command.attempts == 3
    assert "failed at the meter" in command.last_error
    assert AuditEvent.objects.filter(
        object_type="steering.command", note__startswith="gave up after 3 attempts"
    ).exists()
    assert len(fake.calls(CONTROL)) == 3
    assert fake.meters[grid.calin.serial].relay_on is True


def test_a_rejected_task_is_not_retried(fake, grid, level3):
    fake.fail_next("reject", "/COMM_RemoteControlTask")
    command = disconnect(grid)
    run(command)
    assert command.status == S.FAILED and "rejected" in command.last_error
    engine.sweep(now=seconds(7200))
    assert len(fake.calls(CONTROL)) == 1


def test_a_task_pending_past_the_limit_is_settled_by_reading_the_relay(fake, grid, level3):
    fake.fail_next("stuck", CONTROL)
    command = disconnect(grid)
    engine.sweep(now=T0)
    fake.meters[grid.calin.serial].relay_on = False  # it switched; the task never said so
    t = run(command, step=60)
    assert t >= 900  # polled until the give-up limit
    assert command.status == S.DONE and len(fake.calls(CONTROL)) == 1


def test_the_daily_relay_status_confirms_when_the_read_cannot_start(fake, grid, level3):
    command = disconnect(grid)
    engine.sweep(now=T0)
    engine.sweep(now=seconds(15))
    fake.fail_next("html", "/COMM_RemoteReading")
    run(command, start=45)
    assert command.status == S.DONE
    assert MeterState.objects.get(meter=grid.calin).relay_source == "daily data"
    assert fake.calls("/COMM_DailyData")


def test_submitting_starts_the_first_step_after_commit(
    fake, grid, level3, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        command = services.submit(
            customer_id=grid.customer.pk,
            meter=None,
            action="disconnect",
            reason="prepaid_empty",
        )
    command.refresh_from_db()
    assert command.status == S.SENT and len(fake.calls(CONTROL)) == 1
