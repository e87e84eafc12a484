"""Plant health: battery SoC, depth of discharge and cycles, PV specific yield, generator
hours, and the battery, PV and inverter alerts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from mcoms.core.audit import acting_as
from metering.plant import health, selectors, services, tasks
from metering.plant.models import PlantAlert
from notifications.models import Message
from tests.plant.readings import DAY, local

pytestmark = pytest.mark.django_db


def put(bus, *points):
    """Store (local time, channel, value) samples as the edge endpoint does."""
    samples = [{"ts": t.isoformat(), "channel": c, "value": v} for t, c, v in points]
    outcome = services.telemetry_ingest(gateway=bus.gateway, samples=samples, now=points[-1][0])
    assert not outcome.rejected


@pytest.fixture
def plant(org):
    with acting_as(label="test setup"):
        services.asset_create(
            site=org.block_a, kind="pv_array", name="roof", source="openems", kwp=Decimal("12.5")
        )
        services.asset_create(
            site=org.block_a,
            kind="battery",
            name="bank",
            source="openems",
            capacity_kwh=Decimal("20"),
            chemistry="LiFePO4",
        )
        services.asset_create(
            site=org.block_a,
            kind="inverter",
            name="SRNE 1",
            source="openems",
            make_model="SRNE HF4850S80-H",
            rated_kw=Decimal("5"),
        )
    return org.block_a


def log(org, at, **values):
    return services.plant_log_record(
        site=org.block_a,
        by=org.agent,
        read_at=at,
        photo=SimpleUploadedFile("d.jpg", b"\xff\xd8jpeg", "image/jpeg"),
        now=at,
        **values,
    )


def test_battery_pv_and_generator_figures_of_a_day(plant, bus, org):
    soc, pv, dis = "_sum/EssSoc", "_sum/ProductionActiveEnergy", "_sum/EssActiveDischargeEnergy"
    put(
        bus,
        (local(DAY, 0), soc, 80),
        (local(DAY, 6), soc, 30),
        (local(DAY, 14), soc, 95),
        (local(DAY, 23, 55), soc, 70),
        (local(DAY, 0), pv, 1_000_000),
        (local(DAY, 23, 55), pv, 1_060_000),
        (local(DAY, 0), dis, 0),
        (local(DAY, 23, 55), dis, 10_000),
    )
    log(org, local(DAY, 7), generator_hours=Decimal("1200"))
    log(org, local(DAY, 19), generator_hours=Decimal("1206.5"), fuel_added_l=Decimal("20"))
    day = health.day_health(plant, DAY)
    assert (day.soc_min, day.soc_max, day.depth_of_discharge) == (30, 95, 70)
    assert day.cycles == Decimal("0.50")  # 10 kWh out of a 20 kWh bank
    assert day.pv_kwh == Decimal("60.000") and day.specific_yield == Decimal("4.80")
    assert day.generator_hours == Decimal("6.5") and day.fuel_added_l == Decimal("20")
    # Days are lined up to compare yields; a day without data is None, not zero.
    days = health.yields(plant, DAY + dt.timedelta(days=1), 3)
    assert [d.day for d in days] == [DAY - dt.timedelta(days=1), DAY, DAY + dt.timedelta(days=1)]
    assert [d.specific_yield for d in days] == [None, Decimal("4.80"), None]


def test_cycles_from_the_state_of_charge_and_hand_logs_without_telemetry(plant, bus, org):
    put(
        bus,
        (local(DAY, 0), "_sum/EssSoc", 90),
        (local(DAY, 8), "_sum/EssSoc", 40),
        (local(DAY, 14), "_sum/EssSoc", 100),
        (local(DAY, 22), "_sum/EssSoc", 75),
    )
    assert health.day_health(plant, DAY).cycles == Decimal("0.75")  # falls of 50 and 25
    other = DAY - dt.timedelta(days=1)
    log(org, local(other, 7), battery_soc_pct=Decimal("45"))
    log(org, local(other, 18), battery_soc_pct=Decimal("85"), pv_kwh_today=Decimal("50"))
    day = health.day_health(plant, other)
    assert day.source == "manual" and (day.soc_min, day.soc_max) == (45, 85)
    assert day.pv_kwh == Decimal("50") and day.specific_yield == Decimal("4.00")


def test_battery_below_its_floor_opens_an_alert_told_to_staff_and_clears(
    plant, bus, org, django_capture_on_commit_callbacks
):
    now = local(DAY, 21)
    put(bus, (now - dt.timedelta(minutes=5), "_sum/EssSoc", 14))
    with django_capture_on_commit_callbacks(execute=True), acting_as(label="test"):
        health.check_site(plant, now=now)
    alert = PlantAlert.objects.get(kind="battery_low")
    assert alert.status == "open" and "14 %" in alert.message and "20 % floor" in alert.message
    assert Message.objects.filter(about=f"plant.alert:{alert.pk}").count() == 2
    later = now + dt.timedelta(hours=1)
    put(bus, (later - dt.timedelta(minutes=5), "_sum/EssSoc", 35))
    with acting_as(label="test"):
        health.check_site(plant, now=later)
    alert.refresh_from_db()
    assert alert.status == "resolved" and alert.note == "Battery at 35 %"


def test_a_hand_logged_low_battery_counts_when_it_is_newer_than_telemetry(plant, bus, org):
    now = local(DAY, 21)
    put(bus, (now - dt.timedelta(minutes=30), "_sum/EssSoc", 60))
    log(org, now - dt.timedelta(minutes=10), battery_soc_pct=Decimal("12"))
    with acting_as(label="test"):
        kinds = [a.kind for a in health.check_site(plant, now=now)]
    assert kinds == ["battery_low"]
    assert "hand log" in PlantAlert.objects.get().message


def test_no_pv_in_daylight_but_not_at_night(plant, bus, org):
    power = "_sum/ProductionActivePower"
    noon = local(DAY, 12)
    put(bus, *[(noon - dt.timedelta(minutes=m), power, 0) for m in (50, 35, 20, 5)])
    with acting_as(label="test"):
        assert [a.kind for a in health.check_site(plant, now=noon)] == ["no_pv"]
        night = local(DAY, 21)
        put(bus, *[(night - dt.timedelta(minutes=m), power, 0) for m in (35, 5)])
        assert health.check_site(plant, now=night) == []
        assert PlantAlert.objects.get(kind="no_pv").status == "open"  # cleared by sun, not night
        morning = local(DAY + dt.timedelta(days=1), 10)
        put(bus, (morning - dt.timedelta(minutes=5), power, 3200))
        health.check_site(plant, now=morning)
    assert PlantAlert.objects.get(kind="no_pv").status == "resolved"


def test_inverter_data_silent_opens_and_clears(plant, bus, org):
    now = local(DAY, 21)
    with acting_as(label="test"):
        # Registered OpenEMS equipment but never a sample: silent.
        assert [a.kind for a in health.check_site(plant, now=now)] == ["inverter_silent"]
        put(bus, (now - dt.timedelta(hours=2), "_sum/EssSoc", 60))
        health.check_site(plant, now=now)
        assert "since" in PlantAlert.objects.get(kind="inverter_silent").message
        put(bus, (now - dt.timedelta(minutes=2), "_sum/EssSoc", 60))
        health.check_site(plant, now=now)
    assert PlantAlert.objects.get(kind="inverter_silent").status == "resolved"


def test_a_site_without_openems_equipment_is_never_silent(org, bus):
    log(org, local(DAY, 9), pv_kwh_today=Decimal("3"))
    with acting_as(label="test"):
        assert health.check_site(org.block_a, now=local(DAY, 21)) == []


def test_the_task_checks_every_site_with_a_plant_and_kpis_sum_them(plant, bus, org):
    result = tasks.check_health()
    assert result == {str(org.block_a.pk): ["inverter_silent"]}
    kpis = selectors.site_kpis([org.block_a.pk, org.block_b.pk], DAY, DAY)
    assert kpis[org.block_a.pk]["kwp"] == Decimal("12.500")
    assert kpis[org.block_a.pk]["open_plant_alerts"] == 1
    assert kpis[org.block_b.pk]["supplied_kwh"] is None
    assert selectors.kpi_totals(kpis)["open_plant_alerts"] == 1
