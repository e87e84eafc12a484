"""The hourly usage check (metering.anomaly_tasks): bulk loading, alerts that explain
themselves, de-duplication, messages to staff and customers, the chart page."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from mcoms.core.audit import acting_as
from metering import anomalies, anomaly_tasks, schedules, services
from metering.models import Alert, HourlyUsage, Reading, SiteWatchSettings
from notifications import catalog, preferences
from notifications.models import Message, QuietHours
from tests import factories
from tests.metering.edge_fixtures import install

UTC = dt.UTC
HOUR = dt.timedelta(hours=1)
# Thursday 30 April 2026, 17:05 UTC: the check looks at 16:00-17:00 UTC (19:00 in Kampala).
NOW = dt.datetime(2026, 4, 30, 17, 5, tzinfo=UTC)
TARGET = dt.datetime(2026, 4, 30, 16, 0, tzinfo=UTC)
DAYS = 28


def usual(at: dt.datetime) -> float:
    local = at + dt.timedelta(hours=3)
    if local.hour < 6:
        return 0.1
    return 1.2 if 18 <= local.hour <= 21 else 0.3


def history(meter, *, days=DAYS, until=TARGET, seed=7, override=None, noise=0.04):
    """Hourly usage of ``meter`` for ``days`` days up to and including ``until``."""
    rng = random.Random(seed + meter.pk)
    override = override or {}
    rows = []
    hour = until - dt.timedelta(days=days)
    while hour <= until:
        value = override.get(hour, max(0.0, usual(hour) + rng.gauss(0, noise)))
        rows.append(HourlyUsage(meter=meter, hour=hour, kwh=Decimal(f"{value:.3f}"), intervals=4))
        hour += HOUR
    HourlyUsage.objects.bulk_create(rows)


@pytest.fixture
def customer(bus, org):
    person = factories.customer(org.block_a, first_name="Amina", phone="+256772555001")
    with acting_as(label="test setup"):
        services.meter_serve_customer(
            meter=bus.single, customer=person, now=TARGET - dt.timedelta(days=40)
        )
    return person


@pytest.fixture
def templates(db):
    catalog.install_defaults()
    schedules.ensure_templates()


def run(**kwargs):
    return anomaly_tasks.check_usage(now=NOW, **kwargs)


def test_a_spike_opens_one_alert_that_explains_itself(bus):
    history(bus.single, override={TARGET: 4.0})
    history(bus.three)

    result = run(notify=False)

    assert result.meters == 2 and result.with_data == 2 and result.hour == TARGET
    alert = Alert.objects.get()
    assert (alert.kind, alert.meter, alert.site) == (
        Alert.Kind.USAGE_HIGH,
        bus.single,
        bus.gateway.site,
    )
    d = alert.details
    assert d["value_kwh"] == 4.0 and d["detector"] == anomalies.HOUR_OF_DAY
    assert d["hour"] == TARGET.isoformat()
    limits = d["limits"]
    assert limits["upper"] < 4.0 and limits["lower"] < limits["centre"] < limits["upper"]
    assert limits["window"] == "weekdays at 19:00 local time, last 4 weeks"
    assert limits["samples"] == 20
    assert d["chart"] == (
        reverse("metering:meter_chart", args=[bus.single.pk]) + "?hour=2026-04-30T16:00Z"
    )
    # The message says the value, the limit, the method and the window.
    assert alert.message.startswith(f"Meter {bus.single.serial}: 4 kWh in the hour, above")
    assert "hour-of-day baseline" in alert.message and "weekdays at 19:00" in alert.message


def test_the_plain_chart_stands_in_while_history_is_short_and_k_is_per_site(bus):
    history(bus.single, days=10, override={TARGET: 1.7})
    run(notify=False)
    alert = Alert.objects.get()
    assert alert.details["detector"] == anomalies.CONTROL_CHART
    assert alert.details["limits"]["k"] == 2.0
    assert alert.details["limits"]["window"] == "all hours of the last 10 days"
    assert "plain control chart" in alert.message

    # The same hour under a wider chart (k = 4 for this site) is within limits.
    Alert.objects.all().delete()
    SiteWatchSettings.objects.create(site=bus.gateway.site, chart_k=4.0)
    result = run(notify=False)
    assert not Alert.objects.exists() and result.with_data == 1


def test_k_for_every_site_is_a_django_setting(bus, settings):
    history(bus.single, days=10, override={TARGET: 1.7})
    settings.METERING_WATCH_CHART_K = 4.0
    assert SiteWatchSettings.defaults().chart_k == 4.0
    run(notify=False)
    assert not Alert.objects.exists()
    settings.METERING_WATCH_CHART_K = 2.0
    run(notify=False)
    assert Alert.objects.get().details["limits"]["k"] == 2.0


def test_a_site_may_keep_to_the_plain_chart(bus):
    history(bus.single, override={TARGET - 7 * HOUR: 0.9})  # 12:00 local: usually 0.3
    at = NOW - 7 * HOUR
    anomaly_tasks.check_usage(now=at, notify=False)
    assert Alert.objects.get().details["detector"] == anomalies.HOUR_OF_DAY
    Alert.objects.all().delete()
    SiteWatchSettings.objects.create(site=bus.gateway.site, usage_method="plain")
    anomaly_tasks.check_usage(now=at, notify=False)
    assert not Alert.objects.exists()  # 0.9 kWh is within the all-hours chart


def test_an_open_alert_is_not_opened_twice_and_clears_when_not_seen_again(bus):
    history(bus.single, until=TARGET + HOUR, override={TARGET: 4.0, TARGET + HOUR: 4.0})
    run(notify=False)
    first = Alert.objects.get()

    again = anomaly_tasks.check_usage(now=NOW + HOUR, notify=False)
    assert again.opened == [] and again.findings[anomalies.USAGE_HIGH] == 1
    first.refresh_from_db()
    assert Alert.objects.count() == 1 and first.last_seen_at == NOW + HOUR
    assert first.details["last"]["hour"] == (TARGET + HOUR).isoformat()

    later = anomaly_tasks.check_usage(now=NOW + 26 * HOUR, notify=False)
    first.refresh_from_db()
    assert later.resolved == 1 and first.status == Alert.Status.RESOLVED
    assert first.note == "not seen again for 24 hours"


def test_staff_and_customer_are_told_once(
    bus, org, customer, templates, django_capture_on_commit_callbacks
):
    org.supervisor.phone = "+256772000111"
    org.supervisor.save()
    history(bus.single, override={TARGET: 4.0})

    with django_capture_on_commit_callbacks(execute=True):
        run()

    alert = Alert.objects.get()
    sent = {(m.to, m.template_key) for m in Message.objects.all()}
    assert sent == {
        ("+256772000111", "alerts_opened"),
        ("site_manager@example.org", "alerts_opened"),
        ("+256772555001", "abnormal_usage"),
    }
    sms = Message.objects.get(to="+256772555001")
    assert sms.about == f"metering.alert:{alert.pk}"
    assert sms.body.startswith("Amina, you used 4.0 kWh on 30 Apr 19:00, above your usual 1.2")
    staff = Message.objects.get(to="+256772000111")
    assert "1 new alert: usage above its limits (1)" in staff.body
    assert f"/alerts/{alert.pk}/" in staff.body

    # Seen again the next hour: nobody is told again.
    with django_capture_on_commit_callbacks(execute=True):
        anomaly_tasks.check_usage(now=NOW + HOUR)
    assert Message.objects.count() == 3


def test_the_customers_opt_out_and_quiet_hours_are_kept(
    bus, customer, templates, django_capture_on_commit_callbacks
):
    history(bus.single, override={TARGET: 4.0})
    preferences.opt_out(customer.phone, reason="test")
    with django_capture_on_commit_callbacks(execute=True):
        run()
    assert Message.objects.get(to=customer.phone).status == Message.Status.SKIPPED

    preferences.opt_in(customer.phone)
    Message.objects.all().delete()
    Alert.objects.all().delete()
    QuietHours.objects.create(start=dt.time(19), end=dt.time(7))  # 19:05 local is quiet
    with django_capture_on_commit_callbacks(execute=True):
        run()
    held = Message.objects.get(to=customer.phone)
    assert held.not_before == dt.datetime(2026, 5, 1, 4, 0, tzinfo=UTC)  # 07:00 in Kampala


def test_a_bypass_needs_voltage_at_the_meter(bus):
    zero = {TARGET - 2 * HOUR: 0.0, TARGET - HOUR: 0.0, TARGET: 0.0}
    history(bus.single, override=zero)
    run(notify=False)
    assert not Alert.objects.filter(kind=Alert.Kind.POSSIBLE_BYPASS).exists()

    Reading.objects.bulk_create(
        [
            Reading(
                meter=bus.single,
                ts=TARGET - 2 * HOUR + dt.timedelta(minutes=15 * n),
                energy_kwh=Decimal("100.000"),
                voltage_l1=231.0,
                received_at=NOW,
            )
            for n in range(1, 13)
        ]
    )
    run(notify=False)
    alert = Alert.objects.get(kind=Alert.Kind.POSSIBLE_BYPASS)
    assert alert.details["detector"] == anomalies.BYPASS
    assert alert.details["usual_kwh"] > 2
    assert "while the meter sees voltage" in alert.message


def test_estimated_hours_are_left_out(bus):
    history(bus.single, override={TARGET: 4.0})
    HourlyUsage.objects.filter(meter=bus.single, hour=TARGET).update(estimated_kwh=Decimal("4.000"))
    result = run(notify=False)
    assert result.with_data == 0 and not Alert.objects.exists()


def test_the_check_loads_many_meters_in_a_fixed_number_of_queries(bus):
    for meter in (bus.single, bus.three):
        history(meter, days=8, noise=0)
    with CaptureQueriesContext(connection) as two:
        run(notify=False)
    extra = [install(bus.gateway.site, bus.gateway, address) for address in (11, 12, 13, 14)]
    for meter in extra:
        history(meter, days=8, noise=0)
    Alert.objects.all().delete()
    with CaptureQueriesContext(connection) as six:
        result = run(notify=False)
    # Eight days are too short for the baseline: the plain chart flags every evening peak.
    assert len(result.opened) == 6
    assert result.with_data == 6
    assert len(six.captured_queries) == len(two.captured_queries)
    # Chunks of meters: one usage query per chunk.
    Alert.objects.all().delete()
    with CaptureQueriesContext(connection) as chunked:
        run(notify=False, chunk=2)
    assert len(chunked.captured_queries) == len(two.captured_queries) + 2


def test_the_tasks_are_scheduled(db):
    names = {s.name: s for s in schedules.declared()}
    assert names["metering.check_usage_anomalies"].every == dt.timedelta(hours=1)
    assert names["metering.check_usage_anomalies"].task == (
        "metering.anomaly_tasks.check_usage_anomalies"
    )
    for name in ("check_power_quality", "check_outages", "escalate_alerts"):
        assert names[f"metering.{name}"].task == f"metering.anomaly_tasks.{name}"
    # The task runs the check (here on an empty grid) and reports what it did.
    out = anomaly_tasks.check_usage_anomalies.delay().get()
    assert out["meters"] == 0 and out["opened"] == 0


# --- pages -----------------------------------------------------------------------------------


def test_the_chart_page_draws_the_usage_and_the_limits(bus, org, client_for):
    history(bus.single, override={TARGET: 4.0})
    run(notify=False)
    alert = Alert.objects.get()
    client = client_for(org.agent)

    page = client.get(alert.details["chart"])
    assert page.status_code == 200
    html = page.content.decode()
    assert "<svg" in html and 'class="limits-band"' in html and 'class="usage"' in html
    assert 'class="plain-chart"' in html and 'class="outside"' in html
    assert "hour-of-day baseline" in html.lower() or "Hour-of-day baseline" in html
    assert "4.000" in html  # the alerted hour in the table
    chart = page.context["chart"]
    assert chart["target_row"]["kwh"] == 4.0 and chart["target_row"]["flag"] == "high"

    detail = client.get(reverse("metering:alert", args=[alert.pk]))
    body = detail.content.decode()
    assert detail.status_code == 200
    assert alert.details["explanation"] in body.replace("&#x27;", "'")
    assert "weekdays at 19:00 local time, last 4 weeks" in body
    assert alert.details["chart"].replace("&", "&amp;") in body
    assert "<svg" in body

    # Another site's staff see neither.
    outsider = client_for(org.outsider_agent)
    assert outsider.get(alert.details["chart"]).status_code == 404
    assert outsider.get(reverse("metering:alert", args=[alert.pk])).status_code == 404


@pytest.mark.postgres
@pytest.mark.parametrize("at", [NOW, NOW - 16 * HOUR])  # checks 19:00 and 03:00 (night) local
def test_postgresql_loads_only_the_hours_needed_and_finds_the_same(bus, at):
    checked = at.replace(minute=0) - HOUR
    history(bus.single, until=checked, override={checked: 4.0, checked - 7 * HOUR: 2.0})
    cfg = anomalies.Config()
    target = anomaly_tasks.epoch_hour(checked)
    start, end = checked - dt.timedelta(days=28), checked + HOUR
    full = anomaly_tasks.load_usage([bus.single.pk], start, end)[bus.single.pk]
    needed = anomalies.hours_needed(target, 3, cfg)
    part = anomaly_tasks.load_usage([bus.single.pk], start, end, hours_of_day=needed)[bus.single.pk]
    stats = anomaly_tasks.load_chart_stats([bus.single.pk], start, checked)[bus.single.pk]
    assert len(part[0]) < len(full[0]) and set(part[0]) <= set(full[0])
    # The check's single query returns the same.
    data, window_stats = anomaly_tasks.load_window(
        [bus.single.pk], start, checked, hours_of_day=needed
    )
    assert data[bus.single.pk] == part
    assert window_stats[bus.single.pk].samples == stats.samples
    assert window_stats[bus.single.pk].mean == pytest.approx(stats.mean)
    assert window_stats[bus.single.pk].sigma == pytest.approx(stats.sigma)

    whole = anomalies.Series(*full, 3)
    lean = anomalies.Series(*part, 3, chart=stats, chart_for=target)
    plain_whole = anomalies.plain_chart(whole, target, cfg)
    plain_lean = anomalies.plain_chart(lean, target, cfg)
    assert plain_lean.samples == plain_whole.samples and plain_lean.window == plain_whole.window
    assert plain_lean.upper == pytest.approx(plain_whole.upper)
    found_whole = anomalies.detect(whole, target, cfg)
    found_lean = anomalies.detect(lean, target, cfg)
    assert [f.kind for f in found_lean] == [f.kind for f in found_whole] != []
    for a, b in zip(found_lean, found_whole, strict=True):
        assert a.limits.upper == pytest.approx(b.limits.upper)
        assert a.limits.window == b.limits.window
