"""Sites' hourly totals are filled from the hours stored before the rollup kept them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests import factories

BEFORE = [("metering", "0005_manual_readings_site_hourly")]
AFTER = [("metering", "0006_fill_site_hourly_usage")]


@pytest.mark.django_db(transaction=True)
def test_the_migration_sums_each_sites_meters_per_hour(org):
    from metering.models import HourlyUsage, SiteHourlyUsage

    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    hour = dt.datetime(2026, 10, 1, 8, tzinfo=dt.UTC)
    one = factories.assigned_meter(org.block_a, 11)
    two = factories.assigned_meter(org.block_a, 12)
    other = factories.assigned_meter(org.block_b, 11)
    rows = [
        (one, hour, "1.500", "0"),
        (two, hour, "0.250", "0.250"),
        (one, hour + dt.timedelta(hours=1), "2.000", "0"),
        (other, hour, "9.000", "0"),
    ]
    for meter, at, kwh, est in rows:
        HourlyUsage.objects.create(
            meter=meter, hour=at, kwh=Decimal(kwh), estimated_kwh=Decimal(est), intervals=4
        )
    SiteHourlyUsage.objects.all().delete()

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)

    got = {
        (r.site_id, r.hour): (r.kwh, r.estimated_kwh, r.meters)
        for r in SiteHourlyUsage.objects.all()
    }
    assert got == {
        (org.block_a.pk, hour): (Decimal("1.750"), Decimal("0.250"), 2),
        (org.block_a.pk, hour + dt.timedelta(hours=1)): (Decimal("2.000"), Decimal("0"), 1),
        (org.block_b.pk, hour): (Decimal("9.000"), Decimal("0"), 1),
    }
