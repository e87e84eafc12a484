"""Outage incidents (metering.incidents): many meters of a site at once are one incident."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from mcoms.core.audit import acting_as
from metering import incidents, power_quality, services, watch
from metering.models import Alert, Gateway, Incident, MeterComms, Reading, SiteWatchSettings
from notifications import catalog
from notifications.models import Message
from tests import factories
from tests.metering.edge_fixtures import NOW, install

MINUTE = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)


@pytest.fixture
def site(bus):
    """Five meters on Block A's bus; the gateway is alive."""
    extra = [install(bus.gateway.site, bus.gateway, a) for a in (11, 12, 13)]
    Gateway.objects.filter(pk=bus.gateway.pk).update(last_heartbeat_at=NOW - MINUTE)
    bus.meters = [bus.single, bus.three, *extra]
    return bus


def heard(meters, at, volts):
    for m in meters:
        MeterComms.objects.update_or_create(
            meter=m,
            defaults={
                "last_reading_ts": at,
                "last_values": {"voltage_l1": volts, "energy_kwh": "100.0"},
                "updated_at": at,
            },
        )


def test_many_meters_losing_voltage_are_one_incident_not_many_alerts(
    site, org, django_capture_on_commit_callbacks
):
    catalog.install_defaults()
    customer = factories.customer(org.block_a, phone="+256772555009")
    with acting_as(label="test setup"):
        services.meter_serve_customer(meter=site.single, customer=customer, now=NOW - 9 * HOUR)
    heard(site.meters, NOW - 5 * MINUTE, 0.0)

    with django_capture_on_commit_callbacks(execute=True):
        result = incidents.check(now=NOW)

    incident = Incident.objects.get()
    assert result.as_dict()["opened"] == 1
    assert incident.site == org.block_a and incident.ended_at is None
    assert incident.started_at == NOW and incident.details["cause"] == "lost voltage"
    assert set(incident.meters.all()) == set(site.meters)
    assert (incident.peak_meters, incident.watched_meters) == (5, 5)
    outage = Alert.objects.get()
    assert (outage.kind, outage.meter, outage.incident) == (Alert.Kind.OUTAGE, None, incident)
    assert "5 of 5 meters lost voltage" in outage.message
    # Site staff hear of the one outage alert (not of five meters).
    staff = Message.objects.get(template_key="alerts_opened", to="site_manager@example.org")
    assert "- Outage at Block A: 5 of 5 meters lost voltage since 2026-04-04 19:00" in staff.body
    # The customer of a meter that sees no voltage hears of the outage, once.
    told = Message.objects.filter(template_key="site_outage")
    assert [m.to for m in told] == ["+256772555009"]
    assert told[0].about == f"metering.incident:{incident.pk}"

    # The hourly power-quality check finds every meter without voltage: no alert each.
    for m in site.meters:
        Reading.objects.bulk_create(
            [
                Reading(
                    meter=m,
                    ts=NOW - HOUR + 15 * n * MINUTE,
                    energy_kwh=Decimal(100),
                    voltage_l1=0.0,
                    received_at=NOW,
                )
                for n in range(1, 5)
            ]
        )
    with django_capture_on_commit_callbacks(execute=True):
        checked = power_quality.check(now=NOW + 5 * MINUTE)
    assert checked.findings[power_quality.SUPPLY_LOST] == 5 and checked.suppressed == 5
    assert list(Alert.objects.values_list("kind", flat=True)) == [Alert.Kind.OUTAGE]
    assert Incident.objects.count() == 1

    # Checks while it lasts change nothing; then the supply is back: the incident ends.
    with django_capture_on_commit_callbacks(execute=True):
        incidents.check(now=NOW + 5 * MINUTE)
    assert Message.objects.filter(template_key="site_outage").count() == 1
    heard(site.meters, NOW + 40 * MINUTE, 231.0)
    Gateway.objects.filter(pk=site.gateway.pk).update(last_heartbeat_at=NOW + 41 * MINUTE)
    ended = incidents.check(now=NOW + 42 * MINUTE)
    incident.refresh_from_db()
    outage.refresh_from_db()
    assert ended.ended == 1 and incident.ended_at == NOW + 42 * MINUTE
    assert incident.duration == 42 * MINUTE
    assert outage.status == Alert.Status.RESOLVED
    assert outage.note == "supply back: the outage incident ended"


def test_meters_going_silent_together_link_their_alerts_to_one_incident(site):
    heard(site.meters, NOW - 3 * HOUR, 230.0)
    watch.check_missing(now=NOW, notify_staff=False, notify_affected=False)
    assert Alert.objects.filter(kind=Alert.Kind.MISSING_READS).count() == 5

    incidents.check(now=NOW, notify=False)

    incident = Incident.objects.get()
    assert incident.details["cause"] == "went silent"
    assert incident.started_at == NOW - 3 * HOUR  # when they went silent
    linked = Alert.objects.filter(incident=incident)
    assert linked.filter(kind=Alert.Kind.MISSING_READS).count() == 5
    assert linked.filter(kind=Alert.Kind.OUTAGE).count() == 1


def test_a_few_meters_are_no_outage(site):
    heard(site.meters[:1], NOW - 5 * MINUTE, 0.0)
    heard(site.meters[1:], NOW - 5 * MINUTE, 230.0)
    incidents.check(now=NOW, notify=False)
    assert not Incident.objects.exists()

    Reading.objects.bulk_create(
        [
            Reading(
                meter=site.single,
                ts=NOW - HOUR + 15 * n * MINUTE,
                energy_kwh=Decimal(100),
                voltage_l1=0.0,
                received_at=NOW,
            )
            for n in range(1, 5)
        ]
    )
    power_quality.check(now=NOW + 5 * MINUTE, notify=False)
    assert Alert.objects.get().kind == Alert.Kind.SUPPLY_LOST


def test_the_threshold_is_a_site_setting(site):
    heard(site.meters[:2], NOW - 5 * MINUTE, 0.0)
    heard(site.meters[2:], NOW - 5 * MINUTE, 230.0)
    incidents.check(now=NOW, notify=False)
    assert not Incident.objects.exists()  # 2 of 5: under 3 meters and under half
    SiteWatchSettings.objects.create(
        site=site.gateway.site, outage_min_meters=2, outage_share_pct=40
    )
    incidents.check(now=NOW, notify=False)
    assert Incident.objects.get().peak_meters == 2
    assert incidents.is_outage(2, 5, SiteWatchSettings(outage_min_meters=2, outage_share_pct=40))
    assert not incidents.is_outage(
        2, 6, SiteWatchSettings(outage_min_meters=2, outage_share_pct=40)
    )


def test_incident_pages(site, org, client_for):
    heard(site.meters, NOW - 5 * MINUTE, 0.0)
    incidents.check(now=NOW, notify=False)
    incident = Incident.objects.get()
    client = client_for(org.site_manager)
    listing = client.get(reverse("metering:incidents"))
    assert listing.status_code == 200 and "5 of 5" in listing.content.decode()
    page = client.get(reverse("metering:incident", args=[incident.pk]))
    body = page.content.decode()
    assert page.status_code == 200 and "ongoing" in body
    assert all(m.serial in body for m in site.meters)
    assert (
        client_for(org.outsider_agent)
        .get(reverse("metering:incident", args=[incident.pk]))
        .status_code
        == 404
    )
