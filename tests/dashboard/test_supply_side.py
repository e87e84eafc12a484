"""The supply side on the dashboards: the plant's technical KPIs per site and in total,
main/feeder meters kept out of energy delivered and the load profile, and Calin meters
counted online, offline or never checked."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest
from django.urls import reverse

from mcoms.core import clock
from mcoms.core.audit import acting_as
from mcoms.dashboard.kpis import figures, preset_period
from metering import services
from metering.models import DailyUsage, HourlyUsage, Meter, SiteDailyUsage, SiteHourlyUsage
from metering.plant import selectors as plant
from metering.plant.models import EnergyBalance, PlantAlert, PlantAsset, PlantLog, TelemetrySample
from metering.steering.models import Concentrator, MeterState, RemoteRead
from tests import factories

pytestmark = pytest.mark.django_db


def url(name, *args, **query):
    from urllib.parse import urlencode

    return reverse(f"dashboard:{name}", args=args) + ("?" + urlencode(query) if query else "")


def _at(site, day, hour, minute=0):
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=site.zone).astimezone(dt.UTC)


# --- 2. supply meters are not energy delivered -----------------------------------------------


@pytest.fixture
def main_meter(org, book):
    """Block A's main meter: its day and evening hour are in the site rollups, as
    ``metering.rollups`` puts them (it sums every meter of the site)."""
    meter = factories.meter("DTSU666")
    Meter.objects.filter(pk=meter.pk).update(site=org.block_a)
    yesterday = book.today - dt.timedelta(days=1)
    DailyUsage.objects.create(meter=meter, day=yesterday, kwh=D("25"), estimated_kwh=D("2"))
    SiteDailyUsage.objects.filter(site=org.block_a, day=yesterday).update(
        kwh=D("45"), estimated_kwh=D("2")
    )
    evening = _at(org.block_a, yesterday, 19)
    HourlyUsage.objects.create(meter=meter, hour=evening, kwh=D("3"))
    SiteHourlyUsage.objects.filter(site=org.block_a, hour=evening).update(kwh=D("7.2"))
    PlantAsset.objects.create(
        site=org.block_a,
        kind=PlantAsset.Kind.SUPPLY_METER,
        name="Main",
        source=PlantAsset.Source.BUS_METER,
        meter=meter,
        created_at=clock.now(),
    )
    return meter


def test_energy_delivered_leaves_out_the_main_meter(org, book, main_meter):
    period = preset_period("last_30", book.today)
    figs = figures([org.block_a, org.block_b], period, now=book.now)
    yesterday = book.today - dt.timedelta(days=1)
    a = figs.per_site[org.block_a.pk]
    # The site rollup says 45 kWh yesterday; 25 of it is the main meter's.
    assert a.kwh == D("60.5") and a.kwh_est == D("1.5")
    assert a.supply_meters == 1 and figs.per_site[org.block_b.pk].supply_meters == 0
    assert figs.energy_trend[yesterday] == (D("20") + D("99"), D("0"))  # A's and B's
    weekend = yesterday.isoweekday() >= 6
    assert figs.profile[(weekend, 19)] == (D("4.2"), 1)  # 7.2 less the main meter's 3
    assert figs.total.kwh == D("159.5")  # Block B untouched


def test_energy_by_month_leaves_out_the_main_meter_too(org, book, main_meter):
    period = preset_period("this_year", book.today)
    figs = figures([org.block_a], period, now=book.now)
    assert period.by == "month"
    assert figs.total.kwh == sum(k for k, _e in figs.energy_trend.values())
    assert figs.total.kwh in (D("60.5"), D("160.5"))  # with the day 45 days ago if this year


def test_the_page_says_main_meters_are_left_out(org, book, main_meter, client_for):
    body = client_for(org.site_manager).get(url("site", org.block_a.pk)).content.decode()
    assert "1 main/feeder meter left out" in body
    assert "left out of energy delivered and the load profile" in body
    other = client_for(org.site_manager).get(url("site", org.block_b.pk)).content.decode()
    assert "main/feeder meter" not in other


# --- 1. technical KPIs -----------------------------------------------------------------------


@pytest.fixture
def plant_book(org, book):
    """Block A's plant over the last days: balances, PV counter (with an inverter reset),
    SoC, generator hand logs and an open alert. Block B has no plant."""
    site, today = org.block_a, book.today
    now = clock.now()
    with acting_as(label="test setup"):
        gateway = services.gateway_create(site=site, name="kla-plant", now=now)
    PlantAsset.objects.create(
        site=site, kind="pv_array", name="Roof", source="openems", kwp=D("10"), created_at=now
    )
    for n, (supplied, consumed) in enumerate([("100", "80"), ("50", "45")], start=1):
        EnergyBalance.objects.create(
            site=site,
            period="day",
            start=today - dt.timedelta(days=n),
            method="meters",
            supplied_kwh=D(supplied),
            consumed_kwh=D(consumed),
            losses_kwh=D(supplied) - D(consumed),
            estimated_kwh=D("3"),
            computed_at=now,
        )
    # A day with no supply figure: not counted as a loss.
    EnergyBalance.objects.create(
        site=site,
        period="day",
        start=today - dt.timedelta(days=3),
        method="none",
        consumed_kwh=D("70"),
        computed_at=now,
    )
    day = today - dt.timedelta(days=2)
    # Production counter in Wh: +20 kWh, reset to 0, +15 kWh → 35 kWh.
    points = [(6, 1_000_000), (12, 1_020_000), (13, 0), (18, 15_000)]
    samples = [
        TelemetrySample(
            gateway=gateway, site=site, ts=_at(site, day, h), channel=plant.PRODUCTION_ENERGY,
            value=v, received_at=now,
        )
        for h, v in points
    ]  # fmt: skip
    samples += [
        TelemetrySample(
            gateway=gateway, site=site, ts=_at(site, day, h), channel=plant.SOC, value=v,
            received_at=now,
        )
        for h, v in [(6, 35.0), (12, 80.0), (23, 41.5)]
    ]  # fmt: skip
    TelemetrySample.objects.bulk_create(samples)
    for read_at, hours, fuel in [
        (_at(site, today - dt.timedelta(days=60), 9), D("1200"), None),
        (_at(site, day, 9), D("1210.5"), D("20")),
        (_at(site, day, 17), D("1214"), D("5")),
    ]:
        PlantLog.objects.create(
            site=site, read_at=read_at, generator_hours=hours, fuel_added_l=fuel,
            photo="plant/x.jpg", recorded_at=now,
        )  # fmt: skip
    PlantAlert.objects.create(site=site, kind="no_pv", message="no PV", opened_at=now)
    return gateway


def test_site_kpis_per_site(org, book, plant_book):
    period = preset_period("last_30", book.today)
    figs = figures([org.block_a, org.block_b], period, now=book.now)
    assert set(figs.plant) == {org.block_a.pk}  # only sites with plant data
    k = figs.plant[org.block_a.pk]
    assert (k["supplied_kwh"], k["consumed_kwh"], k["losses_kwh"]) == (D("150"), D("125"), D("25"))
    assert k["losses_pct"] == D("16.67") and k["days_with_balance"] == 2
    assert k["pv_kwh"] == D("35.000") and k["pv_from"] == "openems"  # the reset counts from 0
    assert k["specific_yield"] == D("3.50")
    assert k["soc_now_pct"] == D("41.5") and k["min_soc_pct"] == D("35.0")
    # Run-hour counter 1214 at the end less 1200 before the period (not 1210.5, the first in it).
    assert k["generator_hours"] == D("14") and k["fuel_added_l"] == D("25")
    assert k["open_plant_alerts"] == 1
    total = figs.plant_total
    assert total["losses_pct"] == D("16.67") and total["open_plant_alerts"] == 1


def test_kpis_of_many_sites_take_a_fixed_number_of_queries(
    org, book, plant_book, django_assert_num_queries
):
    ids = [org.block_a.pk, org.block_b.pk, org.jinja_town.pk]
    first, last = book.today - dt.timedelta(days=29), book.today
    # Seven for all sites, and five for the one site with production telemetry.
    with django_assert_num_queries(12):
        plant.site_kpis(ids, first, last)
    # More samples, logs and balances do not add queries.
    site, day = org.block_a, book.today - dt.timedelta(days=4)
    TelemetrySample.objects.bulk_create(
        TelemetrySample(
            gateway=plant_book, site=site, ts=_at(site, day, h, m), channel=ch, value=h * 100 + m,
            received_at=clock.now(),
        )
        for h in range(24) for m in (0, 30) for ch in (plant.PRODUCTION_ENERGY, plant.SOC)
    )  # fmt: skip
    with django_assert_num_queries(12):
        kpis = plant.site_kpis(ids, first, last)
    assert kpis[site.pk]["min_soc_pct"] == D("0.0")
    with django_assert_num_queries(1):
        assert plant.plant_sites(ids) == [site.pk]


def test_the_pages_show_plant_kpis_with_a_link_to_the_technical_page(
    org, book, plant_book, client_for
):
    client = client_for(org.site_manager)
    body = client.get(url("site", org.block_a.pk, preset="last_30")).content.decode()
    assert "Plant: supply, losses, PV, battery, generator" in body
    assert reverse("plant:site", args=[org.block_a.pk]) in body
    assert "16.7" in body and "3.50" in body  # losses %, specific yield
    assert "1 open plant alert" in body
    other = client.get(url("site", org.block_b.pk, preset="last_30")).content.decode()
    assert "Plant: supply" not in other
    cluster = client.get(url("cluster", org.block_a.cluster_id, preset="last_30"))
    assert reverse("plant:site", args=[org.block_a.pk]) in cluster.content.decode()
    csv = client.get(
        url("cluster", org.block_a.cluster_id, preset="last_30", table="plant", export="csv")
    )
    lines = (
        b"".join(csv.streaming_content if csv.streaming else [csv.content]).decode().splitlines()
    )
    assert (
        lines[0]
        .lstrip("\ufeff")
        .startswith("Site,Supplied kWh,Consumed by customers kWh,Losses kWh,Losses %")
    )
    assert lines[1].startswith(f"{org.block_a.name},150")


def test_a_site_with_only_hand_logs_gets_pv_from_them(org, book):
    site, now = org.block_b, clock.now()
    day = book.today - dt.timedelta(days=1)
    for hour, pv in [(12, "8.5"), (17, "14.0")]:  # "PV today" read twice: the day is 14
        PlantLog.objects.create(
            site=site, read_at=_at(site, day, hour), pv_kwh_today=D(pv), battery_soc_pct=D("55"),
            photo="plant/y.jpg", recorded_at=now,
        )  # fmt: skip
    k = plant.site_kpis([site.pk], day, day)[site.pk]
    assert k["pv_kwh"] == D("14.0") and k["pv_from"] == "manual"
    assert k["soc_now_pct"] == D("55") and k["specific_yield"] is None  # no kWp recorded


# --- 3. Calin meters online / offline / never checked ----------------------------------------


def _calin(site, status="commissioned"):
    meter = factories.meter("CALIN")
    Meter.objects.filter(pk=meter.pk).update(site=site, status=status)
    return meter


def test_calin_meters_are_counted_online_offline_or_never_checked(org, book, client_for):
    site, now = org.block_a, book.now
    fresh = Concentrator.objects.create(
        number="C-ON", online=True, checked_at=now - dt.timedelta(minutes=10)
    )
    stale = Concentrator.objects.create(
        number="C-OLD", online=True, checked_at=now - dt.timedelta(hours=3)
    )
    down = Concentrator.objects.create(
        number="C-DOWN", online=False, checked_at=now - dt.timedelta(minutes=5)
    )
    for conc in (fresh, stale, down):
        MeterState.objects.create(meter=_calin(site), concentrator=conc)
    answered, failed = _calin(site), _calin(site)
    RemoteRead.objects.create(
        meter=answered,
        data_item="x",
        status="done",
        requested_at=now,
        finished_at=now - dt.timedelta(minutes=5),
    )
    RemoteRead.objects.create(
        meter=failed,
        data_item="x",
        status="failed",
        requested_at=now,
        finished_at=now - dt.timedelta(minutes=5),
    )
    _calin(site)  # never checked
    MeterState.objects.create(meter=_calin(site), concentrator=None)  # no concentrator known
    _calin(site, status="installed")  # in service too: never checked
    in_stock = factories.meter("CALIN")  # not on the site
    assert in_stock.site_id is None

    period = preset_period("last_30", book.today)
    t = figures([site], period, now=now).total
    # The book's bus meters: one online, one offline. Calin: fresh concentrator and the
    # answered read online; stale and down concentrators and the failed read offline.
    assert (t.online, t.offline, t.unknown) == (1 + 2, 1 + 3, 3)
    assert t.fleet == 3 + 8

    client = client_for(org.site_manager)
    body = client.get(url("site", site.pk)).content.decode()
    assert "3 Calin meters never checked" in body
    cluster = client.get(url("cluster", site.cluster_id)).content.decode()
    assert "Meters never checked" in cluster  # a column of the sites table


def test_the_site_page_with_a_plant_takes_a_fixed_number_of_queries(
    org, book, plant_book, main_meter, client_for, django_assert_max_num_queries
):
    client = client_for(org.site_manager)
    path = url("site", org.block_a.pk, preset="this_year")
    client.get(path)
    # 21 without a plant; a plant adds its KPIs (7 + 5 for production telemetry) and the
    # main meter's days and hours taken off energy and the load profile (2).
    with django_assert_max_num_queries(35) as few:
        client.get(path)
    for _ in range(5):
        MeterState.objects.create(meter=_calin(org.block_a))
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(path).status_code == 200


def test_the_customer_page_says_whether_their_calin_meter_is_online(org, book, client_for):
    now = book.now
    meter = _calin(org.block_a)
    conc = Concentrator.objects.create(
        number="C-1", online=True, checked_at=now - dt.timedelta(minutes=3)
    )
    MeterState.objects.create(meter=meter, concentrator=conc)
    customer = book.customers["chebet"]
    with acting_as(label="test setup"):
        services.meter_serve_customer(meter=meter, customer=customer)
    client = client_for(org.site_manager)
    assert "online (Calin)" in client.get(url("customer", customer.pk)).content.decode()
    Concentrator.objects.filter(pk=conc.pk).update(checked_at=now - dt.timedelta(hours=2))
    assert "offline (Calin)" in client.get(url("customer", customer.pk)).content.decode()
    MeterState.objects.filter(meter=meter).update(concentrator=None)
    assert "never checked (Calin)" in client.get(url("customer", customer.pk)).content.decode()
