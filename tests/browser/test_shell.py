"""The three front-ends in headless Chromium on a 360 px phone screen.

Every page visited is checked (see ``Screen.check``): no sideways scrolling at
360 px, a label for every visible form field, htmx loaded from our own static
files, no request to any other host, no JavaScript errors; and it is saved as a
screenshot under ``var/screenshots/``.
"""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser


def expect_htmx(page, path: str):
    """Wait for an htmx request to ``path`` (marked by its HX-Request header)."""
    return page.expect_response(
        lambda r: r.url.split("?")[0].endswith(path) and r.request.headers.get("hx-request")
    )


def test_site_manager_dashboard_customers_and_meters(screen, site_data):
    tab = screen()
    page = tab.page
    grace, winnie = site_data.customers["grace"], site_data.customers["winnie"]
    tab.sign_in("site_manager")

    assert page.url.endswith("/dashboard/")
    assert page.get_by_role("heading", name="Sites").is_visible()
    assert page.locator("table").get_by_text("Block A").is_visible()
    tab.check("dashboard")

    page.click("summary")  # the menu, folded on a phone
    assert page.locator(".menu nav").get_by_role("link", name=re.compile("Customers")).is_visible()
    tab.check("dashboard-menu-open")

    tab.goto("/customers/")
    rows = page.locator("#results tbody tr")
    assert rows.count() == 3  # Block A only: Brian on Block B is out of scope
    assert "Brian" not in page.locator("#results").inner_text()
    tab.check("customers")

    with expect_htmx(page, "/customers/"):
        page.fill("#q", "Nakato")
    page.wait_for_load_state("networkidle")
    assert rows.count() == 1
    assert "Grace Nakato" in rows.first.inner_text()
    assert "q=Nakato" in page.url  # hx-push-url keeps the search in the address bar
    tab.check("customers-search")

    with expect_htmx(page, f"/customers/{grace.pk}/meters/"):
        page.click(f"text={grace.account_number}")
    page.wait_for_load_state("networkidle")
    assert page.url.endswith(f"/customers/{grace.pk}/")
    meters = page.locator("li", has_text=site_data.meters["grace"].serial)
    meters.wait_for()
    assert page.get_by_text("Loading meters").count() == 0
    tab.check("customer")

    tab.goto("/meters/")
    listed = page.locator("#results tbody").inner_text()
    assert site_data.meters["grace"].serial in listed
    assert site_data.meters["winnie"].serial in listed
    assert site_data.meters["brian"].serial not in listed
    tab.check("meters")

    page.click(f"text={site_data.meters['winnie'].serial}")
    page.wait_for_load_state("networkidle")
    assert page.url.endswith(f"/meters/{site_data.meters['winnie'].pk}/")
    assert site_data.meters["winnie"].serial in page.locator("h1").inner_text()
    assert winnie.account_number in page.content()
    tab.check("meter")


def test_admin_audit_trail(screen, site_data):
    tab = screen()
    tab.sign_in("admin")
    tab.goto("/audit/")
    assert tab.page.locator("table tbody tr").count() > 0
    assert "browser test setup" in tab.page.content()
    tab.check("audit")


def test_field_agent_home_and_customer_search(screen, site_data):
    tab = screen(width=360, height=740)
    page = tab.page
    tab.sign_in("agent")
    assert page.url.endswith("/field/")
    assert "Block A" in page.locator("main").inner_text()
    tab.check("field-home")

    with expect_htmx(page, "/field/"):
        page.fill("#q", "Okello")
    page.wait_for_load_state("networkidle")
    results = page.locator("#results").inner_text()
    assert "Moses Okello" in results
    assert "Grace" not in results
    tab.check("field-search")


def test_customer_portal(screen, site_data):
    tab = screen()
    page = tab.page
    tab.sign_in("customer")
    assert page.url.endswith("/portal/")
    text = page.locator("main").inner_text()
    assert "Hello Winnie" in text
    assert site_data.customers["winnie"].account_number in text
    assert site_data.meters["winnie"].serial in text
    assert site_data.meters["grace"].serial not in text
    tab.check("portal")


def test_wide_screen_shows_the_menu_links_in_the_top_bar(screen, site_data):
    tab = screen(width=1280, height=800)
    page = tab.page
    tab.sign_in("site_manager")
    nav = page.locator(".menu nav")
    assert not page.locator(".menu summary").is_visible()  # no button needed: links show
    for label in ("Dashboard", "Customers", "Meters"):
        assert nav.get_by_role("link", name=label, exact=True).is_visible(), label
    tab.check("dashboard-desktop")
    with page.expect_navigation():
        nav.get_by_role("link", name="Customers", exact=True).click()
    assert page.url.endswith("/customers/")
    tab.check("customers-desktop")
