"""The prepaid part of the demo: credit customers with a balance and draws, a token customer."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from billing import ledger
from billing.models import Posting, ServicePackage
from billing.prepaid.models import CreditAccount, CreditDraw
from customers.models import Customer

pytestmark = pytest.mark.django_db


def test_the_demo_has_prepaid_credit_customers_with_draws_and_a_token_customer(capsys):
    call_command("seed_demo")
    capsys.readouterr()
    credit_customers = Customer.objects.filter(
        package__payment_mode=ServicePackage.PaymentMode.PREPAID_CREDIT, status="active"
    )
    assert credit_customers.exists()
    assert CreditAccount.objects.count() == credit_customers.count()
    assert CreditDraw.objects.filter(posting__kind=Posting.Kind.CHARGE).count() >= 5
    balances = [ledger.customer_balance(c) for c in credit_customers]
    assert any(b < 0 for b in balances)  # some still hold credit
    token = Customer.objects.get(package__payment_mode=ServicePackage.PaymentMode.PREPAID_TOKEN)
    assert token.package.tariff is not None

    # Some ran low or out over the three days drawn: the draw-down's follow-ups show.
    states = set(CreditAccount.objects.values_list("alert", flat=True))
    assert states & {"low", "empty"}
