"""Fixtures for payments: the fake providers wired into the settings, and invoices to pay."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest

from billing import ledger
from billing.models import Invoice, LedgerAccount, Posting
from mcoms.core import clock
from mcoms.core.audit import acting_as
from notifications import catalog
from tests import factories
from tests.billing.payments.fake_providers import FakeAirtel, FakeMtn, FakePesapal

_numbers = itertools.count(1)


@pytest.fixture
def mtn():
    fake = FakeMtn()
    yield fake
    fake.close()


@pytest.fixture
def airtel():
    fake = FakeAirtel()
    yield fake
    fake.close()


@pytest.fixture
def pesapal():
    fake = FakePesapal()
    yield fake
    fake.close()


@pytest.fixture
def live(settings, mtn, airtel, pesapal):
    """Real provider clients pointed at the three fake servers."""
    from django.core.cache import cache

    cache.clear()
    settings.PAYMENT_BACKEND = "live"
    settings.PAYMENT_PROVIDER_TIMEOUT = 1.5  # generous: the machine may be busy
    settings.PAYMENT_CALLBACK_SECRET = ""
    settings.PAYMENT_CUSTOMER_FEES = []
    settings.PAYMENT_PUBLIC_URL = "https://mcoms.example.org"
    settings.MTN_MOMO_BASE_URL = mtn.base_url
    settings.MTN_MOMO_API_USER, settings.MTN_MOMO_API_KEY = mtn.api_user, mtn.api_key
    settings.MTN_MOMO_SUBSCRIPTION_KEY = mtn.subscription_key
    settings.MTN_MOMO_TARGET_ENVIRONMENT = "sandbox"
    settings.AIRTEL_BASE_URL = airtel.base_url
    settings.AIRTEL_CLIENT_ID, settings.AIRTEL_CLIENT_SECRET = (
        airtel.client_id,
        airtel.client_secret,
    )
    settings.AIRTEL_COUNTRY = "UG"
    settings.PESAPAL_BASE_URL = pesapal.base_url
    settings.PESAPAL_CONSUMER_KEY = pesapal.consumer_key
    settings.PESAPAL_CONSUMER_SECRET = pesapal.consumer_secret
    settings.PESAPAL_IPN_ID = ""
    yield settings
    cache.clear()


@pytest.fixture
def templates(db):
    catalog.install_defaults()


@pytest.fixture
def customer(org):
    return factories.customer(
        org.block_a, first_name="Amina", last_name="Nakato", phone="+256772100200"
    )


def make_invoice(
    customer, total, issued_on: dt.date, *, kind=Invoice.Kind.INVOICE, corrects=None
) -> Invoice:
    """An issued invoice (or credit note) with its ledger posting, as billing would post it."""
    total = Decimal(total)
    n = next(_numbers)
    site = customer.site
    with acting_as(label="test setup"):
        if kind == Invoice.Kind.INVOICE:
            posting = ledger.invoice_post(
                customer=customer, date=issued_on, energy=total, reference=f"INV-T-{n}"
            )
        else:
            posting = ledger.post(
                site=site,
                kind=Posting.Kind.CREDIT_NOTE,
                date=issued_on,
                lines=[
                    ledger.Line(ledger.receivable(customer), -total),
                    ledger.Line(ledger.account(site, LedgerAccount.Kind.REVENUE_ENERGY), total),
                ],
                reference=f"CN-T-{n}",
            )
        return Invoice.objects.create(
            number=f"{'INV' if kind == Invoice.Kind.INVOICE else 'CN'}-T-{n}",
            kind=kind,
            customer=customer,
            site=site,
            period_start=issued_on if kind == Invoice.Kind.INVOICE else None,
            issued_on=issued_on,
            due_on=issued_on + dt.timedelta(days=14),
            currency=site.currency,
            subtotal=total,
            total=total,
            amount_due=total,
            corrects=corrects,
            posting=posting,
            created_at=clock.now(),
        )
