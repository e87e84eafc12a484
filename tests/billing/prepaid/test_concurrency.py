"""Draws and token sales racing each other on PostgreSQL: each hour and payment once."""

from __future__ import annotations

import threading
from decimal import Decimal as D

import pytest
from django.db import connection

from billing import ledger
from billing.models import Posting
from billing.prepaid import credit, hooks
from billing.prepaid.models import CreditDraw, TokenPurchase
from tests.billing.prepaid.helpers import (
    UGANDA_DOMESTIC,
    Mode,
    hourly,
    package,
    pay,
    prepaid_customer,
    tariff_in_force,
)
from tests.billing.prepaid.test_credit import START, H, metered

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def race(fn, n=4):
    barrier, results = threading.Barrier(n), []

    def run():
        try:
            barrier.wait()
            results.append(fn())
        except Exception as exc:  # noqa: BLE001 - the test inspects what each got
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_concurrent_draws_charge_each_hour_once(org):
    customer, meter = metered(org)
    pay(customer, "50000", START)
    hourly(meter, START, ["1", "1", "1"])
    results = race(lambda: credit.draw(customer, now=START + 4 * H))
    assert not [r for r in results if isinstance(r, Exception)]
    assert CreditDraw.objects.count() == 1
    assert Posting.objects.filter(kind=Posting.Kind.CHARGE).count() == 1
    assert credit.credit(customer) == D("50000") - D("6372")


def test_concurrent_hook_calls_for_one_payment_sell_once(org):
    tariff = tariff_in_force(org, UGANDA_DOMESTIC)
    customer = prepaid_customer(org.block_a, package(tariff, Mode.PREPAID_TOKEN))
    payment = pay(customer, "20000", START)
    results = race(lambda: hooks.payment_received(payment))
    assert TokenPurchase.objects.count() == 1
    assert Posting.objects.filter(kind=Posting.Kind.TOKEN_SALE).count() == 1
    assert ledger.customer_balance(customer) == 0
    assert results == [None] * 4  # nobody got an error: the later calls found the sale
