"""The customer's main journeys in the portal, on a 360 px phone in headless Chromium.

1. Sign in with phone number and PIN; home (balance, usage, forecast, latest bill); usage
   charts; the forecast; bills and a bill; receipts and a receipt's PDF; the profile edited;
   a package requested; the field agent; messages.
2. Sign in with a code by SMS on a phone shared by two accounts (the code read from the
   stored message, as the phone would show it), then choose the account.

Every page passes ``Screen.check`` and is saved under ``var/screenshots/portal-*.png``.
"""

from __future__ import annotations

import datetime as dt
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal as D

import pytest

from billing.models import ServicePackage
from customers.models import Customer, ServiceRequest
from mcoms.core import clock
from mcoms.core.audit import acting_as
from metering import services as meter_services
from metering.models import DailyUsage
from notifications.models import Channel, Message, MessageTemplate
from notifications.selfservice import pins, portal_auth
from notifications.services import send_message
from tests import factories
from tests.billing.collections.conftest import bill, pay
from tests.billing.prepaid.helpers import package, tariff_in_force

pytestmark = pytest.mark.browser

PIN = "2580"
FLAT = {
    "fixed": [{"name": "Monthly standing charge", "amount": "3000"}],
    "energy": {"type": "flat", "rate": "800"},
    "vat_percent": "18",
}


@dataclass
class Portal:
    amina: Customer
    shared_phone: str
    first: Customer
    second: Customer
    big: ServicePackage


def _usage(customer: Customer, today: dt.date) -> None:
    """Two years of daily use: about 3 kWh a day, more at weekends, a little growth."""
    meter = factories.assigned_meter(customer.site, 40 + customer.pk % 50)
    with acting_as(label="browser test setup"):
        meter_services.meter_serve_customer(
            meter=meter, customer=customer, now=clock.now() - dt.timedelta(days=800)
        )
    rows = []
    for back in range(0, 730):
        day = today - dt.timedelta(days=back)
        kwh = D("2.6") + D(day.weekday() >= 5) * D("1.4") + D(day.day % 4) / 10
        kwh -= D(back) / 1000
        rows.append(DailyUsage(meter=meter, day=day, kwh=kwh.quantize(D("0.001")), intervals=96))
    DailyUsage.objects.bulk_create(rows)


@pytest.fixture
def portal_data(org, site_data) -> Portal:
    """An account with a PIN, usage, a tariff, bills and a receipt; two accounts on one phone."""
    today = clock.now().astimezone(org.block_a.zone).date()
    small = package(tariff_in_force(org, FLAT), ServicePackage.PaymentMode.POSTPAID)
    big = package(tariff_in_force(org, FLAT), ServicePackage.PaymentMode.POSTPAID)
    ServicePackage.objects.filter(pk=small.pk).update(name="Home", load_limit_w=300)
    ServicePackage.objects.filter(pk=big.pk).update(name="Shop", load_limit_w=1500)
    small.refresh_from_db()
    big.refresh_from_db()
    amina = factories.customer(
        org.block_a,
        first_name="Amina",
        last_name="Nakato",
        phone="+256772100009",
        status="active",
        package=small,
        location="Plot 12, Block A",
    )
    pins.set_pin(amina, PIN)
    _usage(amina, today)
    month = today.replace(day=1)
    last = (month - dt.timedelta(days=1)).replace(day=1)
    bill(amina, "61500", issued=last + dt.timedelta(days=2), kwh=D("70"))
    bill(amina, "64900", issued=month + dt.timedelta(days=1 if today.day > 1 else 0), kwh=D("74"))
    pay(amina, "61500", on=last + dt.timedelta(days=9))
    agent = org.agent
    agent.first_name, agent.last_name, agent.phone = "Peter", "Ssali", "+256772300300"
    agent.save()
    MessageTemplate.objects.create(
        key="portal_test_note", language="en", channel=Channel.SMS, body="{{ text }}"
    )
    send_message(
        to=amina.phone,
        template="portal_test_note",
        context={"text": "Amina, we received UGX 61,500. Thank you."},
        about=f"customers.customer:{amina.pk}",
    )
    Message.objects.update(status=Message.Status.DELIVERED)
    shared = "+256772100010"
    first = factories.customer(org.block_a, first_name="Joseph", phone=shared, status="active")
    second = factories.customer(org.block_a, first_name="Ruth", phone=shared, status="active")
    return Portal(amina, shared, first, second, big)


def _latest_code(phone: str) -> str:
    """The code in the last sign-in SMS to ``phone`` (read off the browser's thread)."""

    def read() -> str:
        from django.db import connection

        try:
            body = (
                Message.objects.filter(to=phone, template_key=portal_auth.CODE_TEMPLATE)
                .latest("created_at", "id")
                .body
            )
        finally:
            connection.close()
        return re.search(r"\b(\d{6})\b", body).group(1)

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(read).result()


