"""Payment pages in headless Chromium on a 360 px phone: the agent takes cash, staff follow it.

Each page passes the shared checks (no sideways scrolling, labelled fields, htmx from our
static files, nothing fetched from elsewhere, no script errors) and is screenshotted.
"""

from __future__ import annotations

import pytest

from tests.browser.conftest import chromium, screen, site_data  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_agent_takes_cash_on_a_phone(screen, site_data):  # noqa: F811 - fixtures
    tab = screen(width=360, height=740)
    page = tab.page
    tab.sign_in("agent")
    tab.goto("/field/")
    link = page.locator("main a[href='/payments/field/']")
    assert link.count() == 1, page.locator("main").inner_html()[:800]
    with page.expect_navigation():
        link.click()
    page.wait_for_load_state("networkidle")
    tab.check("payments-field")
    page.fill("#q", "Okello")
    page.wait_for_selector("#results li a")
    tab.check("payments-field-search")
    page.click("#results li a")
    page.wait_for_load_state("networkidle")
    assert "Balance" in page.locator("main").inner_text()
    tab.check("payments-field-customer")
    page.fill("#id_amount", "15000")
    with page.expect_navigation():
        page.click("text=Record cash and send receipt")
    page.wait_for_load_state("networkidle")
    text = page.locator("main").inner_text()
    assert "Receipt R-KLA-000001" in text and "15,000" in text
    tab.check("payments-receipt")


@pytest.fixture
def cash_taken(site_data):  # noqa: F811 - fixtures
    """A cash payment, made before the browser starts (no database calls while it runs)."""
    from billing.payments import services

    moses = site_data.customers["moses"]
    return services.record_cash(customer=moses, amount="20000", agent=site_data.org.agent)


def test_staff_pages_on_a_phone(cash_taken, screen):  # noqa: F811 - fixtures
    tab = screen(width=360, height=740)
    tab.sign_in("billing")
    for path, name in [
        ("/payments/", "payments-list"),
        (f"/payments/{cash_taken.pk}/", "payments-detail"),
        ("/payments/cash/", "payments-cash"),
        ("/payments/cash/handover/", "payments-handover"),
        ("/payments/settlements/", "payments-settlements"),
    ]:
        tab.goto(path)
        tab.check(name)
