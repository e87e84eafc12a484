"""The money pages on a 360 px phone in headless Chromium: the customer's and the officer's.

Every page is checked by ``Screen.check`` (tests/browser/conftest.py): no sideways
scrolling at 360 px, a label for every field, nothing loaded from another host.
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.billing.collections.conftest import bill, pay
from tests.browser.conftest import chromium, screen, site_data  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser


@pytest.fixture
def money(site_data, templates):  # noqa: F811 - the imported fixture
    winnie = site_data.customers["winnie"]  # signs in as "customer"
    winnie.status = "active"
    winnie.save(update_fields=["status"])
    first = bill(winnie, "18500", issued=dt.date(2026, 1, 3), due=dt.date(2026, 1, 17))
    bill(winnie, "22000", issued=dt.date(2026, 2, 3), due=dt.date(2026, 2, 17))
    receipt = pay(winnie, "25000", on=dt.date(2026, 2, 10))
    bill(site_data.customers["grace"], "9000", issued=dt.date(2026, 1, 3))
    return winnie, first, receipt


def test_portal_money_pages_on_a_phone(money, screen):  # noqa: F811
    _winnie, first, receipt = money
    tab = screen()
    tab.sign_in("customer")
    for name, path in [
        ("my-bills", "/collections/my/bills/"),
        ("my-bill", f"/collections/my/bills/{first.pk}/"),
        ("my-payments", "/collections/my/payments/"),
        ("my-receipt", f"/collections/my/payments/{receipt.pk}/"),
        ("my-statement", "/collections/my/statement/?start=2026-01-01&end=2026-03-31"),
    ]:
        tab.goto(path)
        tab.check(name)
    assert "Closing balance" in tab.page.inner_text("main")


def test_arrears_and_ledger_pages_on_a_phone(money, screen, site_data):  # noqa: F811
    org = site_data.org
    tab = screen()
    tab.sign_in("billing")
    for name, path in [
        ("arrears", "/collections/arrears/?as_of=2026-06-30"),
        ("arrears-site", f"/collections/arrears/{org.block_a.pk}/?as_of=2026-06-30"),
        ("ledger", f"/collections/ledger/{org.block_a.pk}/?month=2026-02"),
    ]:
        tab.goto(path)
        tab.check(name)
    assert "Close February 2026" in tab.page.inner_text("main")
