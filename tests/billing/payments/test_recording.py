"""Recording money: receipts, ledger, allocation, prepaid, cash, hand-over, reversal, refund."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from billing import ledger, supply
from billing.models import LedgerAccount, MoneyRequest, Posting, SupplyRequest
from billing.payments import allocation, services
from billing.payments.models import Allocation, Payment
from mcoms.core.audit import acting_as
from mcoms.core.models import AuditEvent
from tests import factories
from tests.billing.payments.conftest import make_invoice
from tests.billing.prepaid.helpers import FLAT_UGX, Mode, package, tariff_in_force

pytestmark = pytest.mark.django_db
D = Decimal


def test_receipt_numbers_are_unique_and_readable(org, customer):
    other = factories.customer(org.block_b)
    a = services.record_cash(customer=customer, amount="1000", agent=org.agent)
    b = services.record_cash(customer=customer, amount="2000", agent=org.agent)
    c = services.record_payment(customer=other, amount="500", method="bank")
    assert a.receipt_number == "R-KLA-000001" and b.receipt_number == "R-KLA-000002"
    assert c.receipt_number == "R-KLB-000001"


def test_one_payment_per_provider_transaction(org, customer):
    first = services.record_payment(
        customer=customer, amount="5000", method="mtn", provider_txn_id="T-1"
    )
    again = services.record_payment(
        customer=customer, amount="5000", method="mtn", provider_txn_id="T-1"
    )
    assert again.pk == first.pk
    assert Payment.objects.count() == 1
    assert Posting.objects.filter(kind=Posting.Kind.PAYMENT).count() == 1
    assert ledger.customer_balance(customer) == D("-5000")
    # The same id at another provider is another payment.
    services.record_payment(
        customer=customer, amount="5000", method="airtel", provider_txn_id="T-1"
    )
    assert Payment.objects.count() == 2


def test_oldest_invoice_first_and_overpayment_kept_as_credit(org, customer):
    old = make_invoice(customer, "10000", dt.date(2026, 8, 1))
    new = make_invoice(customer, "8000", dt.date(2026, 9, 1))
    services.record_payment(customer=customer, amount="12000", method="bank")
    assert allocation.open_amount(old) == 0
    assert allocation.open_amount(new) == D("6000")
    services.record_payment(customer=customer, amount="9000", method="bank")
    assert allocation.open_amount(new) == 0
    assert allocation.unallocated(customer) == D("3000")
    assert ledger.customer_balance(customer) == D("-3000")
    # The credit pays the next invoice when it is issued and allocation runs.
    later = make_invoice(customer, "5000", dt.date(2026, 10, 1))
    allocation.allocate(customer)
    assert allocation.open_amount(later) == D("2000")
    assert allocation.unallocated(customer) == 0


def test_operator_fee_goes_through_fee_post(org, customer):
    services.record_payment(
        customer=customer, amount="10000", method="mtn", provider_txn_id="X9", operator_fee="150"
    )
    fees = ledger.account(org.block_a, LedgerAccount.Kind.FEES_EXPENSE)
    clearing = ledger.account(org.block_a, LedgerAccount.Kind.MOBILE_MONEY, provider="mtn")
    assert ledger.balance(fees) == D("150")
    assert ledger.balance(clearing) == D("9850")
    assert Posting.objects.get(kind=Posting.Kind.FEE).reference == "mtn:X9:provider-fee"


def test_a_closed_month_posts_on_today(org, customer):
    with acting_as(org.billing):
        ledger.period_close(site=org.block_a, month=dt.date(2026, 1, 1), by=org.billing)
    late = dt.datetime(2026, 1, 31, 12, tzinfo=dt.UTC)
    payment = services.record_payment(
        customer=customer, amount="1000", method="bank", received_at=late
    )
    assert payment.posting.date == services.local_day(org.block_a)
    assert payment.received_at == late


def test_prepaid_top_up_asks_for_reconnection(org):
    tariff = tariff_in_force(org, FLAT_UGX)
    cust = factories.customer(
        org.block_a, package=package(tariff, Mode.PREPAID_CREDIT), status="active"
    )
    with acting_as(label="test"):
        supply.request(
            customer=cust,
            action=SupplyRequest.Action.DISCONNECT,
            reason=SupplyRequest.Reason.PREPAID_EMPTY,
        )
    services.record_cash(customer=cust, amount="5000", agent=org.agent)
    assert SupplyRequest.objects.filter(
        customer=cust, action=SupplyRequest.Action.RECONNECT, status="requested"
    ).exists()


def test_reversing_a_prepaid_top_up_looks_at_the_credit_again(org):
    from billing.prepaid import credit

    tariff = tariff_in_force(org, FLAT_UGX)
    cust = factories.customer(
        org.block_a, package=package(tariff, Mode.PREPAID_CREDIT), status="active"
    )
    credit.open_account(cust)
    top_up = services.record_cash(customer=cust, amount="5000", agent=org.agent)
    assert not SupplyRequest.objects.filter(customer=cust).exists()
    services.reverse_payment(payment=top_up, reason="counterfeit notes", by=org.billing)
    assert SupplyRequest.objects.filter(
        customer=cust, action=SupplyRequest.Action.DISCONNECT, status="requested"
    ).exists()  # no credit left once the money is taken back


def test_cash_on_hand_and_handover_reconciled(org, customer):
    services.record_cash(customer=customer, amount="30000", agent=org.agent)
    services.record_cash(customer=customer, amount="20000", agent=org.agent)
    assert services.cash_on_hand(org.agent, org.block_a) == D("50000")
    with pytest.raises(PermissionDenied):  # an agent cannot receive cash
        services.cash_handover(
            agent=org.agent, site=org.block_a, counted="50000", received_by=org.supervisor
        )
    short = services.cash_handover(
        agent=org.agent,
        site=org.block_a,
        counted="48000",
        received_by=org.billing,
        note="counted twice",
    )
    assert (short.expected, short.counted, short.difference) == (D("50000"), D("48000"), D("-2000"))
    assert services.cash_on_hand(org.agent, org.block_a) == D("2000")  # still owed by the agent
    bank = ledger.account(org.block_a, LedgerAccount.Kind.BANK)
    assert ledger.balance(bank) == D("48000")
    positions = services.cash_positions([org.block_a])
    assert positions[0]["balance"] == D("2000") and positions[0]["last"] == short
    office = services.cash_handover(
        agent=org.agent,
        site=org.block_a,
        counted="2000",
        received_by=org.site_manager,
        destination="office",
    )
    assert office.difference == 0
    assert services.cash_on_hand(org.agent, org.block_a) == 0
    assert services.cash_on_hand(org.site_manager, org.block_a) == D("2000")
    assert AuditEvent.objects.filter(object_type="payments.cashhandover").count() == 2


def test_agent_outside_the_site_cannot_take_cash(org, customer):
    with pytest.raises(PermissionDenied):
        services.record_cash(customer=customer, amount="1000", agent=org.outsider_agent)


def test_reversal_undoes_posting_and_allocations(org, customer):
    inv = make_invoice(customer, "10000", dt.date(2026, 9, 1))
    wrong = services.record_payment(customer=customer, amount="10000", method="bank")
    services.record_payment(customer=customer, amount="4000", method="bank")
    assert allocation.open_amount(inv) == 0 and allocation.unallocated(customer) == D("4000")
    with pytest.raises(PermissionDenied):
        services.reverse_payment(payment=wrong, reason="typo", by=org.agent)
    services.reverse_payment(payment=wrong, reason="entered for the wrong account", by=org.billing)
    wrong.refresh_from_db()
    assert wrong.status == Payment.Status.REVERSED and wrong.reversal is not None
    assert not Allocation.objects.filter(payment=wrong).exists()
    # The other payment now covers what it can.
    assert allocation.open_amount(inv) == D("6000")
    assert ledger.customer_balance(customer) == D("6000")
    assert AuditEvent.objects.filter(
        object_type="payments.allocation", action=AuditEvent.Action.DELETE
    ).exists()
    with pytest.raises(ValidationError):
        services.reverse_payment(payment=wrong, reason="again", by=org.billing)


def test_refund_needs_a_second_person_and_only_unallocated_money(org, customer):
    make_invoice(customer, "7000", dt.date(2026, 9, 1))
    payment = services.record_payment(
        customer=customer, amount="10000", method="mtn", provider_txn_id="R1"
    )
    with pytest.raises(ValidationError, match="Only 3000"):
        services.refund_request(payment=payment, amount="5000", reason="overpaid", by=org.billing)
    refund = services.refund_request(
        payment=payment, amount="3000", reason="overpaid", by=org.billing
    )
    assert services.refundable(payment) == 0
    with pytest.raises(PermissionDenied):
        services.refund_approve(refund=refund, by=org.billing)  # the same person
    services.refund_approve(refund=refund, by=org.admin)
    payment.refresh_from_db()
    assert payment.refunded == D("3000") and payment.status == Payment.Status.COMPLETED
    assert refund.money_request.status == MoneyRequest.Status.REQUESTED  # stale copy
    refund.money_request.refresh_from_db()
    assert refund.money_request.status == MoneyRequest.Status.APPROVED
    assert ledger.customer_balance(customer) == 0
    assert allocation.unallocated(customer) == 0
    clearing = ledger.account(org.block_a, LedgerAccount.Kind.MOBILE_MONEY, provider="mtn")
    assert ledger.balance(clearing) == D("7000")
