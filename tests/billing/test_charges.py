"""Charges: connection fees, deposits and other charges in exact monthly instalments.

Block A is a UGX site (no cents); Jinja Town is switched to KES where cents matter.
People from ``org``: ``billing`` may add and cancel charges on Block A and approve
money; ``supervisor`` may see billing but not add; ``agent`` sees no billing.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from billing import charges, ledger
from billing.charge_tasks import post_due_instalments
from billing.ledger import Source
from billing.models import Charge, ChargeInstalment, LedgerAccount, MoneyRequest, Posting
from customers import services as customer_services
from mcoms.core.audit import acting_as
from mcoms.core.models import AuditEvent
from tests import factories

Kind = LedgerAccount.Kind
UTC = dt.UTC


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


@pytest.fixture
def cust(org):
    return factories.customer(org.block_a)


def add(org, cust, kind=Charge.Kind.CONNECTION_FEE, total="100000", n=3, first=None, by=None):
    with acting_as(by or org.billing):
        return charges.charge_create(
            customer=cust,
            kind=kind,
            total=D(total),
            instalments=n,
            first_due=first or dt.date(2026, 1, 31),
            by=by or org.billing,
        )


def balance(site, kind):
    return ledger.balance(ledger.account(site, kind))


# --- The split ------------------------------------------------------------------------------


@given(
    st.sampled_from(["UGX", "KES"]),
    st.integers(min_value=1, max_value=10**9),
    st.integers(min_value=1, max_value=60),
)
def test_instalments_always_add_up_to_the_total_exactly(currency, minor_units, count):
    unit = ledger.minor_unit(currency)
    total = D(minor_units) * unit
    if minor_units < count:
        with pytest.raises(ValueError, match="cannot be split"):
            charges.split_total(total, count, currency)
        return
    parts = charges.split_total(total, count, currency)
    assert len(parts) == count
    assert sum(parts) == total
    assert all(p > 0 and p == p.quantize(unit) for p in parts)
    # Every instalment but the last is the same; the last takes the remainder.
    assert len(set(parts[:-1])) <= 1
    assert parts[-1] - parts[0] < count * unit


def test_split_examples_and_refusals():
    assert charges.split_total(D("100000"), 3, "UGX") == [D(33333), D(33333), D(33334)]
    assert charges.split_total(D("100.00"), 3, "KES") == [D("33.33"), D("33.33"), D("33.34")]
    with pytest.raises(ValueError, match="whole amount of UGX"):
        charges.split_total(D("100.50"), 2, "UGX")
    with pytest.raises(ValueError, match="positive"):
        charges.split_total(D("0"), 2, "UGX")


def test_due_dates_keep_the_day_or_the_end_of_a_short_month():
    assert charges.due_dates(dt.date(2026, 1, 31), 4) == [
        dt.date(2026, 1, 31),
        dt.date(2026, 2, 28),
        dt.date(2026, 3, 31),
        dt.date(2026, 4, 30),
    ]
    assert charges.due_dates(dt.date(2026, 11, 15), 3)[-1] == dt.date(2027, 1, 15)


# --- Creating and posting -------------------------------------------------------------------


def test_a_charge_is_scheduled_and_audited_but_nothing_is_posted_yet(org, cust):
    charge = add(org, cust)

    schedule = list(charge.schedule.values_list("number", "due_on", "amount", "posting"))
    assert schedule == [
        (1, dt.date(2026, 1, 31), D(33333), None),
        (2, dt.date(2026, 2, 28), D(33333), None),
        (3, dt.date(2026, 3, 31), D(33334), None),
    ]
    assert ledger.customer_balance(cust) == 0
    event = AuditEvent.objects.get(object_type="billing.charge", object_id=str(charge.pk))
    assert event.actor == org.billing and event.after["schedule"][2] == ["2026-03-31", "33334"]


def test_bad_charges_are_refused_with_a_reason(org, cust):
    with pytest.raises(ValidationError) as err:
        add(org, cust, total="100.50")
    assert "whole amount of UGX" in str(err.value.message_dict["total"])
    with pytest.raises(ValidationError) as err:
        add(org, cust, n=0)
    assert "instalments" in err.value.message_dict
    with pytest.raises(PermissionDenied):
        add(org, cust, by=org.supervisor)
    assert not Charge.objects.exists()


def test_due_instalments_post_once_as_fee_revenue(org, cust):
    charge = add(org, cust)

    first = charges.post_due(now=at(2026, 2, 1, 12))
    again = charges.post_due(now=at(2026, 2, 1, 12))

    assert (first.posted, again.posted) == (1, 0)
    inst = charge.schedule.get(number=1)
    assert inst.posting.kind == Posting.Kind.CHARGE
    assert inst.posting.reference == f"charge:{charge.pk}:1"
    assert inst.posting.date == dt.date(2026, 1, 31)
    assert ledger.customer_balance(cust) == D(33333)
    assert balance(org.block_a, Kind.REVENUE_FEES) == D(-33333)

    charges.post_due(now=at(2026, 4, 1, 12))
    charge.refresh_from_db()
    assert charge.status == Charge.Status.COMPLETED
    assert ledger.customer_balance(cust) == D(100000)
    assert Posting.objects.filter(reference__startswith=f"charge:{charge.pk}:").count() == 3


def test_a_deposit_is_held_for_the_customer_not_revenue(org, cust):
    add(org, cust, kind=Charge.Kind.DEPOSIT, total="50000", n=1, first=dt.date(2026, 1, 5))

    charges.post_due(now=at(2026, 1, 5, 12))

    posting = Posting.objects.get(kind=Posting.Kind.DEPOSIT)
    assert ledger.customer_balance(cust) == D(50000)
    assert balance(org.block_a, Kind.DEPOSITS_HELD) == D(-50000)
    assert balance(org.block_a, Kind.REVENUE_FEES) == 0
    assert charges.deposit_held(cust) == D(50000)
    assert AuditEvent.objects.filter(object_type="billing.posting", object_id=str(posting.pk))


def test_due_means_the_sites_own_date(org, cust):
    add(org, cust, n=1, first=dt.date(2026, 5, 1))

    # 22:00 UTC on 30 April is 01:00 on 1 May in Kampala (UTC+3).
    assert charges.post_due(now=at(2026, 4, 30, 20)).posted == 0
    assert charges.post_due(now=at(2026, 4, 30, 22)).posted == 1


def test_an_instalment_whose_month_is_closed_lands_in_the_open_month(org, cust):
    add(org, cust, n=1, first=dt.date(2026, 1, 20))
    with acting_as(org.billing):
        ledger.period_close(site=org.block_a, month=dt.date(2026, 1, 1), by=org.billing)

    charges.post_due(now=at(2026, 2, 3, 9))

    assert ChargeInstalment.objects.get().posting.date == dt.date(2026, 2, 3)


def test_the_periodic_task_posts_due_instalments(org, cust, monkeypatch):
    add(org, cust, n=2, first=dt.date(2020, 1, 1))

    result = post_due_instalments.delay().get()

    assert result == {"posted": 2, "failed": 0}
    assert ledger.customer_balance(cust) == D(100000)


def test_cancelling_stops_future_instalments_and_keeps_posted_ones(org, cust):
    charge = add(org, cust)
    charges.post_due(now=at(2026, 2, 1, 12))

    with pytest.raises(ValidationError), acting_as(org.billing):
        charges.charge_cancel(charge=charge, reason="  ", by=org.billing)
    with acting_as(org.billing):
        charges.charge_cancel(charge=charge, reason="customer moved away", by=org.billing)
    charges.post_due(now=at(2026, 6, 1, 12))

    assert ledger.customer_balance(cust) == D(33333)
    assert charge.schedule.filter(posting__isnull=False).count() == 1
    event = AuditEvent.objects.get(
        object_type="billing.charge", object_id=str(charge.pk), action="transition"
    )
    assert "customer moved away" in event.note and event.after["instalments_stopped"] == 2


# --- Returning a deposit --------------------------------------------------------------------


def close(cust):
    with acting_as(label="test"):
        customer_services.customer_set_status(customer=cust, status="closed", reason="left")
    cust.refresh_from_db()
    return cust


def test_deposit_clears_arrears_first_and_the_rest_is_a_refund_for_a_second_person(org, cust):
    add(org, cust, kind=Charge.Kind.DEPOSIT, total="50000", n=1, first=dt.date(2026, 1, 5))
    charges.post_due(now=at(2026, 1, 6, 12))
    # The deposit itself was paid; then a bill of 30,000 went unpaid.
    with acting_as(org.billing):
        ledger.payment_post(
            customer=cust, amount=D(50000), date=dt.date(2026, 1, 6), source=Source("bank")
        )
        ledger.invoice_post(customer=cust, date=dt.date(2026, 2, 1), energy=D(30000))
    fee = add(org, cust, n=4, first=dt.date(2026, 12, 1))

    with pytest.raises(ValidationError, match="closed"), acting_as(org.billing):
        charges.deposit_return(customer=cust, source=Source("bank"), by=org.billing)

    cust = close(cust)
    with acting_as(org.billing):
        result = charges.deposit_return(
            customer=cust, source=Source("bank"), by=org.billing, date=dt.date(2026, 3, 1)
        )

    assert (result.held, result.against_arrears) == (D(50000), D(30000))
    assert ledger.customer_balance(cust) == D(-20000)  # credit until the refund is paid
    assert balance(org.block_a, Kind.DEPOSITS_HELD) == 0
    assert charges.deposit_held(cust) == 0
    fee.refresh_from_db()
    assert fee.status == Charge.Status.CANCELLED
    refund = result.refund
    assert (refund.kind, refund.amount, refund.status) == ("refund", D(20000), "requested")
    with pytest.raises(PermissionDenied, match="second person"), acting_as(org.billing):
        ledger.money_request_approve(request=refund, by=org.billing, date=dt.date(2026, 3, 1))
    with acting_as(org.admin):
        ledger.money_request_approve(request=refund, by=org.admin, date=dt.date(2026, 3, 1))
    assert ledger.customer_balance(cust) == 0
    # Returning again finds nothing held.
    with acting_as(org.billing):
        again = charges.deposit_return(customer=cust, source=Source("bank"), by=org.billing)
    assert again.held == 0 and MoneyRequest.objects.count() == 1


def test_a_deposit_smaller_than_the_arrears_only_lowers_them(org, cust):
    add(org, cust, kind=Charge.Kind.DEPOSIT, total="20000", n=1, first=dt.date(2026, 1, 5))
    charges.post_due(now=at(2026, 1, 6, 12))
    with acting_as(org.billing):
        ledger.invoice_post(customer=cust, date=dt.date(2026, 2, 1), energy=D(30000))
    cust = close(cust)
    with acting_as(org.billing):
        result = charges.deposit_return(customer=cust, source=Source("bank"), by=org.billing)
    assert (result.against_arrears, result.refund) == (D(20000), None)
    assert ledger.customer_balance(cust) == D(30000)


# --- Pages ----------------------------------------------------------------------------------


def test_charges_page_lists_adds_and_cancels(org, cust, client_for):
    url = reverse("billing:charge-list", args=[cust.pk])
    client = client_for(org.billing)

    response = client.post(
        reverse("billing:charge-add", args=[cust.pk]),
        {
            "kind": "connection_fee",
            "description": "Connection",
            "total": "90000",
            "instalments": "3",
            "first_due": "2026-05-10",
        },
    )
    assert response.status_code == 302
    charge = Charge.objects.get()
    assert list(charge.schedule.values_list("amount", flat=True)) == [D(30000)] * 3

    page = client.get(url).content.decode()
    assert "Connection" in page and "2026-07-10" in page and "30,000" in page

    client.post(reverse("billing:charge-cancel", args=[charge.pk]), {"reason": "waived"})
    charge.refresh_from_db()
    assert charge.status == Charge.Status.CANCELLED


def test_bad_input_on_the_page_says_why_and_adds_nothing(org, cust, client_for):
    response = client_for(org.billing).post(
        reverse("billing:charge-add", args=[cust.pk]),
        {"kind": "deposit", "total": "1000.50", "instalments": "2", "first_due": "2026-05-10"},
    )
    assert response.status_code == 400
    assert "not a whole amount of UGX" in response.content.decode()
    assert 'value="1000.50"' in response.content.decode()
    assert not Charge.objects.exists()


def test_charge_pages_need_billing_rights(org, cust, client_for):
    url = reverse("billing:charge-list", args=[cust.pk])
    assert client_for(org.agent).get(url).status_code == 403
    supervisor = client_for(org.supervisor)
    assert supervisor.get(url).status_code == 200
    response = supervisor.post(
        reverse("billing:charge-add", args=[cust.pk]),
        {"kind": "deposit", "total": "1000", "instalments": "1", "first_due": "2026-05-10"},
    )
    assert response.status_code == 403
    other = factories.customer(org.jinja_town)
    assert (
        client_for(org.billing).get(reverse("billing:charge-list", args=[other.pk])).status_code
        == 404
    )
    assert not Charge.objects.exists()


def test_deposit_return_from_the_page(org, cust, client_for):
    add(org, cust, kind=Charge.Kind.DEPOSIT, total="50000", n=1, first=dt.date(2026, 1, 5))
    charges.post_due(now=at(2026, 1, 6, 12))
    with acting_as(org.billing):
        ledger.payment_post(
            customer=cust, amount=D(50000), date=dt.date(2026, 1, 6), source=Source("bank")
        )
    cust = close(cust)
    client = client_for(org.billing)
    assert (
        "Return the deposit"
        in client.get(reverse("billing:charge-list", args=[cust.pk])).content.decode()
    )

    client.post(
        reverse("billing:charge-deposit-return", args=[cust.pk]),
        {"channel": "mobile_money", "provider": "mtn"},
    )

    refund = MoneyRequest.objects.get()
    assert refund.amount == D(50000) and refund.source["provider"] == "mtn"


# --- Concurrency (PostgreSQL) ----------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_workers_running_the_task_at_once_post_each_instalment_once(org, cust):
    import threading

    from django.db import connection

    add(org, cust, n=3, first=dt.date(2026, 1, 10))
    barrier, results = threading.Barrier(3), []

    def run():
        try:
            barrier.wait()
            results.append(charges.post_due(now=at(2026, 4, 1, 12)).posted)
        except Exception as exc:  # noqa: BLE001 - the test inspects what each worker got
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert all(isinstance(r, int) for r in results) and sum(results) == 3
    assert Posting.objects.filter(kind=Posting.Kind.CHARGE).count() == 3
    assert ledger.customer_balance(cust) == D(100000)
