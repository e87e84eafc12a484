"""The demo's payments load through the services, with or without invoices to pay."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from billing import ledger
from billing.models import LedgerAccount
from billing.payments import allocation, demo
from billing.payments.models import Payment, PaymentRequest
from mcoms.core import services as core_services
from mcoms.core.audit import acting_as
from mcoms.core.models import Site
from tests import factories
from tests.billing.payments.conftest import make_invoice

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 22, 6, tzinfo=dt.UTC)


def test_demo_payments_for_kla_a(org):
    with acting_as(label="test setup"):
        site = core_services.site_save(site=Site(cluster=org.kampala, name="Demo A", code="kla-a"))
    customers = [factories.customer(site, status="active") for _ in range(4)]
    billed = make_invoice(customers[1], "7000", dt.date(2026, 10, 1))
    demo.load(now=NOW, rng=random.Random(7))
    payments = Payment.objects.filter(site=site)
    assert payments.count() == 4
    assert {p.method for p in payments} == {"cash", "mtn", "airtel"}
    assert all(p.receipt_number.startswith("R-KLA-A-") for p in payments)
    cash = payments.filter(method="cash")
    assert {p.agent for p in cash} == {org.agent}
    on_hand = ledger.balance(ledger.account(site, LedgerAccount.Kind.CASH, agent=org.agent))
    assert on_hand == sum(p.amount for p in cash)
    paid = sum(p.amount for p in payments.filter(customer=customers[1]))
    assert allocation.open_amount(billed) == max(0, 7000 - paid)  # allocated to the bill
    assert PaymentRequest.objects.filter(status="held").count() == 1
    assert PaymentRequest.objects.filter(status="pending").count() == 1


def test_demo_without_its_site_does_nothing(org):
    demo.load(now=NOW, rng=random.Random(1))
    assert not Payment.objects.exists()
