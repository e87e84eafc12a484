"""On PostgreSQL: callbacks, polls and retries racing each other still record one payment."""

from __future__ import annotations

import itertools
import threading
from decimal import Decimal

import pytest
from django.db import connection

from billing import ledger
from billing.models import Posting
from billing.payments import services
from billing.payments.models import Payment, PaymentRequest


def _race(target, count: int) -> list:
    barrier, results = threading.Barrier(count), []

    def run():
        try:
            barrier.wait()
            results.append(target())
        except Exception as exc:  # noqa: BLE001 - the test inspects what each thread got
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_simultaneous_callbacks_and_polls_credit_once(live, mtn, customer):
    req = services.request_to_pay(
        customer=customer,
        amount=Decimal("9000"),
        provider="mtn",
        channel=PaymentRequest.Channel.USSD,
    )
    mtn.settle(req.reference, "SUCCESSFUL", txn="RACE1")
    body = f'{{"externalId": "{req.reference}"}}'.encode()

    turns = itertools.count()

    def callback_or_poll():
        if next(turns) % 2:  # half callbacks, half polls
            return services.handle_callback("mtn", body, {})
        return services.refresh(PaymentRequest.objects.get(pk=req.pk))

    results = _race(callback_or_poll, 4)
    assert not [r for r in results if isinstance(r, Exception)]
    assert Payment.objects.count() == 1
    assert Posting.objects.filter(kind=Posting.Kind.PAYMENT).count() == 1
    assert ledger.customer_balance(customer) == Decimal("-9000")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_simultaneous_recordings_of_one_transaction(customer):
    def record():
        return services.record_payment(
            customer=customer, amount="4000", method="airtel", provider_txn_id="MP-RACE"
        )

    results = _race(record, 4)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len({r.pk for r in results}) == 1
    assert Payment.objects.count() == 1
    assert ledger.customer_balance(customer) == Decimal("-4000")
