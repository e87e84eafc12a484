"""Watching for missing reads and silent gateways (metering.watch, its task and schedule)."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from mcoms.celery import app
from metering import ingest, partition_tasks, schedules, watch, watch_tasks
from metering.models import Alert, Gateway
from notifications.models import Message
from tests.metering.edge_fixtures import NOW, install, reading

UTC = dt.UTC
MINUTE = dt.timedelta(minutes=1)


def heartbeat(bus, at):
    Gateway.objects.filter(pk=bus.gateway.pk).update(last_heartbeat_at=at)


def report(bus, address, ts):
    stamp = ts.isoformat().replace("+00:00", "Z")
    outcome = ingest.ingest(gateway=bus.gateway, readings=[reading(address, stamp)], now=ts)
    assert outcome.accepted == 1


def open_alerts(kind=None):
    alerts = Alert.objects.filter(resolved_at__isnull=True)
    return alerts.filter(kind=kind) if kind else alerts


@pytest.fixture
def quiet_three(bus):
    """The gateway is alive; meter 10 reported 15 minutes ago, meter 100 never did."""
    heartbeat(bus, NOW - MINUTE)
    report(bus, 10, NOW - 15 * MINUTE)
    return bus


@pytest.fixture
def templates(db):
    return schedules.ensure_templates()


def test_a_meter_without_readings_for_n_intervals_gets_one_alert(quiet_three):
    bus = quiet_three
    result = watch.check_missing(now=NOW)

    alert = Alert.objects.get()
    assert result.opened == [alert]
    assert (alert.kind, alert.meter, alert.gateway, alert.site) == (
        Alert.Kind.MISSING_READS,
        bus.three,
        bus.gateway,
        bus.gateway.site,
    )
    assert alert.status == Alert.Status.OPEN and alert.opened_at == NOW
    # Installed 2026-04-01 00:00 UTC, shown in Kampala time.
    assert "address 100 on kla-block-a" in alert.message
    assert "since 2026-04-01 03:00" in alert.message


def test_the_window_is_the_sites_intervals_times_the_gateways_log_interval(quiet_three):
    bus = quiet_three
    # Meter 10's last reading is 15:45; with 4 × 900 s it turns silent after 16:45.
    heartbeat(bus, NOW + 43 * MINUTE)
    result = watch.check_missing(now=NOW + 44 * MINUTE, notify_staff=False)
    assert result.silent_gateways == 0 and result.silent_meters == 1  # only meter 100
    assert not open_alerts().filter(meter=bus.single).exists()
    heartbeat(bus, NOW + 45 * MINUTE)
    watch.check_missing(now=NOW + 46 * MINUTE, notify_staff=False)
    assert open_alerts().filter(meter=bus.single).exists()

    site = bus.gateway.site
    site.missing_read_intervals = 2
    site.save()
    Alert.objects.all().delete()
    report(bus, 10, NOW + 30 * MINUTE)  # 16:30; silent after 17:00 with 2 intervals
    heartbeat(bus, NOW + 61 * MINUTE)
    watch.check_missing(now=NOW + 61 * MINUTE, notify_staff=False)
    assert open_alerts().filter(meter=bus.single).exists()


def test_an_open_or_acknowledged_alert_is_not_opened_again(quiet_three, templates):
    watch.check_missing(now=NOW)
    messages = Message.objects.count()
    Alert.objects.update(status=Alert.Status.ACKNOWLEDGED, acknowledged_at=NOW)

    heartbeat(quiet_three, NOW + 4 * MINUTE)
    again = watch.check_missing(now=NOW + 5 * MINUTE)

    assert again.opened == [] and again.silent_meters == 1
    assert Alert.objects.count() == 1
    assert Message.objects.count() == messages


def test_opening_messages_the_sites_managers_and_supervisors(quiet_three, org, templates):
    org.supervisor.phone = "+256772000111"
    org.supervisor.save()

    result = watch.check_missing(now=NOW)

    sent = {(m.channel, m.to, m.template_key) for m in Message.objects.all()}
    assert sent == {
        ("sms", "+256772000111", "meter_not_reporting"),
        ("email", "site_manager@example.org", "meter_not_reporting"),
    }
    assert result.messages == 2
    sms = Message.objects.get(channel="sms")
    serial = quiet_three.three.serial
    assert sms.body == (
        f"MCOMS Block A: 1 meter sent no reading for over 1.0 h: {serial} (address 100). "
        "Please check on site."
    )
    assert sms.site_id == org.block_a.pk and sms.about.startswith("metering.alert:")
    assert Message.objects.get(channel="email").subject == "Block A: 1 meter not reporting"


def test_a_meter_inside_an_open_outage_incident_is_not_messaged_again(
    quiet_three, org, templates
):
    from metering.models import Incident, Meter

    org.supervisor.phone = "+256772000111"
    org.supervisor.save()
    silent = Meter.objects.get(slots__gateway=quiet_three.gateway, slots__address=100)
    incident = Incident.objects.create(site=quiet_three.gateway.site, started_at=NOW - MINUTE)
    incident.meters.add(silent)

    result = watch.check_missing(now=NOW)

    assert [a.meter_id for a in result.opened] == [silent.pk]  # the alert still opens
    assert result.messages == 0 and not Message.objects.exists()  # the incident told them


def test_messaging_failures_never_block_the_check(quiet_three, monkeypatch, caplog):
    # No templates at all: the alert opens, nobody is messaged, the reason is logged.
    result = watch.check_missing(now=NOW)
    assert len(result.opened) == 1 and result.messages == 0
    assert not Message.objects.exists()
    assert "no email template 'meter_not_reporting'" in caplog.text

    # A backend or database failure while sending is logged and the check goes on.
    schedules.ensure_templates()
    Alert.objects.all().delete()

    def broken(**kwargs):
        raise RuntimeError("SMS gateway down")

    monkeypatch.setattr(watch, "send_message", broken)
    result = watch.check_missing(now=NOW)
    assert len(result.opened) == 1 and result.messages == 0
    assert "SMS gateway down" in caplog.text


def test_the_alert_clears_when_data_returns(quiet_three):
    bus = quiet_three
    watch.check_missing(now=NOW, notify_staff=False)
    alert = Alert.objects.get()

    # An old backlog reading is not a return: the meter is still silent.
    report(bus, 100, dt.datetime(2026, 4, 3, 12, 0, tzinfo=UTC))
    assert watch.check_missing(now=NOW + 5 * MINUTE, notify_staff=False).resolved == 0

    report(bus, 100, NOW + 15 * MINUTE)
    heartbeat(bus, NOW + 19 * MINUTE)
    result = watch.check_missing(now=NOW + 20 * MINUTE, notify_staff=False)

    alert.refresh_from_db()
    assert result.resolved == 1
    assert (alert.status, alert.resolved_at) == (Alert.Status.RESOLVED, NOW + 20 * MINUTE)
    # Silent again later: a new alert, the old one stays resolved.
    heartbeat(bus, NOW + 179 * MINUTE)
    watch.check_missing(now=NOW + 3 * 60 * MINUTE, notify_staff=False)
    assert open_alerts(Alert.Kind.MISSING_READS).filter(meter=bus.three).count() == 1
    assert Alert.objects.filter(meter=bus.three).count() == 2


def test_a_silent_gateway_gets_one_alert_instead_of_one_per_meter(bus, org, templates):
    org.supervisor.phone = "+256772000111"
    org.supervisor.save()
    report(bus, 10, NOW - 3 * 60 * MINUTE)
    report(bus, 100, NOW - 3 * 60 * MINUTE)
    heartbeat(bus, NOW - 2 * 60 * MINUTE)

    result = watch.check_missing(now=NOW)

    alert = Alert.objects.get()
    assert (alert.kind, alert.gateway, alert.meter) == (
        Alert.Kind.GATEWAY_SILENT,
        bus.gateway,
        None,
    )
    assert alert.message == "Gateway kla-block-a has sent no heartbeat since 2026-04-04 17:00"
    assert alert.details["meters_on_bus"] == 2
    assert result.silent_gateways == 1 and result.silent_meters == 0
    sms = Message.objects.get(channel="sms")
    assert sms.template_key == "gateway_silent"
    assert "2 meters on its bus cannot report" in sms.body

    # The gateway comes back but its meters do not: now each meter is its own alert.
    heartbeat(bus, NOW + 9 * MINUTE)
    result = watch.check_missing(now=NOW + 10 * MINUTE, notify_staff=False)
    alert.refresh_from_db()
    assert alert.status == Alert.Status.RESOLVED
    assert {a.meter for a in open_alerts(Alert.Kind.MISSING_READS)} == {bus.single, bus.three}


def test_a_gateway_never_heard_from_alerts_after_its_grace(bus):
    # Registered ten days before NOW and no heartbeat since.
    result = watch.check_missing(now=NOW, notify_staff=False)
    alert = Alert.objects.get()
    assert alert.kind == Alert.Kind.GATEWAY_SILENT
    assert alert.message == "Gateway kla-block-a has never sent a heartbeat"
    assert result.silent_meters == 0

    Alert.objects.all().delete()
    Gateway.objects.filter(pk=bus.gateway.pk).update(created_at=NOW - 60 * MINUTE)
    assert watch.check_missing(now=NOW, notify_staff=False).opened == []


def test_queries_do_not_grow_with_the_number_of_meters(quiet_three, org):
    bus = quiet_three

    def queries() -> int:
        Alert.objects.all().delete()
        with CaptureQueriesContext(connection) as captured:
            watch.check_missing(now=NOW, notify_staff=False)
        return len(captured)

    few = queries()
    for address in (11, 12, 13, 14, 15):
        install(org.block_a, bus.gateway, address)
    many = queries()

    assert open_alerts().count() == 6
    assert many == few


# --- The schedule --------------------------------------------------------------------------


def test_the_check_is_registered_with_celery_beat_every_five_minutes(db):
    report = schedules.sync()

    task = PeriodicTask.objects.get(name="metering.check_missing_reads")
    declared = [s.name for s in schedules.declared()]
    assert report["created"] == declared
    # Metering's own, then every other app's from its <app>.schedules module.
    assert declared[:2] == ["metering.check_missing_reads", "metering.ensure_reading_partitions"]
    assert {
        "notifications.release_deferred",
        "billing.start_due_runs",
        "notifications.send_due_broadcasts",
    } <= set(declared)
    assert task.task == "metering.watch_tasks.check_missing_reads" and task.task in app.tasks
    assert partition_tasks.ensure_reading_partitions.name in app.tasks
    assert task.enabled and task.crontab is None
    assert (task.interval.every, task.interval.period) == (300, IntervalSchedule.SECONDS)
    assert len(report["templates"]) == 4
    daily = PeriodicTask.objects.get(name="metering.ensure_reading_partitions")
    assert (daily.interval.every, daily.interval.period) == (86400, IntervalSchedule.SECONDS)


def test_syncing_again_changes_nothing_and_corrects_drift(db):
    schedules.sync()
    again = schedules.sync()
    declared = schedules.declared()
    assert again["unchanged"] == [s.name for s in declared]
    assert again["created"] == again["updated"] == again["templates"] == []
    assert PeriodicTask.objects.filter(name__startswith="metering.").count() == len(
        [s for s in declared if s.name.startswith("metering.")]
    )
    assert IntervalSchedule.objects.count() == len({s.every for s in declared})

    task = PeriodicTask.objects.get(name="metering.check_missing_reads")
    task.enabled = False
    task.save()
    old = PeriodicTask.objects.create(
        name="metering.retired", task="metering.tasks.gone", interval=task.interval
    )
    out = io.StringIO()
    call_command("sync_schedules", stdout=out)
    assert "updated: metering.check_missing_reads" in out.getvalue()
    assert "disabled: metering.retired" in out.getvalue()
    assert PeriodicTask.objects.get(name="metering.check_missing_reads").enabled
    old.refresh_from_db()
    assert not old.enabled


def test_the_task_runs_the_check(quiet_three, monkeypatch):
    monkeypatch.setattr(watch.clock, "now", lambda: NOW)
    result = watch_tasks.check_missing_reads.apply().get()
    assert result["opened"] == 1
    assert Alert.objects.get().meter == quiet_three.three
