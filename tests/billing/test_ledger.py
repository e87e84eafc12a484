"""The ledger: balanced, exact, immutable postings; period close; refunds and write-offs
approved by a second person.

People come from ``org``: ``billing`` (billing officer) and ``admin`` may approve and
close; ``agent`` may not. Block A is a UGX site (no cents); Jinja Town is switched to KES
where cents matter.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from decimal import Decimal as D

import pytest
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from billing import ledger
from billing.ledger import Line, Source
from billing.models import (
    LedgerAccount,
    LedgerImmutableError,
    MoneyRequest,
    Posting,
    PostingLine,
)
from mcoms.core.audit import acting_as
from mcoms.core.models import AuditEvent
from tests import factories

Kind = LedgerAccount.Kind
MAR = dt.date(2026, 3, 15)
APR = dt.date(2026, 4, 2)


@pytest.fixture
def cust(org):
    return factories.customer(org.block_a)


@pytest.fixture
def kes_cust(org):
    org.jinja_town.currency = "KES"
    org.jinja_town.save()
    return factories.customer(org.jinja_town)


def cash(org):
    return Source("cash", agent=org.agent)


def invoice(cust, amount=D("10000"), date=APR, **kw):
    with acting_as(label="billing run"):
        return ledger.invoice_post(customer=cust, date=date, energy=amount, **kw)


# --- Posting rules -------------------------------------------------------------------------


def test_an_invoice_debits_the_customer_and_credits_revenue_and_taxes(org, cust):
    posting = invoice(cust, D("8000"), fixed=D("2000"), vat=D("1800"), levies=D("100"))

    assert ledger.customer_balance(cust) == D("11900")
    site = org.block_a
    assert ledger.balance(ledger.account(site, Kind.REVENUE_ENERGY)) == D("-8000")
    assert ledger.balance(ledger.account(site, Kind.REVENUE_FIXED)) == D("-2000")
    assert ledger.balance(ledger.account(site, Kind.VAT_PAYABLE)) == D("-1800")
    assert ledger.balance(ledger.account(site, Kind.LEVIES_PAYABLE)) == D("-100")
    assert sum(line.amount for line in posting.lines.all()) == 0
    assert posting.currency == "UGX"


def test_an_unbalanced_posting_is_refused(org, cust):
    with pytest.raises(ledger.LedgerError, match="differ by 1"):
        ledger.post(
            site=org.block_a,
            kind=Posting.Kind.ADJUSTMENT,
            date=APR,
            lines=[
                Line(ledger.receivable(cust), D("101")),
                Line(ledger.account(org.block_a, Kind.REVENUE_ENERGY), D("-100")),
            ],
        )
    assert not Posting.objects.exists()


def test_a_posting_needs_two_lines(org, cust):
    with pytest.raises(ledger.LedgerError, match="two lines"):
        ledger.post(
            site=org.block_a,
            kind="adjustment",
            date=APR,
            lines=[Line(ledger.receivable(cust), D(0))],
        )


@pytest.mark.parametrize("amount", [D("100.50"), D("0.4"), 100.0, 100, D("NaN")])
def test_uganda_shillings_have_no_cents_and_money_is_decimal(org, cust, amount):
    with pytest.raises(ledger.LedgerError):
        invoice(cust, amount)
    assert not Posting.objects.exists()


def test_kenya_shillings_take_cents_but_not_fractions_of_them(org, kes_cust):
    invoice(kes_cust, D("150.25"))
    assert ledger.customer_balance(kes_cust) == D("150.25")

    with pytest.raises(ledger.LedgerError, match="round it first"):
        invoice(kes_cust, D("0.125"))


def test_round_money_rounds_half_up_to_the_minor_unit():
    assert ledger.round_money(D("1234.5"), "UGX") == D("1235")
    assert ledger.round_money(D("1234.49"), "UGX") == D("1234")
    assert ledger.round_money(D("10.005"), "KES") == D("10.01")
    assert ledger.round_money(D("10.004"), "NGN") == D("10.00")


def test_accounts_of_another_site_or_currency_are_refused(org, cust):
    other = ledger.account(org.block_b, Kind.REVENUE_ENERGY)
    with pytest.raises(ledger.LedgerError, match="not a UGX account"):
        ledger.post(
            site=org.block_a,
            kind="adjustment",
            date=APR,
            lines=[Line(ledger.receivable(cust), D("5")), Line(other, D("-5"))],
        )


def test_the_chart_has_one_account_per_party(org, cust):
    assert ledger.receivable(cust) == ledger.receivable(cust)
    assert ledger.account(org.block_a, Kind.CASH, agent=org.agent) != ledger.account(
        org.block_a, Kind.CASH, agent=org.supervisor
    )
    mtn = ledger.account(org.block_a, Kind.MOBILE_MONEY, provider="mtn")
    assert mtn == ledger.account(org.block_a, Kind.MOBILE_MONEY, provider="MTN")
    assert mtn != ledger.account(org.block_a, Kind.MOBILE_MONEY, provider="airtel")
    with pytest.raises(ledger.LedgerError, match="needs exactly its own party"):
        ledger.account(org.block_a, Kind.CASH)
    with pytest.raises(ledger.LedgerError, match="belongs to the site"):
        ledger.account(org.block_a, Kind.BANK, customer=cust)
    with pytest.raises(ledger.LedgerError, match="is not on"):
        ledger.account(org.block_b, Kind.RECEIVABLE, customer=cust)


# --- Typed movements -----------------------------------------------------------------------


def test_a_cash_payment_lands_in_the_agents_cash_and_reduces_what_is_owed(org, cust):
    invoice(cust, D("10000"))
    ledger.payment_post(customer=cust, amount=D("6000"), date=APR, source=cash(org))

    assert ledger.customer_balance(cust) == D("4000")
    assert ledger.balance(ledger.account(org.block_a, Kind.CASH, agent=org.agent)) == D("6000")


def test_a_mobile_money_fee_is_an_expense_out_of_the_providers_clearing(org, cust):
    momo = Source("mobile_money", provider="mtn")
    ledger.payment_post(customer=cust, amount=D("5000"), date=APR, source=momo)
    ledger.fee_post(site=org.block_a, amount=D("150"), date=APR, source=momo)

    assert ledger.balance(ledger.account(org.block_a, Kind.MOBILE_MONEY, provider="mtn")) == D(
        "4850"
    )
    assert ledger.balance(ledger.account(org.block_a, Kind.FEES_EXPENSE)) == D("150")
    assert ledger.customer_balance(cust) == D("-5000")  # prepaid credit


def test_an_adjustment_lowers_or_raises_what_is_owed(org, cust):
    invoice(cust, D("10000"))
    ledger.adjustment_post(customer=cust, amount=D("-2500"), date=APR, reason="Meter misread")
    assert ledger.customer_balance(cust) == D("7500")
    with pytest.raises(ledger.LedgerError, match="reason"):
        ledger.adjustment_post(customer=cust, amount=D("100"), date=APR, reason=" ")


def test_a_reversal_mirrors_the_original_and_leaves_it_untouched(org, cust):
    original = invoice(cust, D("10000"), vat=D("1800"))
    reversal = ledger.reversal_post(original=original, date=APR, reason="Billed twice")

    assert ledger.customer_balance(cust) == 0
    assert reversal.reverses == original
    assert sorted(line.amount for line in reversal.lines.all()) == sorted(
        -line.amount for line in original.lines.all()
    )
    assert original.lines.count() == 3  # still there, unchanged
    with pytest.raises(ledger.LedgerError, match="already been reversed"):
        ledger.reversal_post(original=original, date=APR, reason="again")


def test_balance_as_of_a_date_counts_only_postings_up_to_it(org, cust):
    invoice(cust, D("3000"), date=MAR)
    invoice(cust, D("4000"), date=APR)
    assert ledger.customer_balance(cust, as_of=MAR) == D("3000")
    assert ledger.customer_balance(cust, as_of=dt.date(2026, 2, 28)) == 0
    assert ledger.customer_balance(cust) == D("7000")


def test_the_trial_balance_lists_each_account_and_sums_to_zero(org, cust):
    invoice(cust, D("3000"), date=MAR, vat=D("540"))
    ledger.payment_post(customer=cust, amount=D("2000"), date=APR, source=cash(org))
    invoice(factories.customer(org.block_b), D("999"), date=APR)  # another site

    march = ledger.trial_balance(org.block_a, as_of=MAR)
    now = ledger.trial_balance(org.block_a)

    assert {a.kind: v for a, v in march.items()} == {
        Kind.RECEIVABLE: D("3540"),
        Kind.REVENUE_ENERGY: D("-3000"),
        Kind.VAT_PAYABLE: D("-540"),
    }
    assert now[ledger.receivable(cust)] == D("1540")
    assert now[ledger.account(org.block_a, Kind.CASH, agent=org.agent)] == D("2000")
    assert sum(now.values()) == 0
    assert all(a.site == org.block_a for a in now)


def test_every_posting_is_audited_with_its_lines(org, cust):
    with acting_as(org.billing):
        posting = ledger.invoice_post(customer=cust, date=APR, energy=D("500"), by=org.billing)

    event = AuditEvent.objects.get(object_type="billing.posting", object_id=str(posting.pk))
    assert event.actor == org.billing
    assert event.site_id == org.block_a.pk
    assert sorted(amount for _, amount in event.after["lines"]) == ["-500", "500"]


def test_a_reference_is_posted_once_per_site_so_retries_do_not_double_count(org, cust):
    momo = Source("mobile_money", provider="mtn")
    first = ledger.payment_post(
        customer=cust, amount=D("5000"), date=APR, source=momo, reference="MTN-123"
    )
    with pytest.raises(ledger.DuplicatePostingError) as caught:
        ledger.payment_post(
            customer=cust, amount=D("5000"), date=APR, source=momo, reference="MTN-123"
        )

    assert caught.value.existing == first
    assert ledger.customer_balance(cust) == D("-5000")
    other = factories.customer(org.block_b)
    ledger.payment_post(
        customer=other, amount=D("5000"), date=APR, source=momo, reference="MTN-123"
    )
    ledger.payment_post(customer=cust, amount=D("1"), date=APR, source=momo)  # no reference
    ledger.payment_post(customer=cust, amount=D("1"), date=APR, source=momo)
    assert ledger.customer_balance(cust) == D("-5002")


def test_the_database_refuses_a_second_posting_with_the_same_reference(org, cust):
    first = invoice(cust, reference="BILL-2026-04-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        Posting.objects.create(
            site=first.site,
            currency="UGX",
            kind="invoice",
            date=APR,
            posted_at=first.posted_at,
            reference="BILL-2026-04-1",
        )


# --- Immutability ----------------------------------------------------------------------------


def test_postings_and_lines_cannot_be_changed_or_deleted(org, cust):
    posting = invoice(cust)
    line = posting.lines.first()

    posting.memo = "edited"
    with pytest.raises(LedgerImmutableError):
        posting.save()
    line.amount = D("1")
    with pytest.raises(LedgerImmutableError):
        line.save()
    with pytest.raises(LedgerImmutableError):
        line.delete()
    with pytest.raises(LedgerImmutableError):
        posting.delete()
    with pytest.raises(LedgerImmutableError):
        PostingLine.objects.filter(posting=posting).update(amount=D("1"))
    with pytest.raises(LedgerImmutableError):
        Posting.objects.all().delete()
    assert ledger.customer_balance(cust) == D("10000")


def test_the_database_refuses_a_zero_line(org, cust):
    posting = invoice(cust)
    with pytest.raises(IntegrityError), transaction.atomic():
        PostingLine.objects.create(posting=posting, account=ledger.receivable(cust), amount=0)


# --- Period close ----------------------------------------------------------------------------


def test_a_closed_month_refuses_postings_and_later_months_stay_open(org, cust):
    with acting_as(org.billing):
        period = ledger.period_close(site=org.block_a, month=MAR, by=org.billing)

    assert period.month == dt.date(2026, 3, 1)
    with pytest.raises(ledger.PeriodClosedError, match="March 2026 is closed"):
        invoice(cust, date=dt.date(2026, 3, 31))
    invoice(cust, date=APR)  # April is open
    factories_other = factories.customer(org.block_b)
    invoice(factories_other, date=MAR)  # another site's March is open
    assert AuditEvent.objects.filter(object_type="billing.ledgerperiod", note="closed").exists()


def test_a_posting_in_a_closed_month_is_corrected_by_a_reversal_in_an_open_one(org, cust):
    original = invoice(cust, date=MAR)
    ledger.period_close(site=org.block_a, month=MAR, by=org.billing)

    with pytest.raises(ledger.PeriodClosedError):
        ledger.reversal_post(original=original, date=MAR, reason="wrong")
    ledger.reversal_post(original=original, date=APR, reason="wrong")
    assert ledger.customer_balance(cust, as_of=MAR) == D("10000")
    assert ledger.customer_balance(cust) == 0


def test_only_billing_staff_close_periods_and_a_month_closes_once(org):
    with pytest.raises(PermissionDenied):
        ledger.period_close(site=org.block_a, month=MAR, by=org.agent)
    ledger.period_close(site=org.block_a, month=MAR, by=org.admin)
    with pytest.raises(ledger.LedgerError, match="already closed"):
        ledger.period_close(site=org.block_a, month=MAR, by=org.billing)


# --- Refunds and write-offs: maker-checker ---------------------------------------------------


def test_a_refund_is_posted_only_when_a_second_person_approves(org, cust):
    ledger.payment_post(customer=cust, amount=D("5000"), date=APR, source=cash(org))
    with acting_as(org.billing):
        request = ledger.refund_request(
            customer=cust, amount=D("2000"), source=cash(org), reason="Overpaid", by=org.billing
        )
    assert ledger.customer_balance(cust) == D("-5000")

    with pytest.raises(PermissionDenied, match="second person"):
        ledger.money_request_approve(request=request, by=org.billing, date=APR)
    with acting_as(org.admin):
        request = ledger.money_request_approve(request=request, by=org.admin, date=APR)

    assert request.status == MoneyRequest.Status.APPROVED
    assert request.posting.kind == Posting.Kind.REFUND
    assert ledger.customer_balance(cust) == D("-3000")
    assert ledger.balance(ledger.account(org.block_a, Kind.CASH, agent=org.agent)) == D("3000")
    notes = set(
        AuditEvent.objects.filter(object_type="billing.moneyrequest").values_list("note", flat=True)
    )
    assert notes == {"refund requested", "refund approved"}
    decided = AuditEvent.objects.get(note="refund approved")
    assert decided.actor == org.admin
    assert decided.after["posting"] == request.posting.pk


def test_a_write_off_cannot_exceed_what_is_owed(org, cust):
    invoice(cust, D("10000"))
    request = ledger.write_off_request(
        customer=cust, amount=D("12000"), reason="Customer left", by=org.billing
    )
    with pytest.raises(ledger.LedgerError, match="Only 10000 is owed"):
        ledger.money_request_approve(request=request, by=org.admin, date=APR)

    request = ledger.write_off_request(
        customer=cust, amount=D("10000"), reason="Customer left", by=org.billing
    )
    ledger.money_request_approve(request=request, by=org.admin, date=APR)
    assert ledger.customer_balance(cust) == 0
    assert ledger.balance(ledger.account(org.block_a, Kind.WRITE_OFF_EXPENSE)) == D("10000")


def test_a_rejected_request_posts_nothing_and_cannot_be_approved_later(org, cust):
    request = ledger.write_off_request(customer=cust, amount=D("100"), reason="x", by=org.billing)
    with pytest.raises(ledger.LedgerError, match="Say why"):
        ledger.money_request_reject(request=request, by=org.admin, note="")
    ledger.money_request_reject(request=request, by=org.admin, note="Still collectable")

    with pytest.raises(ledger.LedgerError, match="already rejected"):
        ledger.money_request_approve(request=request, by=org.admin, date=APR)
    assert not Posting.objects.exists()


def test_field_agents_can_neither_request_nor_approve(org, cust):
    with pytest.raises(PermissionDenied):
        ledger.write_off_request(customer=cust, amount=D("100"), reason="x", by=org.agent)
    request = ledger.refund_request(
        customer=cust, amount=D("100"), source=Source("bank"), reason="x", by=org.billing
    )
    with pytest.raises(PermissionDenied):
        ledger.money_request_approve(request=request, by=org.agent, date=APR)


def test_requests_refuse_inexact_amounts_and_unknown_channels(org, cust):
    with pytest.raises(ledger.LedgerError, match="round it first"):
        ledger.write_off_request(customer=cust, amount=D("10.5"), reason="x", by=org.billing)
    with pytest.raises(ledger.LedgerError, match="Unknown payment channel"):
        ledger.refund_request(
            customer=cust, amount=D("10"), source=Source("cheque"), reason="x", by=org.billing
        )


# --- Admin -----------------------------------------------------------------------------------


def test_the_admin_shows_the_ledger_but_never_edits_or_deletes_it(org, cust, client_for):
    posting = invoice(cust)
    line = posting.lines.first()
    browser = client_for(org.admin)

    for model in ["posting", "ledgeraccount", "ledgerperiod", "moneyrequest"]:
        assert browser.get(reverse(f"admin:billing_{model}_changelist")).status_code == 200
        assert browser.get(reverse(f"admin:billing_{model}_add")).status_code == 403
    page = browser.get(reverse("admin:billing_posting_change", args=[posting.pk]))
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    delete = reverse("admin:billing_posting_delete", args=[posting.pk])
    assert browser.post(delete, {"post": "yes"}).status_code == 403
    acct = reverse("admin:billing_ledgeraccount_change", args=[line.account_id])
    browser.post(acct, {"provider": "forged"})
    assert Posting.objects.count() == 1
    assert ledger.customer_balance(cust) == D("10000")
    assert LedgerAccount.objects.get(pk=line.account_id).provider == ""


# --- Concurrency (PostgreSQL) ----------------------------------------------------------------


def in_thread(target, results: list):
    def run():
        try:
            results.append(target())
        except Exception as exc:  # noqa: BLE001 - the test inspects what each thread got
            results.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_of_one_reference_post_once(org, cust):
    barrier, results = threading.Barrier(4), []

    def pay():
        barrier.wait()
        return ledger.payment_post(
            customer=cust, amount=D("700"), date=APR, source=cash(org), reference="R-1"
        )

    for thread in [in_thread(pay, results) for _ in range(4)]:
        thread.join(timeout=30)

    assert Posting.objects.count() == 1
    assert sum(isinstance(r, ledger.DuplicatePostingError) for r in results) == 3
    assert ledger.customer_balance(cust) == D("-700")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_posting_racing_a_close_waits_for_it_and_is_refused(org, cust):
    closed, release, results = threading.Event(), threading.Event(), []

    def close():
        with transaction.atomic():
            ledger.period_close(site=org.block_a, month=APR, by=org.billing)
            closed.set()
            release.wait(timeout=30)

    closer = in_thread(close, [])
    assert closed.wait(timeout=30)
    poster = in_thread(lambda: invoice(cust, date=APR), results)
    time.sleep(0.5)
    assert poster.is_alive()  # blocked on the site's lock until the close commits
    release.set()
    closer.join(timeout=30)
    poster.join(timeout=30)

    assert isinstance(results[0], ledger.PeriodClosedError)
    assert not Posting.objects.exists()