def _in_db(fn):
    def run():
        from django.db import connection

        try:
            return fn()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def test_customer_signs_in_with_pin_and_uses_the_portal(portal_data, screen):
    data = portal_data
    tab = screen()
    page = tab.page

    tab.goto("/portal/")  # not signed in: the portal's own sign-in
    assert "/portal/sign-in/" in page.url
    tab.check("portal-sign-in")
    page.fill("#id_phone", "0772 100009")
    page.fill("#id_pin", "9999")
    page.click("form.stack button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "PIN is not right" in page.inner_text("main")
    tab.check("portal-sign-in-wrong-pin")
    page.fill("#id_pin", PIN)
    with page.expect_navigation():
        page.click("form.stack button[type=submit]")
    assert page.url.endswith("/portal/")

    main = page.locator("main")
    assert "Hello Amina" in main.inner_text()
    assert "You owe" in main.inner_text() and "64,900" in main.inner_text()
    assert "Used this month" in main.inner_text() and "Bill forecast" in main.inner_text()
    tab.check("portal-home")

    page.get_by_role("link", name="Usage", exact=True).click()
    page.wait_for_load_state("networkidle")
    assert page.locator("figure.chart > svg").count() == 2
    tab.check("portal-usage")

    page.get_by_role("link", name="Forecast", exact=True).click()
    page.wait_for_load_state("networkidle")
    assert "How we work it out" in main.inner_text()
    assert "Monthly standing charge" in main.inner_text()
    tab.check("portal-forecast")

    page.get_by_role("link", name="Bills", exact=True).click()
    page.wait_for_load_state("networkidle")
    assert "64,900" in main.inner_text()
    tab.check("portal-bills")
    page.locator("ul.plain a").first.click()
    page.wait_for_load_state("networkidle")
    tab.check("portal-bill")

    page.get_by_role("link", name="Receipts", exact=True).click()
    page.wait_for_load_state("networkidle")
    tab.check("portal-payments")
    page.locator("ul.plain a").first.click()
    page.wait_for_load_state("networkidle")
    pdf = page.locator("a[href$='/pdf/']").first
    href = pdf.get_attribute("href")
    response = page.request.get(tab.origin + href)
    assert response.ok and response.headers["content-type"] == "application/pdf"
    assert response.body().startswith(b"%PDF")
    tab.check("portal-receipt")

    page.get_by_role("link", name="Statement", exact=True).click()
    page.wait_for_load_state("networkidle")
    assert "61,500" in main.inner_text()
    tab.check("portal-statement")

    page.get_by_role("link", name="Profile", exact=True).click()
    page.wait_for_load_state("networkidle")
    tab.check("portal-profile")
    page.fill("#id_alt_phone", "0701 234567")
    page.select_option("#id_language", "sw")
    page.fill("#id_location", "Plot 12, Block A, blue gate")
    with page.expect_navigation():
        page.click("form.stack button[type=submit]")
    assert "Your details are saved." in main.inner_text()
    assert page.input_value("#id_alt_phone") == "+256701234567"
    tab.check("portal-profile-saved")

    page.get_by_role("link", name="Requests", exact=True).click()
    page.wait_for_load_state("networkidle")
    page.select_option("#id_kind", "package_change")
    page.select_option("#id_requested_package", str(data.big.pk))
    page.fill("#id_description", "I am opening a shop with a fridge.")
    tab.check("portal-requests")
    with page.expect_navigation():
        page.click("form.stack button[type=submit]")
    assert "is sent" in main.inner_text() and "Package change" in main.inner_text()
    tab.check("portal-request")
    created = _in_db(lambda: ServiceRequest.objects.get(customer=data.amina))
    assert created.requested_package_id == data.big.pk and created.channel == "portal"

    page.get_by_role("link", name="My agent", exact=True).click()
    page.wait_for_load_state("networkidle")
    assert page.locator("a[href='tel:+256772300300']").is_visible()
    tab.check("portal-agent")

    page.get_by_role("link", name="Messages", exact=True).click()
    page.wait_for_load_state("networkidle")
    assert "we received UGX 61,500" in main.inner_text()
    tab.check("portal-messages")


def test_customer_signs_in_with_a_code_by_sms_and_chooses_an_account(portal_data, screen):
    data = portal_data
    tab = screen()
    page = tab.page
    tab.goto("/portal/sign-in/")
    page.get_by_role("link", name="Code by SMS").click()
    page.wait_for_load_state("networkidle")
    tab.check("portal-code-ask")
    page.fill("#id_phone", "0772 100010")
    with page.expect_navigation():
        page.click("form.stack button[type=submit]")
    assert "6-digit code" in page.inner_text("main")
    tab.check("portal-code-enter")
    page.fill("#id_code", _latest_code(data.shared_phone))
    with page.expect_navigation():
        page.click("form.stack button[type=submit]")
    assert "/portal/sign-in/account/" in page.url
    tab.check("portal-choose-account")
    with page.expect_navigation():
        page.get_by_role("button", name=re.compile(data.second.account_number)).click()
    assert page.url.endswith("/portal/")
    assert "Hello Ruth" in page.inner_text("main")
    tab.check("portal-home-by-code")
