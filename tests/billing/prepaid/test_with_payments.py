"""The hook as the payments module calls it: a recorded payment of each kind of customer."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

from billing import ledger
from billing.models import SupplyRequest
from billing.payments import services as payments
from billing.prepaid import credit
from billing.prepaid.models import TokenPurchase
from mcoms.core.audit import acting_as
from tests.billing.prepaid.helpers import (
    UGANDA_DOMESTIC,
    Mode,
    hourly,
    package,
    prepaid_customer,
    tariff_in_force,
)
from tests.billing.prepaid.test_credit import START, H, metered


def test_a_cash_payment_of_a_token_customer_becomes_a_token_purchase(org):
    tariff = tariff_in_force(org, UGANDA_DOMESTIC)
    customer = prepaid_customer(org.block_a, package(tariff, Mode.PREPAID_TOKEN))
    with acting_as(org.agent):
        payment = payments.record_cash(
            customer=customer, amount="20000", agent=org.agent, received_at=START
        )
    purchase = TokenPurchase.objects.get(payment=payment)
    assert (purchase.kwh, purchase.status) == (D("27.6"), TokenPurchase.Status.AWAITING_VEND)
    assert ledger.customer_balance(customer) == 0


def test_a_mobile_money_top_up_reconnects_an_emptied_credit_customer(org):
    customer, meter = metered(org)
    hourly(meter, START, ["2"])
    credit.draw(customer, now=START + 2 * H)  # (3,000 + 1,600) x 1.18 = 5,428 owed
    assert SupplyRequest.objects.filter(action="disconnect", status="requested").exists()
    payments.record_payment(
        customer=customer,
        amount="10000",
        method="mtn",
        provider_txn_id="MP-1",
        received_at=START + dt.timedelta(hours=3),
    )
    assert credit.credit(customer) == D("4572")
    assert SupplyRequest.objects.get(action="reconnect").reason == "top_up"
    assert SupplyRequest.objects.get(action="disconnect").status == "cancelled"
    assert not TokenPurchase.objects.exists()
