"""Meter tokens: money turned into kWh at the moment of sale (Uganda's prepaid rules).

Block A bills in UGX (no cents) in Kampala time. The Uganda domestic tariff of the
first quarter of 2025: standing charge 3,360 a month, lifeline 250 for the first
15 kWh, 775.7 above, 18 % VAT on the total.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from billing import ledger
from billing.models import LedgerAccount, Posting
from billing.prepaid import hooks, tokens
from billing.prepaid.models import TokenPurchase
from tests.billing.prepaid.helpers import (
    FLAT_UGX,
    UGANDA_DOMESTIC,
    Mode,
    package,
    pay,
    prepaid_customer,
    tariff_in_force,
)

Kind = LedgerAccount.Kind
T = dt.datetime(2026, 3, 10, 9, 30, tzinfo=dt.UTC)  # 12:30 in Kampala


@pytest.fixture
def uganda(org):
    return tariff_in_force(org, UGANDA_DOMESTIC)


@pytest.fixture
def buyer(org, uganda):
    return prepaid_customer(org.block_a, package(uganda, Mode.PREPAID_TOKEN))


def amounts(breakdown):
    return [D(x["amount"]) for x in breakdown]


def test_first_purchase_of_the_month_pays_the_standing_charge_and_gets_the_lifeline(buyer):
    q = tokens.quote(buyer, "20000", at=T)
    # 3,360 standing + 15 kWh x 250 + 12.6 kWh x 775.7 (9,774) = 16,884; VAT 18 % = 3,039.
    assert q.first_of_month
    assert q.kwh == D("27.6")
    assert q.cost == D("19923")
    assert q.remainder == D("77")
    by_kind = {(x["kind"], x["description"]): x for x in q.breakdown}
    assert D(by_kind["fixed", "Monthly standing charge"]["amount"]) == D("3360")
    lifeline = by_kind["energy", "Energy, first 15 kWh (lifeline)"]
    assert (D(lifeline["quantity"]), D(lifeline["rate"]), D(lifeline["amount"])) == (
        D("15"),
        D("250"),
        D("3750"),
    )
    above = by_kind["energy", "Energy, above 15 kWh"]
    assert (D(above["quantity"]), D(above["amount"])) == (D("12.6"), D("9774"))
    assert D(by_kind["vat", "VAT 18%"]["amount"]) == D("3039")
    assert sum(amounts(q.breakdown)) == D("20000")
    # One more step would not fit in the money.
    assert q.remainder < D("0.1") * D("775.7") * D("1.18") + 1


def test_later_purchases_that_month_buy_at_the_normal_rate_without_standing_charge(org, buyer):
    hooks.payment_received(pay(buyer, "20000", T))
    first = TokenPurchase.objects.get()
    assert first.kwh == D("27.6")
    q = tokens.quote(buyer, "20000", at=T + dt.timedelta(days=3))
    assert not q.first_of_month
    assert q.month_kwh_before == D("27.6")
    assert q.kwh == D("21.8")  # 21.8 x 775.7 = 16,910 + VAT: no lifeline, no standing charge
    assert q.standing_charge == 0
    energy = [x for x in q.breakdown if x["kind"] == "energy"]
    assert all("lifeline" not in x["description"] for x in energy)
    assert q.breakdown[0]["kind"] == "note" and "first purchase" in q.breakdown[0]["description"]
    assert sum(amounts(q.breakdown)) == D("20000")
    # A new month starts over: standing charge and lifeline again.
    april = tokens.quote(buyer, "20000", at=dt.datetime(2026, 4, 1, 6, tzinfo=dt.UTC))
    assert april.first_of_month and april.kwh == D("27.6")


def test_a_small_first_purchase_loses_the_rest_of_the_lifeline_block(buyer):
    hooks.payment_received(pay(buyer, "5000", T))  # 3,360 + 3.5 kWh x 250 = 4,235 + 762 VAT
    first = TokenPurchase.objects.get()
    assert first.kwh == D("3.5") and first.first_of_month
    later = tokens.quote(buyer, "10000", at=T + dt.timedelta(hours=1))
    energy = [x for x in later.breakdown if x["kind"] == "energy"]
    assert {D(x["rate"]) for x in energy} == {D("775.7")}


def test_too_little_money_for_the_standing_charge_is_refused_with_the_minimum(buyer):
    with pytest.raises(tokens.QuoteError, match="3965"):  # 3,360 + 18 % VAT
        tokens.quote(buyer, "3000", at=T)


def test_bad_amounts_are_refused_plainly(buyer):
    for bad in ("abc", "-5", "0", "10.50"):
        with pytest.raises(tokens.QuoteError):
            tokens.quote(buyer, bad, at=T)


def test_the_sale_is_posted_and_the_balance_is_back_to_before_the_payment(org, buyer):
    before = ledger.customer_balance(buyer)
    payment = pay(buyer, "20000", T)
    assert ledger.customer_balance(buyer) == before - D("20000")
    hooks.payment_received(payment)
    purchase = TokenPurchase.objects.get(payment=payment)
    assert purchase.status == TokenPurchase.Status.AWAITING_VEND and purchase.token == ""
    assert purchase.month == dt.date(2026, 3, 1)
    assert ledger.customer_balance(buyer) == before
    posting = purchase.posting
    assert posting.kind == Posting.Kind.TOKEN_SALE
    lines = {line.account.kind: line.amount for line in posting.lines.select_related("account")}
    assert lines == {
        Kind.RECEIVABLE: D("20000"),
        Kind.REVENUE_FIXED: D("-3360"),
        Kind.REVENUE_ENERGY: D("-13601"),  # 3,750 + 9,774 + 77 left over
        Kind.VAT_PAYABLE: D("-3039"),
    }
    # Calling the hook again for the same payment changes nothing.
    hooks.payment_received(payment)
    assert TokenPurchase.objects.count() == 1
    assert ledger.customer_balance(buyer) == before


def test_a_payment_the_tariff_cannot_price_is_held_and_stays_as_credit(org, buyer):
    payment = pay(buyer, "1000", T)  # below the standing charge
    hooks.payment_received(payment)
    purchase = TokenPurchase.objects.get(payment=payment)
    assert purchase.status == TokenPurchase.Status.HELD
    assert "standing charge" in purchase.detail
    assert purchase.posting is None
    assert ledger.customer_balance(buyer) == D("-1000")
    # A held purchase does not count as the month's first.
    assert tokens.quote(buyer, "20000", at=T).first_of_month


def test_postpaid_and_credit_customers_get_no_token(org):
    tariff = tariff_in_force(org, FLAT_UGX)
    for mode in (Mode.POSTPAID, Mode.PREPAID_CREDIT):
        customer = prepaid_customer(org.block_a, package(tariff, mode))
        hooks.payment_received(pay(customer, "5000", T))
    assert not TokenPurchase.objects.exists()


def test_kenyan_blocks_follow_the_month_to_date_kwh(org):
    from tests.billing.tariff_fixtures import DC

    org.block_a.currency = "KES"
    org.block_a.save()
    tariff = tariff_in_force(org, DC, currency="KES")
    customer = prepaid_customer(org.block_a, package(tariff, Mode.PREPAID_TOKEN))
    # 150 fixed + 50 kWh x 2.50 = 275, + 16 % VAT = 319.00: exactly the first block.
    hooks.payment_received(pay(customer, "319.00", T))
    first = TokenPurchase.objects.get()
    assert (first.kwh, first.first_of_month) == (D("50"), True)
    # The next kWh are in the 12.75 block: 6.7 kWh = 85.43 + 13.67 VAT = 99.10.
    q = tokens.quote(customer, "100.00", at=T + dt.timedelta(hours=2))
    assert q.kwh == D("6.7")
    assert q.cost == D("99.10") and q.remainder == D("0.90")
    energy = [x for x in q.breakdown if x["kind"] == "energy"]
    assert [(D(x["quantity"]), D(x["rate"])) for x in energy] == [(D("6.7"), D("12.75"))]


def test_money_that_buys_no_kwh_is_held(org):
    from tests.billing.tariff_fixtures import DC

    org.block_a.currency = "KES"
    org.block_a.save()
    tariff = tariff_in_force(org, DC, currency="KES")
    customer = prepaid_customer(org.block_a, package(tariff, Mode.PREPAID_TOKEN))
    with pytest.raises(tokens.QuoteError, match="no kWh"):
        tokens.quote(customer, "174.00", at=T)  # 150 + 16 % VAT: the standing charge only


def reverse(payment, reason="entered twice"):
    ledger.reversal_post(original=payment.posting, date=dt.date(2026, 3, 11), reason=reason)
    hooks.payment_reversed(payment, reason=reason)


def test_a_reversed_payment_cancels_its_purchase_before_the_token_is_issued(org, buyer):
    payment = pay(buyer, "20000", T)
    hooks.payment_received(payment)
    reverse(payment)
    purchase = TokenPurchase.objects.get(payment=payment)
    assert purchase.status == TokenPurchase.Status.CANCELLED
    assert "entered twice" in purchase.detail
    assert Posting.objects.filter(reverses=purchase.posting).exists()
    assert ledger.customer_balance(buyer) == 0  # nothing owed, nothing held
    # The cancelled purchase's kWh no longer count: the next is the month's first again.
    assert tokens.quote(buyer, "20000", at=T).first_of_month
    hooks.payment_reversed(payment, reason="again")  # a second call changes nothing
    assert Posting.objects.filter(kind=Posting.Kind.REVERSAL).count() == 2


def test_a_token_already_issued_is_not_undone_by_a_reversal(org, buyer):
    payment = pay(buyer, "20000", T)
    hooks.payment_received(payment)
    TokenPurchase.objects.filter(payment=payment).update(
        token="1234-5678-9012-3456-7890", status=TokenPurchase.Status.VENDED
    )
    reverse(payment, "bounced")
    purchase = TokenPurchase.objects.get(payment=payment)
    assert purchase.status == TokenPurchase.Status.VENDED
    assert ledger.customer_balance(buyer) == D("20000")  # the kWh are in the meter: owed


def test_the_receipt_text_shows_how_the_units_were_computed(org, buyer):
    hooks.payment_received(pay(buyer, "20000", T))
    purchase = TokenPurchase.objects.get()
    assert tokens.summary(purchase) == (
        "UGX 20,000 = 27.6 kWh: Monthly standing charge 3,360; 15 kWh x 250 (lifeline) = 3,750; "
        "12.6 kWh x 775.7 = 9,774; VAT 18% 3,039; Left over 77"
    )
