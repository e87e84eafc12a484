"""The life of an alert: de-duplicated, acknowledged and resolved by staff through the
pages (audited), escalated when nobody acknowledges it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from mcoms.core.audit import acting_as
from mcoms.core.models import AuditEvent
from metering import alerting, anomaly_tasks
from metering.models import Alert, SiteWatchSettings
from notifications.models import Message

UTC = dt.UTC
T0 = dt.datetime(2026, 4, 4, 12, 0, tzinfo=UTC)
HOUR = dt.timedelta(hours=1)


def new_alert(site, *, meter=None, kind=Alert.Kind.USAGE_HIGH, at=T0, message="Usage high"):
    return Alert.objects.create(
        kind=kind,
        site=site,
        meter=meter,
        message=message,
        opened_at=at,
        last_seen_at=at,
        details={"explanation": message},
    )


def test_one_open_alert_per_subject_and_kind(bus, org):
    new_alert(org.block_a, meter=bus.single)
    with pytest.raises(IntegrityError), transaction.atomic():
        new_alert(org.block_a, meter=bus.single)
    new_alert(org.block_a, meter=bus.single, kind=Alert.Kind.NIGHT_SPIKE)  # another kind
    # Site-wide alerts too (the new constraint).
    new_alert(org.block_a, kind=Alert.Kind.OUTAGE)
    with pytest.raises(IntegrityError), transaction.atomic():
        new_alert(org.block_a, kind=Alert.Kind.OUTAGE)
    new_alert(org.block_b, kind=Alert.Kind.OUTAGE)
    # Once resolved, the subject may alert again.
    Alert.objects.filter(kind=Alert.Kind.OUTAGE, site=org.block_a).update(
        status=Alert.Status.RESOLVED, resolved_at=T0
    )
    new_alert(org.block_a, kind=Alert.Kind.OUTAGE)


def test_open_alerts_creates_new_ones_and_marks_known_ones_seen(bus, org):
    first = alerting.open_alerts(
        [
            Alert(
                kind=Alert.Kind.USAGE_HIGH,
                site=org.block_a,
                meter=bus.single,
                message="a",
                details={"hour": "h1"},
            )
        ],
        now=T0,
    )
    assert len(first) == 1
    again = alerting.open_alerts(
        [
            Alert(
                kind=Alert.Kind.USAGE_HIGH,
                site=org.block_a,
                meter=bus.single,
                message="b",
                details={"hour": "h2"},
            ),
            Alert(kind=Alert.Kind.USAGE_HIGH, site=org.block_a, meter=bus.three, message="c"),
        ],
        now=T0 + HOUR,
    )
    assert [a.meter for a in again] == [bus.three]
    kept = Alert.objects.get(meter=bus.single)
    assert kept.message == "a" and kept.last_seen_at == T0 + HOUR
    assert kept.details["last"] == {"hour": "h2"}


def test_staff_acknowledge_and_resolve_through_the_page(bus, org, client_for):
    alert = new_alert(org.block_a, meter=bus.single)
    manager = client_for(org.site_manager)
    page = manager.get(reverse("metering:alert", args=[alert.pk]))
    assert page.status_code == 200 and "Acknowledge" in page.content.decode()

    manager.post(reverse("metering:alert_acknowledge", args=[alert.pk]), {"note": "on my way"})
    alert.refresh_from_db()
    assert alert.status == Alert.Status.ACKNOWLEDGED
    assert alert.acknowledged_by == org.site_manager and alert.note == "on my way"
    event = AuditEvent.objects.get(object_type="metering.alert", object_id=str(alert.pk))
    assert (event.actor, event.channel, event.action) == (org.site_manager, "web", "transition")
    assert event.before["status"] == "open" and event.after["status"] == "acknowledged"

    # Resolving needs a word on what was found; nothing changes without it.
    answer = manager.post(
        reverse("metering:alert_resolve", args=[alert.pk]), {"note": " "}, follow=True
    )
    assert "Say what was found or done" in answer.content.decode()
    alert.refresh_from_db()
    assert alert.status == Alert.Status.ACKNOWLEDGED

    manager.post(
        reverse("metering:alert_resolve", args=[alert.pk]),
        {"note": "Water heater left on; customer told"},
    )
    alert.refresh_from_db()
    assert alert.status == Alert.Status.RESOLVED and alert.resolved_by == org.site_manager
    assert alert.resolved_at is not None and alert.note == "Water heater left on; customer told"
    assert AuditEvent.objects.filter(object_type="metering.alert").count() == 2
    history = manager.get(reverse("metering:alert", args=[alert.pk])).content.decode()
    assert "Water heater left on" in history and "site_manager" in history


def test_who_may_act_on_an_alert(bus, org, client_for):
    alert = new_alert(org.block_a, meter=bus.single)
    url = reverse("metering:alert_acknowledge", args=[alert.pk])
    # A field agent sees alerts (meters.view) but may not acknowledge (meters.edit).
    agent = client_for(org.agent)
    assert agent.get(reverse("metering:alert", args=[alert.pk])).status_code == 200
    assert (
        "Acknowledge" not in agent.get(reverse("metering:alert", args=[alert.pk])).content.decode()
    )
    assert agent.post(url).status_code == 403
    # Staff of another site do not see it at all; customers see no alerts.
    assert client_for(org.outsider_agent).post(url).status_code == 404
    assert client_for(org.customer).get(reverse("metering:alerts")).status_code == 403
    alert.refresh_from_db()
    assert alert.status == Alert.Status.OPEN
    # Acknowledging twice says so.
    manager = client_for(org.site_manager)
    manager.post(url)
    again = manager.post(url, follow=True)
    assert "acknowledged already" in again.content.decode()


def test_the_alert_list_filters_by_site_kind_and_status(bus, org, client_for):
    high = new_alert(org.block_a, meter=bus.single, message="high one")
    night = new_alert(
        org.block_a, meter=bus.three, kind=Alert.Kind.NIGHT_SPIKE, message="night one"
    )
    other = new_alert(org.block_b, kind=Alert.Kind.OUTAGE, message="outage b")
    done = new_alert(org.block_a, meter=bus.three, kind=Alert.Kind.VOLTAGE, message="done one")
    Alert.objects.filter(pk=done.pk).update(status=Alert.Status.RESOLVED, resolved_at=T0)
    client = client_for(org.admin)
    url = reverse("metering:alerts")

    def shown(**params):
        return {a.pk for a in client.get(url, params).context["page"]}

    assert shown() == {high.pk, night.pk, other.pk}  # unresolved by default
    assert shown(site=org.block_a.pk) == {high.pk, night.pk}
    assert shown(kind="night_spike") == {night.pk}
    assert shown(status="resolved") == {done.pk}
    assert shown(status="any", site=org.block_a.pk) == {high.pk, night.pk, done.pk}
    # Scoped: the site manager of Block A does not see Block B's.
    manager = client_for(org.site_manager)
    assert {a.pk for a in manager.get(url).context["page"]} == {high.pk, night.pk}
    # htmx asks for the results only.
    partial = client.get(url, {"kind": "night_spike"}, HTTP_HX_REQUEST="true")
    assert "<html" not in partial.content.decode() and "night one" in partial.content.decode()


def test_unacknowledged_alerts_escalate_level_by_level(bus, org):
    org.cluster.phone = "+256772000222"
    org.cluster.save()
    alert = new_alert(org.block_a, meter=bus.single, message="Meter X: usage high")
    waiting = new_alert(org.block_a, meter=bus.three, message="acknowledged one")
    Alert.objects.filter(pk=waiting.pk).update(status=Alert.Status.ACKNOWLEDGED, acknowledged_at=T0)

    with acting_as(label="alert escalation"):
        assert alerting.escalate(now=T0 + 3 * HOUR)["escalated"] == 0  # default: 4 hours
        out = alerting.escalate(now=T0 + 4 * HOUR)
    alert.refresh_from_db()
    assert out == {"escalated": 1, "messages": 1}
    assert alert.escalation_level == 1 and alert.escalated_at == T0 + 4 * HOUR
    step = alert.details["escalations"][0]
    assert step == {
        "level": 1,
        "to": "cluster manager",
        "at": (T0 + 4 * HOUR).isoformat(),
        "told": ["cluster"],
    }
    sms = Message.objects.get()
    assert sms.to == "+256772000222" and sms.template_key == "alert_escalated"
    assert "not acknowledged for 4.0 h: Meter X: usage high" in sms.body
    event = AuditEvent.objects.get(object_type="metering.alert", object_id=str(alert.pk))
    assert event.actor_label == "alert escalation"
    assert "escalated to the cluster manager" in event.note

    # As long again: the regional manager; then no higher level.
    with acting_as(label="alert escalation"):
        alerting.escalate(now=T0 + 7 * HOUR)
        assert alert.escalation_level == 1
        alerting.escalate(now=T0 + 8 * HOUR)
        alerting.escalate(now=T0 + 20 * HOUR)
    alert.refresh_from_db()
    assert alert.escalation_level == 2
    assert [s["to"] for s in alert.details["escalations"]] == [
        "cluster manager",
        "regional manager",
    ]
    assert Message.objects.filter(to="regional@example.org").count() == 1
    waiting.refresh_from_db()
    assert waiting.escalation_level == 0  # acknowledged: nobody else is bothered


def test_escalation_time_is_a_site_setting_and_the_task_runs_it(bus, org):
    SiteWatchSettings.objects.create(site=org.block_a, escalate_after_minutes=30)
    alert = new_alert(org.block_a, meter=bus.single, at=dt.datetime(2020, 1, 1, tzinfo=UTC))
    out = anomaly_tasks.escalate_alerts.delay().get()
    alert.refresh_from_db()
    assert out["escalated"] == 1 and alert.escalation_level == 1


def test_watch_settings_page_saves_and_audits(org, client_for):
    url = reverse("metering:watch_settings", args=[org.block_a.pk])
    assert client_for(org.agent).get(url).status_code == 403
    manager = client_for(org.site_manager)
    form = manager.get(url).context["form"]
    data = {name: form[name].value() for name in form.fields}
    data.update({"chart_k": "2.5", "nominal_voltage": "240", "usage_method": "plain"})
    answer = manager.post(url, data)
    assert answer.status_code == 302
    row = SiteWatchSettings.objects.get(site=org.block_a)
    assert (row.chart_k, row.nominal_voltage, row.usage_method) == (2.5, 240.0, "plain")
    assert AuditEvent.objects.filter(object_type="metering.sitewatchsettings").count() == 1
    data["chart_k"] = "3"
    manager.post(url, data)
    change = AuditEvent.objects.filter(object_type="metering.sitewatchsettings").first()
    assert change.before["chart_k"] == 2.5 and change.after["chart_k"] == 3.0
