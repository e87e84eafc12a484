"""Every screen, in every language, fits in 160 characters and speaks the customer's language.

Each path below is a fresh session driven through the endpoint; the ``Phone`` helper
fails on any reply over 160 characters or without ``CON ``/``END ``. The data are
chosen long: a seven-figure bill, five packages with long names, five accounts
on one number.
"""

from __future__ import annotations

import datetime as dt

import pytest

from billing.models import ServicePackage
from customers.models import Customer
from notifications.selfservice import texts
from notifications.selfservice.screens import MAX_SCREEN, Reply, fit
from tests import factories
from tests.notifications.selfservice.conftest import PIN, bill, local_today, usage, with_pin

pytestmark = pytest.mark.django_db

LONG_TEXT = "The meter box is burnt and sparks when it rains, neighbours say the pole is leaning "[
    :110
]

PATHS = [
    ["9"],
    ["1", "12"],
    ["1", "0000"],
    ["1", PIN],
    ["2", PIN],
    ["3", PIN, "9"],
    ["3", PIN, "1"],
    ["3", PIN, "2"],
    ["3", PIN, "3"],
    ["4", PIN, "abc"],
    ["4", PIN, "1"],
    ["4", PIN, "9999999", "1000000"],
    ["4", PIN, "1000000", "9"],
    ["4", PIN, "1000000", "2"],
    ["5", PIN, "9"],
    ["5", PIN, "3"],
    ["5", PIN, "5", "x"],
    ["5", PIN, "5", LONG_TEXT],
    ["6", PIN, "9"],
    ["6", PIN, "5", "9"],
    ["6", PIN, "5", "1"],
    ["6", PIN, "1", "2"],
    ["7", "9"],
    ["8", PIN, "1111"],
    ["8", PIN, "12"],
    ["8", PIN, "7351", "7352"],
]
MENU_START = {"en": "1 Balance", "sw": "1 Salio", "lg": "1 Bbalansi"}


@pytest.fixture
def rich(org, templates):
    """An account with a large bill, usage, and five packages with long names to choose from."""
    customer = factories.customer(org.block_a, first_name="Nakawunguzi", status="active")
    with_pin(customer)
    bill(customer, "12345678", issued=dt.date(2026, 11, 1), due=dt.date(2026, 11, 15), kwh="9999.9")
    usage(customer, {local_today(customer): "12345.678"})
    for n in range(6):
        ServicePackage.objects.create(
            code=f"pkg{n}", name=f"Commercial three-phase {n} extra", load_limit_w=1000 + n
        )
    return customer


@pytest.mark.parametrize("language", texts.LANGUAGES)
def test_every_customer_screen_fits(rich, phone_of, language):
    Customer.objects.filter(pk=rich.pk).update(language=language)
    for path in PATHS:
        phone = phone_of(rich.phone)
        assert MENU_START[language] in phone.dial()
        for answer in path:
            phone.send(answer)
        with_pin(rich)  # a path may have changed it
    # Wrong PINs to the lock, and the language change last.
    phone = phone_of(rich.phone)
    phone.dial()
    phone.send("1")
    for wrong in ("0000", "1111", "2222"):
        phone.send(wrong)
    assert phone.screens[-1].startswith("END ")
    rich.ussd_pin.delete()
    phone = phone_of(rich.phone)
    phone.dial()
    assert phone.send("1").startswith("CON ")  # the one-time PIN screen
    phone.send("12")
    phone = phone_of(rich.phone)
    phone.dial()
    phone.send("7")
    phone.send({"en": "1", "sw": "2", "lg": "3"}[language])


@pytest.mark.parametrize("language", texts.LANGUAGES)
def test_account_choice_fits_with_five_accounts(org, templates, phone_of, language):
    shared = "+256772555000"
    for _ in range(6):
        factories.customer(
            org.block_a, first_name="Nabukenya-Nalwanga", phone=shared, language=language
        )
    phone = phone_of(shared)
    assert phone.dial().count("\n") == 5
    phone.send("9")
    phone.send("5")


@pytest.mark.parametrize("choice", ["2", "3", "4"])
def test_unknown_number_screens_fit(templates, phone_of, choice):
    phone = phone_of("+256772555999")
    phone.dial()
    phone.send(choice)
    phone.send("9")
    phone.send("1")
    phone.send("x")
    phone.send("N" * 40)
    phone.send("y")
    assert phone.send("P" * 40).startswith("END ")


LONGEST = {
    "account": "KLA-A-00012",
    "cur": "UGX",
    "amount": "12,345,678",
    "owed": "12,345,678",
    "due": "12,345,678",
    "total": "12,345,678",
    "low": "500",
    "high": "5,000,000",
    "date": "15 Nov 2026",
    "number": "KLA-A-202611-00012",
    "period": "Nov 2026",
    "month": "Nov 2026",
    "kwh": "12,345.7",
    "name": "N" * 30,
    "phone": "+256772123456",
    "time": "23:59",
    "left": 2,
    "lines": "\n".join(["Nov 2026: 12,345.7 kWh"] * 3),
}
# Fragments appended to another text, and the SMS sentence (an SMS may take two pages).
NOT_SCREENS = {"balance_due", "last_bill_due", "usage_sms", "package_menu"}
CLOSING = {
    "interest_done",
    "pin_changed",
    "locked",
    "balance_owed",
    "balance_credit",
    "balance_zero",
    "last_bill",
    "no_bill",
    "usage_today",
    "usage_month",
    "usage_months",
    "pay_started",
    "cancelled",
    "request_done",
    "no_packages",
    "package_done",
    "language_done",
    "unavailable",
    "too_long",
}


@pytest.mark.parametrize("language", texts.LANGUAGES)
def test_every_text_fits_with_the_longest_values_and_a_hint(language):
    def t(key):
        return texts.text(key, language, **LONGEST)

    hints = [t(k) for k in texts.TEXTS if k.startswith("hint_")]
    screens = {k: t(k) for k in texts.TEXTS if not k.startswith("hint_") and k not in NOT_SCREENS}
    screens["balance_owed"] += t("balance_due")
    screens["last_bill"] += t("last_bill_due")
    packages = "\n".join(f"{n} {'P' * 22}" for n in range(1, 5))
    screens["package_menu"] = texts.text("package_menu", language, lines=packages)
    for key, body in screens.items():
        if key in CLOSING:
            assert len(Reply(True, body).body()) <= MAX_SCREEN, (key, body)
            continue
        for hint in hints:
            shown = fit(hint, body)
            assert len(Reply(False, shown).body()) <= MAX_SCREEN, (key, shown)
            assert shown.endswith(body) and shown != body, (key, hint)


def test_every_text_is_written_in_all_three_languages():
    for key, by_language in texts.TEXTS.items():
        assert set(by_language) == set(texts.LANGUAGES), key
        assert by_language["sw"] != by_language["en"], key
        assert by_language["lg"] != by_language["en"], key
        for language in texts.LANGUAGES:
            # The GSM-7 alphabet keeps a screen to one SMS-sized page on every phone.
            assert by_language[language].isascii(), (key, language)
