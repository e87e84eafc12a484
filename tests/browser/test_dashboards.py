"""A regional manager's journey through the dashboards in headless Chromium.

Signs in, opens the dashboard, changes the period, drills down region → site → customer →
meter, sees the site's plant KPIs (linking to its technical page), sorts the customer
table (htmx swaps only the table) and downloads it as CSV. Every
page passes ``Screen.check`` on a 360 px phone; the site dashboard is also saved at 1280 px.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D
from pathlib import Path

import pytest

from customers import services as customer_services
from mcoms.core import clock
from mcoms.core.audit import acting_as
from metering.models import SiteDailyUsage, SiteHourlyUsage
from metering.plant.models import EnergyBalance, PlantAlert, PlantAsset, PlantLog
from tests.billing.collections.conftest import bill, pay

pytestmark = pytest.mark.browser


@pytest.fixture
def usage_and_money(site_data):
    """Two months of energy on Block A and B, a fortnight of hourly load on Block A, and
    bills and payments for Grace and Winnie (made before the browser starts)."""
    org = site_data.org
    zone = org.block_a.zone
    today = clock.now().astimezone(zone).date()
    daily = []
    for n in range(75):
        day = today - dt.timedelta(days=n)
        weekend = day.isoweekday() >= 6
        daily.append(
            SiteDailyUsage(
                site=org.block_a, day=day, kwh=D(40 + (n * 7) % 13 + (8 if weekend else 0)),
                estimated_kwh=D(2 if n % 9 == 0 else 0), meters=2,
            )
        )  # fmt: skip
        daily.append(SiteDailyUsage(site=org.block_b, day=day, kwh=D(15 + n % 5), meters=1))
    SiteDailyUsage.objects.bulk_create(daily)
    shape = [0.4] * 6 + [1.2, 1.6, 1.0, 0.8, 0.8, 0.9, 1.0, 0.9, 0.8, 1.0, 1.4, 2.4, 3.6, 3.9]
    shape += [3.0, 2.0, 1.0, 0.6]
    hours = []
    for n in range(14):
        day = today - dt.timedelta(days=n)
        extra = 1.25 if day.isoweekday() >= 6 else 1.0
        for h, kwh in enumerate(shape):
            at = dt.datetime.combine(day, dt.time(h), tzinfo=zone).astimezone(dt.UTC)
            value = D(str(round(kwh * extra, 3)))
            hours.append(SiteHourlyUsage(site=org.block_a, hour=at, kwh=value, meters=2))
    SiteHourlyUsage.objects.bulk_create(hours)
    grace, winnie = site_data.customers["grace"], site_data.customers["winnie"]
    with acting_as(label="browser test setup"):
        for key in ("grace", "moses", "winnie", "brian"):
            customer_services.customer_set_status(
                customer=site_data.customers[key], status="active", reason="connected"
            )
    for days_ago in (50, 20):
        issued = today - dt.timedelta(days=days_ago)
        bill(grace, "42000", issued=issued)
        bill(winnie, "18500", issued=issued)
        pay(winnie, "18500", on=issued + dt.timedelta(days=6))
    pay(grace, "30000", on=today - dt.timedelta(days=3))
    # Block A's plant: a PV array, a fortnight of daily balances, hand logs of PV, battery
    # and generator, an open plant alert.
    now = clock.now()
    PlantAsset.objects.create(
        site=org.block_a, kind="pv_array", name="Roof", source="manual", kwp=D("12"), created_at=now
    )
    for n in range(1, 15):
        day = today - dt.timedelta(days=n)
        EnergyBalance.objects.create(
            site=org.block_a, period="day", start=day, method="manual",
            supplied_kwh=D(52 + n % 4), consumed_kwh=D(45 + n % 3), computed_at=now,
        )  # fmt: skip
        PlantLog.objects.create(
            site=org.block_a, read_at=dt.datetime.combine(day, dt.time(17), tzinfo=zone),
            pv_kwh_today=D(50 + n % 6), battery_soc_pct=D(70 - n), generator_hours=D(300 + n),
            photo="plant/browser.jpg", recorded_at=now,
        )  # fmt: skip
    PlantAlert.objects.create(
        site=org.block_a, kind="battery_low", message="battery low", opened_at=now
    )
    return site_data


def test_regional_manager_drills_down_and_downloads(usage_and_money, screen, live_server):
    data = usage_and_money
    org, grace = data.org, data.customers["grace"]
    tab = screen()
    page = tab.page
    tab.sign_in("regional")
    assert page.url.endswith("/dashboard/")
    assert page.get_by_role("heading", name="Overview").is_visible()
    assert page.get_by_role("heading", name="Regions").is_visible()
    assert "Jinja Town" not in page.locator("main").inner_text()  # Eastern is not theirs
    tab.check("dash-home")

    # The period: from preset "Last 30 days" to two chosen dates.
    page.select_option("#preset", "last_30")
    with page.expect_navigation():
        page.click("form.period button[type=submit]")
    assert "preset=last_30" in page.url
    assert "(30 days)" in page.locator(".period-said").inner_text()
    today = clock.now().astimezone(org.block_a.zone).date()
    first = today - dt.timedelta(days=59)
    page.select_option("#preset", "custom")
    page.fill("#from", first.isoformat())
    page.fill("#to", today.isoformat())
    with page.expect_navigation():
        page.click("form.period button[type=submit]")
    assert f"from={first.isoformat()}" in page.url
    assert "(60 days)" in page.locator(".period-said").inner_text()
    tab.check("dash-home-60-days")

    # Region → site (the period travels with each link).
    with page.expect_navigation():
        page.locator("#table-regions").get_by_role("link", name="Central").click()
    assert f"/dashboard/region/{org.central.pk}/" in page.url and "from=" in page.url
    assert page.get_by_role("heading", name="Clusters").is_visible()
    tab.check("dash-region")
    with page.expect_navigation():
        page.locator("#table-sites").get_by_role("link", name="Block A").click()
    assert f"/dashboard/site/{org.block_a.pk}/" in page.url
    assert page.get_by_role("heading", name="Block A").is_visible()
    assert page.locator("figure svg").count() >= 3  # energy, money, load profile
    # The technical KPIs, linking to the site's technical page.
    plant = page.locator("#table-plant")
    assert plant.get_by_role("columnheader", name="Losses %").is_visible()
    link = plant.get_by_role("link", name="Block A")
    assert link.get_attribute("href") == f"/plant/site/{org.block_a.pk}/"
    assert "1 open plant alert" in page.locator(".kpis").inner_text()
    tab.check("dash-site")

    # Sorting the customers swaps only their table.
    with page.expect_response(lambda r: "part=customers" in r.url):
        page.locator("#customers .sorts").get_by_role("link", name="Balance owed").click()
    page.wait_for_load_state("networkidle")
    rows = page.locator("#customers tbody tr")
    assert grace.account_number in rows.first.inner_text()  # Grace owes most
    assert "sort=balance" in page.url  # the address keeps the sort

    with page.expect_download() as caught:
        page.locator("#customers .downloads").get_by_role("link", name="CSV").click()
    download = caught.value
    assert download.suggested_filename.startswith("customers-kla-")
    text = Path(download.path()).read_text(encoding="utf-8-sig")
    assert text.splitlines()[0].startswith("Account,Name,Status,Energy kWh,Billed")
    assert grace.account_number in text
    tab.check("dash-site-sorted")

    # Customer → meter, ending on the meter's own page.
    with page.expect_navigation():
        page.locator("#customers").get_by_role("link", name=grace.account_number).click()
    assert page.get_by_role("heading", name="Grace Nakato").is_visible()
    assert page.get_by_role("link", name="Customer page").is_visible()
    tab.check("dash-customer")
    serial = data.meters["grace"].serial
    with page.expect_navigation():
        page.locator("#table-meters").get_by_role("link", name=serial).click()
    assert page.url.endswith(f"/meters/{data.meters['grace'].pk}/")
    assert serial in page.locator("h1").inner_text()
    tab.check("dash-meter")

    # The site dashboard on a wide screen.
    wide = screen(width=1280, height=900)
    wide.sign_in("regional")
    wide.goto(f"/dashboard/site/{org.block_a.pk}/?preset=last_30")
    wide.check("dash-site-wide")
