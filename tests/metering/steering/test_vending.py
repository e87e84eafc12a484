"""Prepaid token vending: one token per purchase reference, even through timeouts; the push."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from metering.steering import calin, vending
from metering.steering.models import Vend
from tests.metering.steering.conftest import T0

V, P = Vend.Status, Vend.Push
PURCHASE, HISTORY, TOKEN = "/POS_Purchase", "/POS_PurchaseHistory", "/COMM_RemoteToken"


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def test_a_purchase_buys_one_token_and_pushes_it_to_the_meter(fake, grid):
    row = vending.vend(grid.calin, Decimal("5"), "tokenpurchase:1", now=T0)
    assert row.status == V.VENDED and len(row.token) == 20
    sent = fake.calls(PURCHASE)[0]
    assert sent["meter_number"] == grid.calin.serial and sent["amount"] == "5.000"
    assert sent["is_vend_by_unit"] is True and sent["password_vend"] == "vend-pass"
    assert row.push_status == P.SENT and fake.calls(TOKEN)[0]["Token"] == row.token
    vending.sweep(now=at(15))
    row.refresh_from_db()
    assert row.push_status == P.SENT  # pending at the first poll
    vending.sweep(now=at(45))
    row.refresh_from_db()
    assert row.push_status == P.DONE
    assert fake.meters[grid.calin.serial].credit_kwh == Decimal("5")
    again = vending.vend(grid.calin, Decimal("5"), "tokenpurchase:1", now=at(60))
    assert again.token == row.token and len(fake.calls(PURCHASE)) == 1


def test_a_timed_out_purchase_is_found_in_the_history_not_bought_twice(fake, grid):
    fake.fail_next("timeout", PURCHASE)  # Calin sells, the answer never arrives
    row = vending.vend(grid.calin, Decimal("7.5"), "tokenpurchase:2", now=T0)
    assert row.status == V.UNKNOWN and "no answer" in row.last_error
    assert len(fake.purchases) == 1
    retried = vending.vend(grid.calin, Decimal("7.5"), "tokenpurchase:2", now=at(60))
    assert retried.status == V.VENDED and retried.token == fake.purchases[0]["token"]
    assert len(fake.calls(PURCHASE)) == 1 and len(fake.calls(HISTORY)) == 1
    assert len(fake.purchases) == 1


def test_a_purchase_that_never_reached_calin_is_bought_by_the_sweeper(fake, grid):
    fake.fail_next("html", PURCHASE)  # the gateway failed: nothing was sold
    row = vending.vend(grid.calin, Decimal("3"), "tokenpurchase:3", now=T0)
    assert row.status == V.UNKNOWN and fake.purchases == []
    vending.sweep(now=at(60))
    row.refresh_from_db()
    assert row.status == V.VENDED and len(fake.purchases) == 1
    assert row.token == fake.purchases[0]["token"] and row.push_status == P.SENT


def test_no_blind_purchase_while_the_history_cannot_be_read(fake, grid):
    fake.fail_next("timeout", PURCHASE)
    row = vending.vend(grid.calin, Decimal("2"), "tokenpurchase:4", now=T0)
    fake.fail_next("html", HISTORY)
    vending.sweep(now=at(60))
    row.refresh_from_db()
    assert row.status == V.UNKNOWN and "gateway error" in row.last_error
    assert len(fake.calls(PURCHASE)) == 1
    vending.sweep(now=at(120))
    row.refresh_from_db()
    assert row.status == V.VENDED and len(fake.purchases) == 1


def test_a_worker_that_died_mid_call_is_resumed_from_the_history(fake, grid):
    # The row was written, the call went out and sold a token, then the worker died.
    row = Vend.objects.create(
        purchase_ref="tokenpurchase:5",
        meter=grid.calin,
        kwh=Decimal("4"),
        started_at=T0,
        attempts=1,
        called_at=T0,
        status=V.CALLING,
    )
    calin.Client().pos_purchase(grid.calin.serial, Decimal("4"))
    # a second request for the same purchase while the call could still answer: left alone
    same = vending.vend(grid.calin, Decimal("4"), "tokenpurchase:5", now=at(5))
    assert same.status == V.CALLING and len(fake.calls(PURCHASE)) == 1
    vending.sweep(now=at(600))
    row.refresh_from_db()
    assert row.status == V.VENDED and row.token == fake.purchases[0]["token"]
    assert len(fake.calls(PURCHASE)) == 1


def test_another_purchases_token_is_never_taken(fake, grid):
    first = vending.vend(grid.calin, Decimal("5"), "tokenpurchase:6", now=T0)
    fake.fail_next("html", PURCHASE)
    second = vending.vend(grid.calin, Decimal("5"), "tokenpurchase:7", now=at(10))
    assert second.status == V.UNKNOWN
    vending.sweep(now=at(60))
    second.refresh_from_db()
    assert second.status == V.VENDED and second.token != first.token
    assert len(fake.purchases) == 2


def test_a_clean_refusal_is_final(fake, grid, settings):
    settings.CALIN_POS_VEND_PASSWORD = "wrong"
    row = vending.vend(grid.calin, Decimal("5"), "tokenpurchase:8", now=T0)
    assert row.status == V.FAILED and "vending password" in row.last_error
    vending.sweep(now=at(600))
    assert len(fake.calls(PURCHASE)) == 1


def test_a_token_the_meter_already_used_is_rejected_and_not_pushed_again(fake, grid):
    row = vending.vend(grid.calin, Decimal("5"), "tokenpurchase:9", now=T0)
    vending.sweep(now=at(15))
    vending.sweep(now=at(45))
    row.refresh_from_db()
    assert row.push_status == P.DONE
    # the same token pushed again (say, typed in by hand first): ResultCode 99
    Vend.objects.filter(pk=row.pk).update(push_status="", push_next_at=at(50))
    vending.sweep(now=at(50))
    vending.sweep(now=at(65))
    vending.sweep(now=at(95))
    row.refresh_from_db()
    assert row.push_status == P.REJECTED and "rejected" in row.last_error
    pushes = len(fake.calls(TOKEN))
    vending.sweep(now=at(600))
    assert len(fake.calls(TOKEN)) == pushes == 2


def test_only_calin_meters_vend(grid):
    with pytest.raises(ValueError, match="not a Calin"):
        vending.vend(grid.chint, Decimal("1"), "tokenpurchase:10", now=T0)
    with pytest.raises(ValueError, match="positive"):
        vending.vend(grid.calin, Decimal("0"), "tokenpurchase:11", now=T0)
