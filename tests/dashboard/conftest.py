"""A small book of known figures on Block A (and a little on Block B), made the way the apps
make them: customers and meters through their services, readings through the edge ingest,
bills, credit notes and payments posted to the ledger and allocated, alerts opened by the
alerting service. Dates are relative to today, so the pages (which read the real clock)
and the queries (given ``NOW``) see the same book.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal as D

import pytest

from fieldops.models import FieldTask
from mcoms.core import clock
from mcoms.core.audit import acting_as
from metering import alerting, ingest, partitions, services
from metering.models import Alert, Incident, SiteDailyUsage, SiteHourlyUsage
from tests import factories
from tests.billing.collections.conftest import bill, credit_note, pay
from tests.metering.edge_fixtures import install, reading


@dataclass
class Book:
    now: dt.datetime
    today: dt.date
    customers: dict
    meters: dict


def _ingest(gateway, address, ts):
    stamp = ts.isoformat().replace("+00:00", "Z")
    outcome = ingest.ingest(gateway=gateway, readings=[reading(address, stamp)], now=ts)
    assert outcome.accepted == 1


@pytest.fixture(autouse=True)
def _no_cached_figures():
    """Figures cached by an earlier test (the plant's telemetry KPIs) are not this test's."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def book(org) -> Book:
    now = clock.now()
    zone = org.block_a.zone
    today = now.astimezone(zone).date()

    def ago(n: int) -> dt.date:
        return today - dt.timedelta(days=n)

    akello = factories.customer(org.block_a, first_name="Akello", last_name="Apio", status="active")
    bbosa = factories.customer(org.block_a, first_name="Bbosa", last_name="Baale", status="active")
    chebet = factories.customer(org.block_a, first_name="Chebet", last_name="Cherop")  # applicant
    dan = factories.customer(org.block_b, first_name="Dan", last_name="Dembe", status="active")

    # Bills: Akello's old one (outside the last 30 days, 35 days overdue), a recent one with
    # a credit note; Bbosa's, paid in full. Payments allocate oldest first.
    bill(akello, "10000", issued=ago(40), due=ago(35))
    recent = bill(akello, "5000", issued=ago(10), due=ago(5))
    bill(bbosa, "8000", issued=ago(10), due=ago(-4))
    credit_note(recent, "1000", issued=ago(1))
    pay(akello, "2000", on=ago(3))
    pay(bbosa, "8000", on=ago(2))
    bill(dan, "700", issued=ago(10), due=ago(1))

    # Energy: three days in the period, one before it; Block B's day is not Block A's.
    days = [
        (ago(2), "10.5", "1.5"),
        (ago(1), "20", "0"),
        (ago(0), "30", "0"),
        (ago(45), "100", "0"),
    ]
    SiteDailyUsage.objects.bulk_create(
        [
            SiteDailyUsage(site=org.block_a, day=d, kwh=D(k), estimated_kwh=D(e), meters=2)
            for d, k, e in days
        ]
        + [SiteDailyUsage(site=org.block_b, day=ago(1), kwh=D("99"), meters=1)]
    )
    # Load profile: 19:00 local on a weekday is the busiest hour.
    evening = dt.datetime.combine(ago(1), dt.time(19), tzinfo=zone).astimezone(dt.UTC)
    SiteHourlyUsage.objects.bulk_create(
        [
            SiteHourlyUsage(site=org.block_a, hour=evening, kwh=D("4.2"), meters=2),
            SiteHourlyUsage(
                site=org.block_a, hour=evening - dt.timedelta(hours=12), kwh=D("0.6"), meters=2
            ),
        ]
    )

    # Meters: two on the bus (one reported ten minutes ago, one never since installed two
    # days ago), one planned but not installed.
    partitions.ensure_months([now.date().replace(day=1)])
    with acting_as(label="test setup"):
        gateway = services.gateway_create(
            site=org.block_a, name="kla-a-1", now=now - dt.timedelta(days=10)
        )
    online = install(org.block_a, gateway, 10, at=now - dt.timedelta(days=2))
    offline = install(org.block_a, gateway, 11, at=now - dt.timedelta(days=2))
    factories.assigned_meter(org.block_a, 12)
    _ingest(gateway, 10, now - dt.timedelta(minutes=10))
    with acting_as(label="test setup"):
        services.meter_serve_customer(meter=online, customer=akello)
        services.meter_serve_customer(meter=offline, customer=bbosa)

    # Alerts: two open (one acknowledged), one resolved; incidents: one open, one ended.
    opened = alerting.open_alerts(
        [
            Alert(kind=Alert.Kind.MISSING_READS, site=org.block_a, meter=offline, message="silent"),
            Alert(kind=Alert.Kind.VOLTAGE, site=org.block_a, meter=online, message="low"),
            Alert(kind=Alert.Kind.NIGHT_SPIKE, site=org.block_a, meter=online, message="spike"),
        ],
        now=now - dt.timedelta(hours=1),
    )
    Alert.objects.filter(pk=opened[1].pk).update(status=Alert.Status.ACKNOWLEDGED)
    Alert.objects.filter(pk=opened[2].pk).update(
        status=Alert.Status.RESOLVED, resolved_at=now - dt.timedelta(minutes=5)
    )
    Incident.objects.create(site=org.block_a, started_at=now - dt.timedelta(hours=2))
    Incident.objects.create(
        site=org.block_a, started_at=now - dt.timedelta(days=3), ended_at=now - dt.timedelta(days=2)
    )

    # Field tasks: open, assigned and in progress count; done does not.
    for status in ("open", "assigned", "in_progress", "done"):
        FieldTask.objects.create(
            site=org.block_a, kind="fix", status=status, title=f"Task {status}",
            created_at=now, updated_at=now,
        )  # fmt: skip
    FieldTask.objects.create(
        site=org.block_b, kind="fix", title="Elsewhere", created_at=now, updated_at=now
    )
    return Book(
        now=now,
        today=today,
        customers={"akello": akello, "bbosa": bbosa, "chebet": chebet, "dan": dan},
        meters={"online": online, "offline": offline},
    )
