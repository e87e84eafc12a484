"""The site energy balance: supplied (main meter, plant telemetry, hand log) against the
customer meters, with estimated and missing data listed, and the losses alert.

Readings go through metering's ingest path and rollups, as the edge API feeds them;
telemetry through the plant's ingest service, as ``/edge/plant`` stores it.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from mcoms.core.audit import acting_as
from metering.models import DailyUsage, SiteDailyUsage
from metering.plant import balance, services, tasks
from metering.plant.models import EnergyBalance, PlantAlert, PlantSettings
from notifications.models import Message
from tests.metering.edge_fixtures import NOW
from tests.plant.readings import DAY, feed, feed_customers, local

pytestmark = pytest.mark.django_db


def test_supply_meters_against_customer_meters_with_estimates_and_gaps_listed(
    grid, bus, org, django_capture_on_commit_callbacks
):
    feed_customers(bus, main_per_step=1.5)
    with django_capture_on_commit_callbacks(execute=True), acting_as(label="test"):
        result = balance.run_site(org.block_a, DAY, now=NOW)
    main = DailyUsage.objects.get(meter=grid["main"], day=DAY)
    customers = DailyUsage.objects.filter(meter__site=org.block_a, day=DAY).exclude(
        meter=grid["main"]
    )
    consumed = sum(r.kwh for r in customers)
    assert result.method == EnergyBalance.Method.METERS
    assert result.supplied_kwh == main.kwh == Decimal("144.000")
    # The main meter is not a customer: metering's site total counts it, the balance does not.
    assert SiteDailyUsage.objects.get(site=org.block_a, day=DAY).kwh == consumed + main.kwh
    assert result.consumed_kwh == consumed
    assert result.losses_kwh == main.kwh - consumed
    assert result.losses_pct == (result.losses_kwh * 100 / main.kwh).quantize(Decimal("0.01"))
    assert result.losses_pct > 15
    why = {u["serial"]: u["why"] for u in result.uncertain}
    assert why == {
        grid[11].serial: "estimated",
        grid[12].serial: "missing",
        grid[13].serial: "incomplete",
    }
    assert result.estimated_kwh > 0
    # The alert lists the meters, so an estimate is not taken for theft.
    alert = PlantAlert.objects.get(site=org.block_a, kind=PlantAlert.Kind.LOSSES_HIGH)
    assert alert.status == PlantAlert.Status.OPEN
    listed = {m["serial"] for m in alert.details["estimated_meters"]}
    assert listed == {grid[11].serial, grid[12].serial, grid[13].serial}
    assert "estimated or missing" in alert.message and grid[12].serial in alert.message
    told = Message.objects.filter(about=f"plant.alert:{alert.pk}")
    assert {m.to for m in told} == {"site_manager@example.org", "supervisor@example.org"}


def test_losses_under_the_threshold_open_nothing_and_clear_an_open_alert(grid, bus, org):
    feed_customers(bus, main_per_step=1.5)
    with acting_as(label="test"):
        balance.run_site(org.block_a, DAY, now=NOW)
        assert PlantAlert.objects.filter(status="open").count() == 1
        PlantSettings.objects.create(site=org.block_a, losses_threshold_pct=Decimal("60"))
        balance.run_site(org.block_a, DAY, now=NOW)
    alert = PlantAlert.objects.get()
    assert alert.status == PlantAlert.Status.RESOLVED
    assert "under 60" in alert.note


def test_without_every_supply_meter_the_plant_telemetry_supplies_the_figure(grid, bus, org):
    feed(bus, 10, 0.4)
    start, end = local(DAY, 0), local(DAY + dt.timedelta(days=1), 0)

    def counter(channel, first_wh, last_wh):
        return [
            {
                "ts": (start - dt.timedelta(minutes=5)).isoformat(),
                "channel": channel,
                "value": first_wh,
            },
            {
                "ts": local(DAY, 12).isoformat(),
                "channel": channel,
                "value": (first_wh + last_wh) / 2,
            },
            {
                "ts": (end + dt.timedelta(minutes=5)).isoformat(),
                "channel": channel,
                "value": last_wh,
            },
        ]

    samples = (
        counter("_sum/ProductionActiveEnergy", 1_000_000, 1_060_000)  # 60 kWh of PV
        + counter("_sum/EssActiveChargeEnergy", 500_000, 520_000)  # 20 kWh into the battery
        + counter("_sum/EssActiveDischargeEnergy", 300_000, 315_000)  # 15 kWh out of it
    )
    services.telemetry_ingest(gateway=bus.gateway, samples=samples, now=NOW)
    with acting_as(label="test"):
        result = balance.run_site(org.block_a, DAY, now=NOW)
    # The main meter has no day: production − (charge − discharge) = 60 − 5.
    assert result.method == EnergyBalance.Method.PLANT
    assert result.detail["supply_meters_missing"] == [grid["main"].serial]
    assert result.supplied_kwh == Decimal("55.000")
    assert result.consumed_kwh == Decimal("38.400")
    assert result.losses_kwh == Decimal("16.600")
    assert result.detail["storage_from"] == "ess_energy"


def test_storage_change_from_the_state_of_charge_when_the_ess_has_no_energy_counters(bus, org):
    with acting_as(label="test setup"):
        services.asset_create(
            site=org.block_a,
            kind="battery",
            name="bank 1",
            source="openems",
            capacity_kwh=Decimal("20"),
            chemistry="LiFePO4",
        )
    start, end = local(DAY, 0), local(DAY + dt.timedelta(days=1), 0)
    services.telemetry_ingest(
        gateway=bus.gateway,
        samples=[
            {"ts": start.isoformat(), "channel": "_sum/ProductionActiveEnergy", "value": 0},
            {"ts": end.isoformat(), "channel": "_sum/ProductionActiveEnergy", "value": 30_000},
            {"ts": start.isoformat(), "channel": "_sum/EssSoc", "value": 50},
            {
                "ts": (end - dt.timedelta(minutes=5)).isoformat(),
                "channel": "_sum/EssSoc",
                "value": 75,
            },
        ],
        now=NOW,
    )
    result = balance.day_balance(org.block_a, DAY, now=NOW)
    # 30 kWh produced, 25 % of 20 kWh (5 kWh) kept in the battery.
    assert result.supplied_kwh == Decimal("25.000")
    assert result.detail["storage_from"] == "soc"


def test_a_hand_logged_pv_figure_when_there_is_no_telemetry_and_no_data_means_no_losses(bus, org):
    feed(bus, 10, 0.4)
    assert balance.day_balance(org.block_a, DAY, now=NOW).method == EnergyBalance.Method.NONE
    result = EnergyBalance.objects.get(site=org.block_a, start=DAY)
    assert result.supplied_kwh is None and result.losses_kwh is None
    assert balance.check_losses(result, now=NOW) is None
    assert not PlantAlert.objects.exists()
    services.plant_log_record(
        site=org.block_a,
        by=org.agent,
        read_at=local(DAY, 18),
        pv_kwh_today=Decimal("41.5"),
        photo=SimpleUploadedFile("inverter.jpg", b"\xff\xd8\xff\xe0jpeg", "image/jpeg"),
        now=NOW,
    )
    result = balance.day_balance(org.block_a, DAY, now=NOW)
    assert result.method == EnergyBalance.Method.MANUAL
    assert result.supplied_kwh == Decimal("41.5")
    assert "storage change unknown" in result.detail["caveat"]


def test_the_month_adds_its_days_and_a_day_without_supply_is_not_a_loss(grid, bus, org):
    feed_customers(bus, main_per_step=1.0)
    next_day = DAY + dt.timedelta(days=1)
    # The next day only the customer meter at 10 reports: the main meter is silent.
    feed(bus, 10, 0.4, start=local(next_day, 0, 30), end=local(next_day, 23, 45), base=139.6)
    with acting_as(label="test"):
        first = balance.run_site(org.block_a, DAY, now=NOW)
        second = balance.run_site(org.block_a, next_day, now=NOW)
    month = EnergyBalance.objects.get(site=org.block_a, period="month", start=DAY.replace(day=1))
    # (Its readings of 00:00 and 00:15 make a day row of a quarter hour: not a day's supply.)
    assert second.supplied_kwh is None
    assert second.detail["supply_meters_incomplete"] == [grid["main"].serial]
    assert month.supplied_kwh == first.supplied_kwh
    assert month.losses_kwh == first.losses_kwh  # the second day's use is not set against it
    assert month.consumed_kwh == first.consumed_kwh + second.consumed_kwh
    assert month.detail["days"] == 2 and month.detail["days_with_supply"] == 1
    by_serial = {u["serial"]: u for u in month.uncertain}
    assert by_serial[grid[12].serial]["days"] == 2
    assert by_serial[grid[12].serial]["why"] == ["missing"]


def test_the_daily_task_balances_the_last_days_of_every_site_with_a_plant(grid, bus, org):
    feed_customers(bus, main_per_step=1.5)
    count = tasks.balance_sites(now=NOW)  # NOW is 4 April: the 1st, 2nd and 3rd
    assert count == 3
    days = EnergyBalance.objects.filter(site=org.block_a, period="day")
    assert sorted(days.values_list("start", flat=True)) == [
        dt.date(2026, 4, 1),
        dt.date(2026, 4, 2),
        DAY,
    ]
    assert PlantAlert.objects.filter(kind="losses_high", status="open").count() == 1
