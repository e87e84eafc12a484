"""The site's hourly load (the load profile's source) is kept by the rollups as readings
arrive, late ones included."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from mcoms.core.audit import acting_as
from metering import ingest, partitions, services, tasks
from metering.models import HourlyUsage, SiteHourlyUsage
from tests.metering.edge_fixtures import install, reading

pytestmark = pytest.mark.django_db
T = dt.datetime(2026, 4, 4, 6, 0, tzinfo=dt.UTC)


@pytest.fixture
def send(django_capture_on_commit_callbacks):
    """Post one reading through the ingest; its rollup refresh runs after commit."""

    def post(gateway, address, at, energy):
        stamp = at.isoformat().replace("+00:00", "Z")
        body = reading(address, stamp, energy=float(energy))
        with django_capture_on_commit_callbacks(execute=True):
            outcome = ingest.ingest(gateway=gateway, readings=[body], now=at)
            assert outcome.accepted == 1
            tasks.after_ingest(outcome, now=at)  # what the edge API does after a batch

    return post


def test_site_hours_are_the_sum_of_the_meters_hours(org, send):
    partitions.ensure_months([dt.date(2026, 3, 1), dt.date(2026, 4, 1)])
    with acting_as(label="test setup"):
        gateway = services.gateway_create(
            site=org.block_a, name="kla-a-1", now=T - dt.timedelta(days=9)
        )
    install(org.block_a, gateway, 10, at=T - dt.timedelta(days=1))
    install(org.block_a, gateway, 11, at=T - dt.timedelta(days=1))
    for minutes, a, b in ((0, "100.0", "50.0"), (60, "101.5", "50.5"), (120, "102.0", "52.5")):
        at = T + dt.timedelta(minutes=minutes)
        send(gateway, 10, at, a)
        send(gateway, 11, at, b)
    hours = dict(SiteHourlyUsage.objects.filter(site=org.block_a).values_list("hour", "kwh"))
    assert hours == {T: D("2.000"), T + dt.timedelta(hours=1): D("2.500")}
    assert SiteHourlyUsage.objects.get(hour=T).meters == 2
    # A late reading in the middle of the first hour changes nothing in the totals…
    send(gateway, 10, T + dt.timedelta(minutes=30), "101.0")
    assert SiteHourlyUsage.objects.get(hour=T).kwh == D("2.000")
    # …and the site's hours always equal the sum of its meters' hours.
    for row in SiteHourlyUsage.objects.all():
        meters = HourlyUsage.objects.filter(hour=row.hour, meter__site=org.block_a)
        assert row.kwh == sum(m.kwh for m in meters)
