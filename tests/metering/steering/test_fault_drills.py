"""Fault drill: Calin's head-end unreachable (docs/fault-drills.md, "Calin unreachable").

The head-end is the fake Calin server on a local port: ``fake.stop()`` closes its port
(connection refused), ``fake.start()`` opens it again. Time is injected: the steps run
through the real sweep (``engine.sweep``, as the periodic task runs it) at the times the
command rows say they are due. What each drill shows: commands and remote reads wait and
are tried again; nothing is sent after a disconnection expired; a reconnection that cannot
go is escalated and goes when Calin is back; a command is sent exactly once (the fake
counts relay operations per meter); "unreachable" and "meter offline" stay apart.
"""

from __future__ import annotations

import datetime as dt

import pytest

from mcoms.core.models import AuditEvent
from metering.steering import engine, remote_reads, services
from metering.steering.models import Command, RemoteRead
from notifications.models import Message
from tests.metering.steering.conftest import T0, autonomy

S = Command.Status
CONTROL = "/COMM_RemoteControl"
HOUR = dt.timedelta(hours=1)


@pytest.fixture
def level3(org):
    return autonomy(org.block_a, 3)


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    """Run what the sweep leaves for after its commit (staff messages), as a worker would."""

    def run(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return run


def arrears_disconnect(grid, at=T0) -> Command:
    return services.submit(
        customer_id=grid.customer.pk,
        meter=None,
        action="disconnect",
        reason="arrears",
        source="collections",
        notice_ends_at=at - dt.timedelta(days=1),
        source_ref="supplyrequest:1",
        now=at,
    )


def paid_reconnect(grid, at) -> Command:
    return services.submit(
        customer_id=grid.customer.pk,
        meter=None,
        action="reconnect",
        reason="paid",
        source="billing",
        source_ref="supplyrequest:2",
        now=at,
    )


def sweep_until(until: dt.datetime, capture, *, start: dt.datetime = T0) -> dt.datetime:
    """Sweep at each moment something is due, from ``start`` up to ``until``."""
    t = start
    for _ in range(2000):
        capture(engine.sweep, now=t)
        capture(remote_reads.sweep, now=t)
        due = [
            *Command.objects.filter(status__in=engine.ACTIVE).values_list(
                "next_attempt_at", flat=True
            ),
            *RemoteRead.objects.filter(status="pending").values_list("next_poll_at", flat=True),
        ]
        due = [d for d in due if d is not None and d > t]
        if not due or min(due) > until:
            return t
        t = min(due)
    raise AssertionError("the sweep never got to the end")


def staff_told(command: Command) -> list[Message]:
    return list(
        Message.objects.filter(
            about=f"steering.command:{command.pk}", template_key="steering_command_stuck"
        )
    )


def test_commands_and_reads_wait_while_calin_is_down_and_go_once_when_it_is_back(
    fake, grid, level3, capture, settings
):
    fake.stop()
    command = arrears_disconnect(grid)
    read = remote_reads.request(grid.calin, "Voltage", now=T0 + dt.timedelta(minutes=10))
    assert read.status == "pending" and "head-end unreachable" in read.error
    sweep_until(T0 + dt.timedelta(minutes=20), capture)
    command.refresh_from_db()
    # Far more tries than CALIN_MAX_ATTEMPTS, none given up: Calin is down, not the meter.
    assert command.status == S.SENDING and command.attempts > settings.CALIN_MAX_ATTEMPTS
    assert command.fault == "unreachable" and "head-end unreachable" in command.last_error
    assert command.expires_at == T0 + dt.timedelta(seconds=settings.CALIN_SEND_EXPIRES_SECONDS)
    read.refresh_from_db()
    assert read.status == "pending" and read.task_no == ""
    assert fake.operations(grid.calin.serial) == []

    fake.start()
    t = sweep_until(T0 + 2 * HOUR, capture, start=T0 + dt.timedelta(minutes=20))
    command.refresh_from_db()
    read.refresh_from_db()
    assert command.status == S.DONE and command.confirmed_relay == "off"
    assert fake.operations(grid.calin.serial) == ["Switch Off"]  # exactly once
    assert read.status == "done" and read.value == "231.4"
    sweep_until(T0 + 48 * HOUR, capture, start=t)
    assert fake.operations(grid.calin.serial) == ["Switch Off"]


def test_a_remote_read_gives_up_as_unreachable_after_the_limit(fake, grid, capture, settings):
    fake.stop()
    read = remote_reads.request(grid.calin, "Voltage", now=T0)
    sweep_until(T0 + HOUR, capture)
    read.refresh_from_db()
    assert read.status == "failed" and read.error.startswith("head-end unreachable")
    assert read.finished_at >= T0 + dt.timedelta(seconds=settings.CALIN_GIVE_UP_SECONDS)


def test_a_disconnect_expires_unsent_and_nothing_fires_when_calin_is_back(
    fake, grid, level3, capture, settings, org
):
    fake.stop()
    command = arrears_disconnect(grid)
    expiry = T0 + dt.timedelta(seconds=settings.CALIN_SEND_EXPIRES_SECONDS)
    sweep_until(expiry - dt.timedelta(minutes=1), capture)
    command.refresh_from_db()
    assert command.status == S.SENDING  # still trying within the window
    sweep_until(expiry + HOUR, capture, start=command.next_attempt_at)
    command.refresh_from_db()
    assert command.status == S.EXPIRED and command.fault == "unreachable"
    assert command.last_error.startswith("expired: the head-end could not be reached for 4 h")
    assert command.finished_at >= expiry and command.next_attempt_at is None
    assert AuditEvent.objects.filter(
        object_type="steering.command", object_id=str(command.pk), note__startswith="expired"
    ).exists()
    told = staff_told(command)
    assert {m.to for m in told} == {org.site_manager.email, org.supervisor.email}
    assert "not sent" in told[0].body and grid.calin.serial in told[0].body
    # The caller (billing) reads a finished, not-done outcome with the reason.
    outcome = services.outcome_of("supplyrequest:1")
    assert outcome["finished"] and not outcome["done"] and outcome["status"] == "expired"

    # Days later Calin is back: the stale disconnection never fires.
    fake.start()
    sweep_until(T0 + 72 * HOUR, capture, start=expiry + 2 * HOUR)
    assert fake.operations(grid.calin.serial) == []
    assert fake.meters[grid.calin.serial].relay_on is True


def test_a_payment_cancels_a_disconnect_calin_never_took(fake, grid, level3, capture):
    fake.stop()
    disconnect = arrears_disconnect(grid)
    sweep_until(T0 + HOUR, capture)
    disconnect.refresh_from_db()
    assert disconnect.status == S.SENDING and disconnect.task_no == ""
    # The customer pays: billing asks for the reconnection.
    reconnect = paid_reconnect(grid, T0 + HOUR + dt.timedelta(minutes=1))
    disconnect.refresh_from_db()
    assert disconnect.status == S.CANCELLED
    assert "before the head-end took it" in disconnect.decision
    fake.start()
    sweep_until(T0 + 4 * HOUR, capture, start=T0 + HOUR + dt.timedelta(minutes=1))
    reconnect.refresh_from_db()
    assert reconnect.status == S.DONE and reconnect.confirmed_relay == "on"
    # The supply was never cut: the relay got at most the reconnection.
    assert "Switch Off" not in fake.operations(grid.calin.serial)
    assert fake.meters[grid.calin.serial].relay_on is True


def test_a_reconnect_that_cannot_be_sent_is_escalated_and_goes_when_calin_is_back(
    fake, grid, level3, capture, settings, org
):
    # Disconnected for arrears yesterday, with Calin up.
    yesterday = T0 - 24 * HOUR
    cut = arrears_disconnect(grid, at=yesterday)
    sweep_until(yesterday + HOUR, capture, start=yesterday)
    cut.refresh_from_db()
    assert cut.status == S.DONE and fake.meters[grid.calin.serial].relay_on is False
    # Today the customer pays, and Calin is down.
    fake.stop()
    reconnect = paid_reconnect(grid, T0)
    expiry = T0 + dt.timedelta(seconds=settings.CALIN_SEND_EXPIRES_SECONDS)
    sweep_until(expiry + 2 * HOUR, capture)
    reconnect.refresh_from_db()
    # Not expired: escalated once, still trying.
    assert reconnect.status == S.SENDING and reconnect.escalated_at >= expiry
    assert reconnect.fault == "unreachable"
    told = staff_told(reconnect)
    assert len(told) == 2 and "still trying" in told[0].body
    assert AuditEvent.objects.filter(
        object_type="steering.command", object_id=str(reconnect.pk), note__startswith="escalated"
    ).exists()
    fake.start()
    sweep_until(expiry + 4 * HOUR, capture, start=reconnect.next_attempt_at)
    reconnect.refresh_from_db()
    assert reconnect.status == S.DONE and reconnect.confirmed_relay == "on"
    assert fake.operations(grid.calin.serial) == ["Switch Off", "Switch On"]
    assert len(staff_told(reconnect)) == 2  # told once, not at every try


def test_a_switch_calin_took_before_going_down_is_not_sent_again(
    fake, grid, level3, capture, settings
):
    settings.CALIN_TIMEOUT = 0.5
    fake.slow_seconds = 1.0
    fake.fail_next("timeout", CONTROL)
    command = arrears_disconnect(grid)
    capture(engine.sweep, now=T0)  # Calin takes it; its answer comes too late
    command.refresh_from_db()
    assert command.status == S.SENDING and command.send_started_at == T0
    [task_no] = list(fake.tasks)
    fake._poll(task_no), fake._poll(task_no)  # the meter switches meanwhile
    assert fake.meters[grid.calin.serial].relay_on is False
    fake.stop()
    sweep_until(T0 + HOUR, capture, start=command.next_attempt_at)
    command.refresh_from_db()
    # It cannot read the relay: it waits rather than switching blindly again.
    assert command.status == S.SENDING and "could not be read" in command.last_error
    assert command.attempts == 1
    fake.start()
    sweep_until(T0 + 2 * HOUR, capture, start=command.next_attempt_at)
    command.refresh_from_db()
    assert command.status == S.DONE and command.confirmed_relay == "off"
    assert fake.operations(grid.calin.serial) == ["Switch Off"]


def test_a_meter_offline_is_told_apart_from_calin_unreachable(
    fake, grid, level3, capture, settings
):
    settings.CALIN_MAX_ATTEMPTS = 1
    fake.fail_next("stuck", CONTROL)
    fake.fail_next("stuck", "/COMM_RemoteReading", times=5)
    command = arrears_disconnect(grid)
    sweep_until(T0 + 2 * HOUR, capture)
    command.refresh_from_db()
    # Calin answered all along; the meter never did the task.
    assert command.status == S.FAILED and command.fault == "meter_offline"
    assert command.last_error.startswith("meter offline")
    assert fake.operations(grid.calin.serial) == ["Switch Off"]
    read = remote_reads.request(grid.calin, "Voltage", now=T0 + 2 * HOUR)
    sweep_until(T0 + 3 * HOUR, capture, start=T0 + 2 * HOUR)
    read.refresh_from_db()
    assert read.status == "failed" and read.task_no
    assert read.error == "the meter did not answer in time (offline?)"
