"""The plant pages in headless Chromium on a 360 px phone: a field agent's plant log with a
photo, and the site manager's technical page (screenshots in var/screenshots/)."""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import OperationalError

from tests.browser.conftest import chromium, screen  # noqa: F401
from tests.plant.readings import DAY, feed_customers

pytestmark = [pytest.mark.browser]
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00display"


def db(fn):
    """Run ``fn`` off Playwright's event loop (retrying while SQLite's shared memory db is
    locked by the live server)."""

    def attempt():
        for _ in range(50):
            try:
                return fn()
            except OperationalError:
                time.sleep(0.1)
        return fn()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(attempt).result()


@pytest.fixture
def site_data(org, bus, grid):
    """Block A with a day of readings and its balance, and OpenEMS samples through today."""
    from decimal import Decimal

    from mcoms.core import clock
    from mcoms.core.audit import acting_as
    from metering.plant import balance, services
    from tests.metering.edge_fixtures import NOW

    feed_customers(bus, main_per_step=1.5)
    now = clock.now()
    start = now.astimezone(org.block_a.zone).replace(hour=0, minute=0, second=0, microsecond=0)
    samples, ts, n = [], start, 0
    while ts < now:
        hour = ts.hour + ts.minute / 60
        sun = max(0.0, 1 - abs(hour - 12.5) / 6)
        for channel, value in (
            ("_sum/ProductionActivePower", 9000 * sun),
            ("_sum/ConsumptionActivePower", 1500 + 2500 * (18 <= hour <= 22)),
            ("_sum/GridActivePower", 0),
            ("_sum/EssSoc", 40 + 50 * sun),
        ):
            samples.append({"ts": ts.isoformat(), "channel": channel, "value": value})
        ts += dt.timedelta(minutes=30)
        n += 1
    samples.append({"ts": now.isoformat(), "channel": "_sum/EssSoc", "value": 61})
    services.telemetry_ingest(gateway=bus.gateway, samples=samples, now=now)
    with acting_as(label="browser test setup"):
        services.asset_create(
            site=org.block_a,
            kind="pv_array",
            name="Roof array",
            source="openems",
            kwp=Decimal("12"),
        )
        services.asset_create(
            site=org.block_a,
            kind="battery",
            name="Battery bank",
            source="openems",
            capacity_kwh=Decimal("30"),
            chemistry="LiFePO4",
        )
        balance.run_site(org.block_a, DAY, now=NOW)
    return org


def test_field_agent_logs_the_plant_on_a_phone(site_data, screen, tmp_path):  # noqa: F811
    tab = screen(width=360, height=740)
    page = tab.page
    tab.sign_in("agent")
    tab.goto("/plant/log/")
    tab.check("plant-log-form")
    page.fill("#id_pv_kwh_today", "41.5")
    page.fill("#id_battery_soc_pct", "78")
    page.fill("#id_generator_hours", "1203.4")
    with page.expect_navigation():
        page.click("text=Save the log")
    page.wait_for_selector("text=This field is required")  # no photo yet
    assert page.locator("#id_pv_kwh_today").input_value() == "41.5"
    tab.check("plant-log-needs-photo")
    page.set_input_files(
        "#id_photo", files=[{"name": "display.jpg", "mimeType": "image/jpeg", "buffer": JPEG}]
    )
    with page.expect_navigation():
        page.click("text=Save the log")
    page.wait_for_selector("text=Plant log saved for Block A")
    tab.check("plant-log-saved")

    def saved():
        from metering.plant.models import PlantLog

        log = PlantLog.objects.get()
        return str(log.pv_kwh_today), log.logged_by.username, log.photo.read()

    assert db(saved) == ("41.50", "agent", JPEG)


def test_site_manager_reads_the_technical_page_on_a_phone(site_data, screen):  # noqa: F811
    tab = screen(width=360, height=740)
    page = tab.page
    tab.sign_in("site_manager")
    tab.goto("/plant/")
    tab.check("plant-sites")
    with page.expect_navigation():
        page.click("text=Block A")
    page.wait_for_selector("text=Power now")
    assert page.locator("text=Losses above the site").count() >= 1
    assert page.locator("svg").count() >= 2
    tab.check("plant-site-technical")
    wide = screen(width=1280, height=900)
    wide.sign_in("site_manager")
    wide.goto(f"/plant/site/{site_data.block_a.pk}/")
    wide.check("plant-site-technical-desktop")
