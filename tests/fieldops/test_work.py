"""Where field tasks come from: :func:`fieldops.work.sync` over each source.

Block A has two field agents (``agent``, ``agent2``); Block B has none, so its tasks stay
open for the supervisor. Every test passes the clock in.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from billing.collections.models import CollectionNotice
from customers import services as customer_services
from fieldops import services, work
from fieldops.models import FieldTask, TaskEvent
from mcoms.core.audit import acting_as
from mcoms.core.models import AuditEvent
from metering import alerting
from metering import services as meter_services
from metering.models import Alert, Incident
from metering.steering import engine
from metering.steering import services as steering
from metering.steering.models import FieldJob
from notifications.models import Message
from tests import factories
from tests.billing.collections.conftest import bill, pay
from tests.fieldops.conftest import NOW
from tests.metering.steering.conftest import autonomy

T = FieldTask


def alert(site, kind, meter=None, **fields) -> Alert:
    return Alert.objects.create(
        kind=kind, site=site, meter=meter, message=f"{kind} seen", opened_at=NOW, **fields
    )


def task_for(ref: str) -> FieldTask:
    return FieldTask.objects.get(source_ref=ref)


def test_an_alert_makes_one_task_for_the_least_loaded_agent_who_is_told_by_sms(
    field, django_capture_on_commit_callbacks
):
    meter = factories.assigned_meter(field.block_a, 20)
    with acting_as(label="test setup"):
        services.task_create(
            site=field.block_a, kind=T.Kind.OTHER, title="Busy already", assign_to=field.agent
        )
    bypass = alert(field.block_a, Alert.Kind.POSSIBLE_BYPASS, meter)

    with django_capture_on_commit_callbacks(execute=True):
        result = work.sync(now=NOW)

    task = task_for(f"alert:{bypass.pk}")
    assert result.created == [task.pk]
    assert (task.kind, task.source, task.priority) == (T.Kind.INSPECT, T.Source.ALERT, 2)
    assert task.meter == meter and task.site == field.block_a and meter.serial in task.title
    assert task.assigned_to == field.agent2 and task.status == T.Status.ASSIGNED
    assert task.due_at == NOW + dt.timedelta(days=2)
    assert list(task.events.values_list("to_status", flat=True)) == ["open", "assigned"]
    assert (
        AuditEvent.objects.filter(object_type="fieldops.fieldtask", object_id=task.pk).count() == 2
    )
    (sms,) = Message.objects.filter(template_key="staff_assignment")
    assert sms.to == field.agent2.phone and f"task {task.pk}" in sms.body
    assert sms.status == Message.Status.SENT


def test_missing_reads_make_a_read_task_and_repeating_the_sync_adds_nothing(field):
    meter = factories.assigned_meter(field.block_a, 21)
    silent = alert(field.block_a, Alert.Kind.MISSING_READS, meter)
    alert(field.block_a, Alert.Kind.FREQUENCY)  # for the office, not the field

    first = work.sync(now=NOW)
    again = work.sync(now=NOW + dt.timedelta(minutes=2))

    task = task_for(f"alert:{silent.pk}")
    assert task.kind == T.Kind.READ and task.source == T.Source.MISSING_READS
    assert task.title.startswith("Read the meter by hand / check why it is silent")
    assert len(first.created) == 1 and again.as_dict() == {
        "created": 0,
        "cancelled": 0,
        "finished": 0,
    }
    assert FieldTask.objects.count() == 1


def test_an_outage_makes_one_urgent_task_for_the_site_not_one_per_meter(field):
    meters = [factories.assigned_meter(field.block_a, 30 + i) for i in range(3)]
    incident = Incident.objects.create(
        site=field.block_a, started_at=NOW, watched_meters=3, peak_meters=3
    )
    for m in meters:
        alert(field.block_a, Alert.Kind.SUPPLY_LOST, m, incident=incident)
    alert(field.block_a, Alert.Kind.OUTAGE, incident=incident)

    work.sync(now=NOW)

    (task,) = FieldTask.objects.all()
    assert task.source_ref == f"incident:{incident.pk}"
    assert task.kind == T.Kind.FIX and task.priority == T.Priority.URGENT
    assert task.due_at == NOW + dt.timedelta(hours=4)

    incident.ended_at = NOW + dt.timedelta(hours=1)
    incident.save()
    result = work.sync(now=NOW + dt.timedelta(hours=1))
    task.refresh_from_db()
    assert result.cancelled == [task.pk] and task.status == T.Status.CANCELLED


def test_a_supply_lost_alert_alone_is_an_urgent_fix(field):
    meter = factories.assigned_meter(field.block_a, 22)
    lost = alert(field.block_a, Alert.Kind.SUPPLY_LOST, meter)
    work.sync(now=NOW)
    task = task_for(f"alert:{lost.pk}")
    assert task.kind == T.Kind.FIX and task.priority == T.Priority.URGENT


def test_a_resolved_alert_cancels_a_task_not_started_and_leaves_a_started_one(field):
    a, b = factories.assigned_meter(field.block_a, 23), factories.assigned_meter(field.block_a, 24)
    waiting = alert(field.block_a, Alert.Kind.NIGHT_SPIKE, a)
    started = alert(field.block_a, Alert.Kind.NIGHT_SPIKE, b)
    work.sync(now=NOW)
    on_it = task_for(f"alert:{started.pk}")
    with acting_as(on_it.assigned_to):
        services.task_start(task=on_it, by=on_it.assigned_to, now=NOW)
    with acting_as(field.site_manager):
        for found in (waiting, started):
            alerting.resolve(found, user=field.site_manager, note="fine now", now=NOW)

    result = work.sync(now=NOW + dt.timedelta(minutes=2))

    gone = task_for(f"alert:{waiting.pk}")
    on_it.refresh_from_db()
    assert result.cancelled == [gone.pk]
    assert gone.status == T.Status.CANCELLED and "source has gone" in gone.outcome
    assert on_it.status == T.Status.IN_PROGRESS


def test_a_site_without_field_agents_leaves_the_task_open_for_the_supervisor(field):
    meter = factories.assigned_meter(field.block_b, 25)
    found = alert(field.block_b, Alert.Kind.VOLTAGE, meter)
    work.sync(now=NOW)
    task = task_for(f"alert:{found.pk}")
    assert task.status == T.Status.OPEN and task.assigned_to is None


def test_service_requests_become_tasks_for_their_assignee_by_kind(field):
    amina = factories.customer(field.block_a, first_name="Amina")
    with acting_as(field.site_manager):
        fault = customer_services.service_request_create(
            customer=amina, kind="fault", description="No power since morning", now=NOW
        )
        connection = customer_services.service_request_create(
            customer=amina, kind="new_connection", now=NOW
        )
        customer_services.service_request_assign(request=fault, to=field.agent, now=NOW)
    # agent already holds the fault; by load alone the connection would go to agent2
    work.sync(now=NOW)

    fix = task_for(f"request:{fault.pk}")
    assert (fix.kind, fix.priority, fix.customer) == (T.Kind.FIX, T.Priority.URGENT, amina)
    assert fix.assigned_to == field.agent and fix.details == "No power since morning"
    connect = task_for(f"request:{connection.pk}")
    assert connect.kind == T.Kind.CONNECT and connect.assigned_to == field.agent2

    with acting_as(field.site_manager):
        customer_services.service_request_transition(
            request=connection, status="rejected", note="no capacity", now=NOW
        )
    work.sync(now=NOW)
    connect.refresh_from_db()
    assert connect.status == T.Status.CANCELLED


def _field_job(grid, org) -> FieldJob:
    autonomy(org.block_a, 3)
    command = steering.submit(
        customer_id=grid.chint_customer.pk,
        meter=None,
        action="disconnect",
        reason="prepaid_empty",
        now=NOW,
    )
    engine.sweep(now=NOW)
    return FieldJob.objects.get(command=command)


def test_a_steering_field_job_becomes_a_disconnect_task_closed_when_the_job_is_done(
    field, grid, media
):
    job = _field_job(grid, field)
    work.sync(now=NOW)
    task = task_for(f"field_job:{job.pk}")
    assert task.kind == T.Kind.DISCONNECT and task.meter == grid.chint
    assert task.customer == grid.chint_customer
    with acting_as(field.agent):
        steering.field_job_complete(
            job=job,
            by=field.agent,
            seal_number="S-1",
            photo=SimpleUploadedFile("s.png", b"\x89PNG", content_type="image/png"),
            now=NOW,
        )
    result = work.sync(now=NOW + dt.timedelta(minutes=2))
    task.refresh_from_db()
    assert result.finished == [task.pk] and task.status == T.Status.DONE


def test_a_meter_shipped_to_a_site_is_an_install_task_done_once_installed(field):
    meter = factories.assigned_meter(field.block_a, 40)
    with acting_as(label="stores"):
        gateway = meter_services.gateway_create(site=field.block_a, name="kla-bus-9")
        meter_services.meter_move(meter=meter, status="converted", by_name="Lab")
        meter_services.meter_move(meter=meter, status="shipped", by_name="Stores")
    work.sync(now=NOW)
    task = task_for(f"install:{meter.pk}")
    assert task.kind == T.Kind.INSTALL and task.meter == meter and "address 40" in task.title

    with acting_as(field.agent):
        meter_services.meter_move(
            meter=meter, status="installed", gateway=gateway, by_name="Okello"
        )
    result = work.sync(now=NOW)
    task.refresh_from_db()
    assert result.finished == [task.pk]
    assert task.status == T.Status.DONE and task.outcome == "meter installed"


def test_arrears_past_the_notice_make_one_collect_task_cancelled_once_paid(field):
    owing = factories.customer(field.block_a, first_name="Okello", status="active")
    invoice = bill(owing, "50000", issued=dt.date(2026, 3, 1), due=dt.date(2026, 3, 15))
    second = bill(owing, "20000", issued=dt.date(2026, 3, 2), due=dt.date(2026, 3, 16))
    for inv, day in ((invoice, 22), (second, 23)):
        CollectionNotice.objects.create(
            invoice=inv,
            customer=owing,
            kind=CollectionNotice.Kind.NOTICE,
            sent_at=NOW - dt.timedelta(days=14),
            sent_on=dt.date(2026, 3, day),
            amount=inv.total,
            disconnect_from=dt.date(2026, 4, 7 if inv is invoice else 8),
        )
    before = work.sync(now=NOW - dt.timedelta(days=1))  # the disconnection day has not come
    assert before.created == []

    work.sync(now=NOW)
    (task,) = FieldTask.objects.filter(source=T.Source.ARREARS)
    assert task.kind == T.Kind.COLLECT and task.customer == owing
    assert "70,000" in task.title  # everything still open on the account
    work.sync(now=NOW + dt.timedelta(days=2))  # the second notice is due too: still one task
    assert FieldTask.objects.filter(source=T.Source.ARREARS).count() == 1

    pay(owing, "70000", on=dt.date(2026, 4, 9))
    result = work.sync(now=NOW + dt.timedelta(days=2))
    task.refresh_from_db()
    assert result.cancelled == [task.pk] and task.status == T.Status.CANCELLED


def test_the_celery_task_runs_the_sync_as_the_task(field):
    from fieldops.tasks import sync_field_tasks

    meter = factories.assigned_meter(field.block_a, 26)
    alert(field.block_a, Alert.Kind.USAGE_HIGH, meter)
    assert sync_field_tasks() == {"created": 1, "cancelled": 0, "finished": 0}
    event = TaskEvent.objects.get(to_status="open")
    assert event.by_label == "field task sync"


@pytest.mark.parametrize("kind", ["frequency", "power_factor", "phase_imbalance"])
def test_office_alerts_make_no_field_task(field, kind):
    alert(field.block_a, kind)
    assert work.sync(now=NOW).created == []


def test_the_sync_is_scheduled_every_two_minutes():
    from fieldops.tasks import sync_field_tasks
    from metering.schedules import declared

    (entry,) = [s for s in declared() if s.name == "fieldops.sync_field_tasks"]
    assert entry.task == sync_field_tasks.name == "fieldops.tasks.sync_field_tasks"
    assert entry.every == dt.timedelta(minutes=2)
