"""Steering's Celery tasks and their schedules."""

from __future__ import annotations

import datetime as dt

from metering import schedules
from metering.steering import services, tasks
from metering.steering.models import Command, Concentrator
from tests.metering.steering.conftest import autonomy


def test_the_sweep_task_resumes_a_due_command(fake, grid, org):
    autonomy(org.block_a, 3)
    command = services.submit(
        customer_id=grid.customer.pk,
        meter=None,
        action="disconnect",
        reason="safety",
        source="system",
    )
    Command.objects.filter(pk=command.pk).update(next_attempt_at=command.created_at)
    result = tasks.sweep.delay().get()
    command.refresh_from_db()
    assert result["commands"] == 1 and command.status == Command.Status.SENT
    assert len(fake.calls("/COMM_RemoteControl")) == 1


def test_the_online_task_records_concentrators(fake, db):
    fake.concentrators["CN-9"] = True
    assert tasks.refresh_online.delay().get() == 1
    assert Concentrator.objects.get(number="CN-9").online is True


def test_schedules_are_declared_for_the_loader(db):
    declared = {s.name: s for s in schedules.declared()}
    assert declared["steering.sweep"].task == "metering.steering.tasks.sweep"
    assert declared["steering.sweep"].every == dt.timedelta(minutes=1)
    assert "steering.import_daily" in declared and "steering.refresh_online" in declared
