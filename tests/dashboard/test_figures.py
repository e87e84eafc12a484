"""The dashboards' numbers on a small known book (see conftest): each figure, its source,
and that each level adds up only its own sites."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from mcoms.core.audit import acting_as
from mcoms.dashboard.kpis import figures, preset_period

pytestmark = pytest.mark.django_db


def test_block_a_over_the_last_30_days(org, book):
    period = preset_period("last_30", book.today)
    figs = figures([org.block_a], period, now=book.now)
    t = figs.total
    assert (t.active, t.new, t.customers) == (2, 3, 3)  # Chebet is an applicant
    assert t.kwh == D("60.5") and t.kwh_est == D("1.5")  # the day 45 days ago is left out
    (money,) = t.currencies
    assert money.currency == "UGX"
    assert money.billed == D("12000")  # 5,000 + 8,000 − the 1,000 credit note; not the old bill
    assert money.collected == D("10000")
    assert money.rate == D("83.3")
    assert money.arpu == D("6000.00")  # 12,000 ÷ 2 active customers
    assert money.arrears.amounts == {
        "current": D("0"),  # Bbosa's bill, not yet due, is paid
        "d0_30": D("4000"),  # 5,000 less the credit note
        "d31_60": D("8000"),  # 10,000 less the 2,000 paid
        "d61_90": D("0"),
        "d90_plus": D("0"),
    }
    assert money.arrears.overdue == D("12000") and money.owing == 1
    assert (t.online, t.offline, t.fleet) == (1, 1, 3)
    assert (t.alerts, t.incidents, t.tasks) == (2, 1, 3)


def test_trends_and_load_profile(org, book):
    period = preset_period("last_30", book.today)
    figs = figures([org.block_a], period, now=book.now)
    assert period.by == "day"
    yesterday = book.today - dt.timedelta(days=1)
    assert figs.energy_trend[yesterday] == (D("20"), D("0"))
    assert figs.money_trend["UGX"][book.today - dt.timedelta(days=10)] == (D("13000"), D("0"))
    assert figs.money_trend["UGX"][book.today - dt.timedelta(days=2)] == (D("0"), D("8000"))
    weekend = yesterday.isoweekday() >= 6
    assert figs.profile[(weekend, 19)] == (D("4.2"), 1)  # kWh, and the days it was seen on
    assert figs.profile[(weekend, 7)] == (D("0.6"), 1)


def test_a_past_period_counts_the_customers_of_that_time(org, book):
    period = preset_period("last_month", book.today - dt.timedelta(days=40))
    figs = figures([org.block_a], period, now=book.now)
    assert (figs.total.active, figs.total.new) == (0, 0)  # nobody was registered yet


def test_the_cluster_adds_its_sites_and_keeps_them_apart(org, book):
    period = preset_period("last_30", book.today)
    figs = figures([org.block_a, org.block_b], period, now=book.now)
    assert figs.per_site[org.block_b.pk].kwh == D("99")
    assert figs.total.kwh == D("159.5")
    (money,) = figs.total.currencies
    assert money.billed == D("12700") and money.arrears.amounts["d0_30"] == D("4700")
    assert figs.total.tasks == 4 and figs.total.active == 3


def test_currencies_are_never_added_together(org, book):
    from mcoms.core.models import Site

    Site.objects.filter(pk=org.block_b.pk).update(currency="KES")
    org.block_b.refresh_from_db()
    period = preset_period("last_30", book.today)
    figs = figures([org.block_a, org.block_b], period, now=book.now)
    by_currency = {m.currency: m for m in figs.total.currencies}
    # Dan's bill was posted in UGX before the change: the ledger keeps its currency.
    assert set(by_currency) == {"UGX", "KES"}
    assert by_currency["UGX"].billed == D("12700")
    assert by_currency["KES"].billed == D("0")


def test_meter_health_by_each_gateways_window_in_a_query_that_does_not_grow(org):
    """Online means a reading within the site's missing intervals x the gateway's log
    interval. Gateways are grouped by that window: the query is the same size for three
    gateways or thirty (a regional overview has hundreds)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from mcoms.core.models import Site
    from metering import kpis as meter_kpis
    from metering import partitions, services
    from metering.models import Gateway, MeterComms
    from tests.metering.edge_fixtures import install

    now = dt.datetime(2026, 6, 30, 12, tzinfo=dt.UTC)
    Site.objects.filter(pk=org.block_a.pk).update(missing_read_intervals=4)  # 4 x 15 min
    Site.objects.filter(pk=org.block_b.pk).update(missing_read_intervals=2)  # 2 x 5 min
    partitions.ensure_months([dt.date(2026, 6, 1)])
    meters = {}
    for site, log_s in ((org.block_a, 900), (org.block_b, 300)):
        with acting_as(label="test setup"):
            gateway = services.gateway_create(
                site=site, name=f"gw-{site.code}", now=now - dt.timedelta(days=10)
            )
        Gateway.objects.filter(pk=gateway.pk).update(log_interval_s=log_s)
        meters[site.pk] = install(site, gateway, 10, at=now - dt.timedelta(days=2))
    # Both meters last reported 30 minutes ago: within Block A's hour, past Block B's 10 min.
    for meter in meters.values():
        MeterComms.objects.update_or_create(
            meter=meter,
            defaults={"last_reading_ts": now - dt.timedelta(minutes=30), "updated_at": now},
        )
    ids = [org.block_a.pk, org.block_b.pk]

    def measured():
        with CaptureQueriesContext(connection) as queries:
            health = meter_kpis.meter_health(ids, now=now)
        return health, max(len(q["sql"]) for q in queries.captured_queries)

    health, size = measured()
    assert (health[org.block_a.pk]["online"], health[org.block_a.pk]["offline"]) == (1, 0)
    assert (health[org.block_b.pk]["online"], health[org.block_b.pk]["offline"]) == (0, 1)
    with acting_as(label="test setup"):
        for n in range(27):
            site = org.block_a if n % 2 else org.block_b
            extra = services.gateway_create(site=site, name=f"gw-more-{n}", now=now)
            Gateway.objects.filter(pk=extra.pk).update(log_interval_s=900 if n % 2 else 300)
    again, grown = measured()
    assert again == health
    assert grown == size  # the same two windows: the same query
