"""Settlement files reconciled against recorded payments."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from billing import ledger
from billing.models import LedgerAccount
from billing.payments import settlements
from billing.payments.models import Payment, Settlement, SettlementLine
from billing.payments.services import record_payment

pytestmark = pytest.mark.django_db
Result = SettlementLine.Result
DAY = dt.date(2026, 11, 20)
NOON = dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC)  # 12:00 in Kampala


def _pay(customer, txn, amount, at=NOON, method="mtn", fee="0"):
    return record_payment(
        customer=customer,
        amount=amount,
        method=method,
        provider_txn_id=txn,
        received_at=at,
        fee=fee,
    )


def test_matched_missing_and_differing(org, customer):
    a = _pay(customer, "A1", "10000")
    _pay(customer, "A2", "5000")
    missing_from_file = _pay(customer, "A3", "7000")
    _pay(customer, "A4", "7000", at=NOON + dt.timedelta(days=1))  # another day: not expected
    _pay(customer, "B1", "2000", method="airtel")  # another provider: not expected
    csv_text = (
        "transaction_id,amount,fee,date\n"
        "A1,10000,150,2026-11-20\n"
        "A2,4500,75,2026-11-20\n"
        "ZZ9,3000,50,2026-11-20\n"
    )
    result = settlements.import_settlement(
        site=org.block_a, provider="mtn", day=DAY, text=csv_text, by=org.billing, filename="mtn.csv"
    )
    lines = {line.provider_txn_id: line for line in result.lines.all()}
    assert lines["A1"].result == Result.MATCHED and lines["A1"].payment == a
    assert lines["A2"].result == Result.AMOUNT_DIFFERS
    assert lines["ZZ9"].result == Result.MISSING_OURS and lines["ZZ9"].payment is None
    assert lines["A3"].result == Result.MISSING_SETTLEMENT
    assert lines["A3"].payment == missing_from_file
    assert set(lines) == {"A1", "A2", "ZZ9", "A3"}
    assert settlements.summary(result) == {
        "matched": 1,
        "missing_ours": 1,
        "missing_settlement": 1,
        "amount_differs": 1,
    }
    assert (result.total, result.fees) == (Decimal("17500"), Decimal("275"))
    # The provider's fee on the matched transaction is posted, once.
    fees = ledger.account(org.block_a, LedgerAccount.Kind.FEES_EXPENSE)
    assert ledger.balance(fees) == Decimal("150")
    # What the provider paid out for it moved from clearing to the bank.
    bank = ledger.account(org.block_a, LedgerAccount.Kind.BANK)
    clearing = ledger.account(org.block_a, LedgerAccount.Kind.MOBILE_MONEY, provider="mtn")
    assert ledger.balance(bank) == Decimal("9850")
    assert ledger.balance(clearing) == Decimal("19000")  # A2 and A3 are still in clearing
    again = settlements.import_settlement(
        site=org.block_a, provider="mtn", day=DAY, text=csv_text, by=org.billing
    )
    assert again.pk == result.pk and again.lines.count() == 4
    assert ledger.balance(fees) == Decimal("150")
    assert ledger.balance(bank) == Decimal("9850")
    assert Settlement.objects.count() == 1


def test_customer_fee_counts_in_the_collected_amount(org, customer):
    _pay(customer, "F1", "10000", fee="300")
    result = settlements.import_settlement(
        site=org.block_a, provider="mtn", day=DAY, text="F1,10300,0,2026-11-20\n", by=org.billing
    )
    assert result.lines.get().result == Result.MATCHED


def test_bad_rows_are_listed_and_nothing_is_kept(org, customer):
    text = "id,amount,fee,date\nA1,ten,0,2026-11-20\n,100,0,2026-11-20\nA2,100,0,20/13/2026\n"
    with pytest.raises(ValidationError) as caught:
        settlements.import_settlement(
            site=org.block_a, provider="mtn", day=DAY, text=text, by=org.billing
        )
    messages = caught.value.messages
    assert any("Row 2" in m and "not a number" in m for m in messages)
    assert any("Row 3" in m and "no transaction id" in m for m in messages)
    assert any("Row 4" in m and "not a date" in m for m in messages)
    assert not Settlement.objects.exists()


def test_only_ledger_closers_import(org, customer):
    with pytest.raises(PermissionDenied):
        settlements.import_settlement(
            site=org.block_a,
            provider="mtn",
            day=DAY,
            text="A,1,0,2026-11-20\n",
            by=org.site_manager,
        )
    assert Payment.objects.count() == 0
