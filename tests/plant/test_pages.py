"""The plant pages: the field agent's plant log with a photo, the site's technical page,
the balance export, assets and resolving alerts — and who may do what."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from mcoms.core.audit import acting_as
from mcoms.core.models import AuditEvent
from metering.plant import balance, selectors, services
from metering.plant.models import PlantAlert, PlantAsset, PlantLog
from tests.plant.readings import DAY, feed_customers

pytestmark = [pytest.mark.django_db]
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00fake-display-photo"


def photo(name="display.jpg", kind="image/jpeg", data=JPEG):
    return SimpleUploadedFile(name, data, kind)


def log_post(org, **values):
    data = {"site": org.block_a.pk, "read_at": "2026-04-04T18:30", "photo": photo()}
    data.update(values)
    return data


def test_a_field_agent_logs_the_plant_from_a_phone_with_a_photo(org, client_for):
    client = client_for(org.agent)
    page = client.get("/plant/log/")
    assert page.status_code == 200
    html = page.content.decode()
    for label in (
        "PV generation today (kWh)",
        "Battery state of charge (%)",
        "Generator run-hour counter (h)",
        "Fuel added (litres)",
        "Photo of the display",
    ):
        assert label in html
    assert 'capture="environment"' in html and 'accept="image/*"' in html
    answer = client.post(
        "/plant/log/",
        log_post(
            org,
            pv_kwh_today="41.5",
            battery_soc_pct="78",
            generator_hours="1203.4",
            fuel_added_l="20",
        ),
        follow=True,
    )
    assert "Plant log saved for Block A at 04 Apr 18:30" in answer.content.decode()
    log = PlantLog.objects.get()
    assert (log.pv_kwh_today, log.battery_soc_pct, log.generator_hours, log.fuel_added_l) == (
        Decimal("41.50"),
        Decimal("78.0"),
        Decimal("1203.4"),
        Decimal("20.0"),
    )
    assert log.logged_by == org.agent
    assert log.read_at == dt.datetime(2026, 4, 4, 15, 30, tzinfo=dt.UTC)  # 18:30 in Kampala
    assert log.photo.read() == JPEG
    event = AuditEvent.objects.get(object_type="plant.plantlog", object_id=str(log.pk))
    assert event.actor == org.agent and event.after["photo"] == log.photo.name
    # The photo is served to staff of the site only.
    assert client.get(f"/plant/log/{log.pk}/photo").status_code == 200
    assert client_for(org.outsider_agent).get(f"/plant/log/{log.pk}/photo").status_code == 404


def test_bad_plant_logs_say_why_and_keep_what_was_typed(org, client_for):
    client = client_for(org.agent)
    no_photo = log_post(org, pv_kwh_today="41.5")
    del no_photo["photo"]
    page = client.post("/plant/log/", no_photo).content.decode()
    assert "This field is required" in page and 'value="41.5"' in page
    nothing = client.post("/plant/log/", log_post(org)).content.decode()
    assert "Enter at least one value read from the displays." in nothing
    not_image = client.post(
        "/plant/log/", log_post(org, pv_kwh_today="3", photo=photo("x.pdf", "application/pdf"))
    ).content.decode()
    assert "The photo must be an image." in not_image
    client.post("/plant/log/", log_post(org, generator_hours="1200"))
    back = client.post(
        "/plant/log/",
        log_post(org, generator_hours="1100", read_at="2026-04-04T19:00", photo=photo()),
    ).content.decode()
    assert "cannot go back" in back
    assert PlantLog.objects.count() == 1
    # Another site's agent cannot log for Block A; a billing officer cannot log at all.
    outsider = client_for(org.outsider_agent).post("/plant/log/", log_post(org, fuel_added_l="5"))
    assert outsider.status_code == 200 and "Select a valid choice" in outsider.content.decode()
    assert client_for(org.billing).get("/plant/log/").status_code == 403
    assert PlantLog.objects.count() == 1


def test_the_technical_page_shows_flows_charts_balance_and_losses(
    grid,
    bus,
    org,
    client_for,  # noqa: F811
):
    feed_customers(bus, main_per_step=1.5)
    now = dt.datetime(2026, 4, 4, 9, 0, tzinfo=dt.UTC)
    services.telemetry_ingest(
        gateway=bus.gateway,
        samples=[
            {"ts": "2026-04-04T08:55:00Z", "channel": "_sum/ProductionActivePower", "value": 2400},
            {"ts": "2026-04-04T08:55:00Z", "channel": "_sum/ConsumptionActivePower", "value": 1800},
            {"ts": "2026-04-04T08:55:00Z", "channel": "_sum/GridActivePower", "value": 0},
            {"ts": "2026-04-04T08:55:00Z", "channel": "_sum/EssSoc", "value": 63},
        ],
        now=now,
    )
    with acting_as(label="test"):
        services.asset_create(
            site=org.block_a, kind="pv_array", name="roof", source="openems", kwp=Decimal("12.5")
        )
        balance.run_site(org.block_a, DAY, now=now)
    page = client_for(org.site_manager).get(f"/plant/site/{org.block_a.pk}/?day=2026-04-04")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Production and consumption" in html and "Battery state of charge" in html
    day = next(b for b in selectors.balances(org.block_a, "day") if b.start == DAY)
    assert f"{day.losses_pct}" in html and "plant-bad" in html
    for u in day.uncertain:
        assert u["serial"] in html
    assert "Losses above the site" in html  # the open alert
    assert "12.500 kWp" in html and "main_supply" in html
    # Export of the same table.
    csv = client_for(org.site_manager).get(f"/plant/site/{org.block_a.pk}/balance.csv")
    assert csv["Content-Type"].startswith("text/csv")
    assert f"{DAY},Main/feeder meters,{day.supplied_kwh}" in csv.content.decode()
    # Outside the scope: not found.
    assert client_for(org.outsider_agent).get(f"/plant/site/{org.block_a.pk}/").status_code == 404


def test_power_flows_now_come_from_the_latest_samples(bus, org, client_for, monkeypatch):
    from mcoms.core import clock

    now = dt.datetime(2026, 4, 4, 9, 0, tzinfo=dt.UTC)
    monkeypatch.setattr(clock, "now", lambda: now)
    services.telemetry_ingest(
        gateway=bus.gateway,
        samples=[
            {"ts": "2026-04-04T08:55:00Z", "channel": "_sum/ProductionActivePower", "value": 2400},
            {"ts": "2026-04-04T08:55:00Z", "channel": "_sum/ConsumptionActivePower", "value": 1800},
            {"ts": "2026-04-04T08:55:00Z", "channel": "_sum/EssSoc", "value": 63},
        ],
        now=now,
    )
    html = client_for(org.site_manager).get(f"/plant/site/{org.block_a.pk}/").content.decode()
    assert "2.40" in html and "1.80" in html and "0.60" in html and "charging" in html


def test_managers_add_equipment_and_resolve_alerts_agents_cannot(org, bus, client_for):
    manager = client_for(org.site_manager)
    url = f"/plant/site/{org.block_a.pk}/assets/new/"
    assert client_for(org.agent).get(url).status_code == 403
    answer = manager.post(
        url,
        {
            "kind": "battery",
            "name": "bank 1",
            "source": "openems",
            "capacity_kwh": "20",
            "chemistry": "LiFePO4",
        },
    )
    assert answer.status_code == 302
    bank = PlantAsset.objects.get(name="bank 1")
    assert AuditEvent.objects.filter(object_type="plant.plantasset", object_id=str(bank.pk))
    refused = manager.post(url, {"kind": "supply_meter", "name": "main", "source": "bus_meter"})
    assert "needs the meter" in refused.content.decode()
    assert (
        manager.post(
            url, {"kind": "supply_meter", "name": "main", "source": "manual", "meter": bus.three.pk}
        ).status_code
        == 302
    )
    main = PlantAsset.objects.get(name="main")
    assert main.source == "bus_meter" and selectors.is_supply_meter(bus.three.pk)
    alert = PlantAlert.objects.create(
        site=org.block_a,
        kind="battery_low",
        message="low",
        opened_at=dt.datetime(2026, 4, 4, tzinfo=dt.UTC),
    )
    resolve = f"/plant/alerts/{alert.pk}/resolve"
    assert client_for(org.agent).post(resolve, {"note": "x"}).status_code == 403
    manager.post(resolve, {"note": ""})
    alert.refresh_from_db()
    assert alert.status == "open"
    manager.post(resolve, {"note": "Generator started, battery charging"})
    alert.refresh_from_db()
    assert alert.status == "resolved" and alert.resolved_by == org.site_manager


def test_the_sites_list_shows_each_visible_sites_kpis(org, client_for):
    html = client_for(org.regional).get("/plant/").content.decode()
    assert "Block A" in html and "Block B" in html and "Jinja Town" not in html
