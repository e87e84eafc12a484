"""Prepaid account credit: consumption drawn from the balance, low balance, empty, top-up.

Block A is UGX in Kampala (UTC+3): March 2026 starts at 2026-02-28 21:00 UTC.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from billing import ledger
from billing.models import LedgerAccount, Posting, SupplyRequest
from billing.prepaid import credit, hooks
from billing.prepaid.models import CreditAccount, CreditDraw
from billing.prepaid.tasks import draw_down
from mcoms.core.audit import acting_as
from metering import services as meter_services
from notifications import catalog
from notifications.models import Message
from tests import factories
from tests.billing.prepaid.helpers import (
    UGANDA_DOMESTIC,
    Mode,
    hourly,
    package,
    pay,
    prepaid_customer,
    tariff_in_force,
)

Kind = LedgerAccount.Kind
UTC = dt.UTC
H = dt.timedelta(hours=1)
START = dt.datetime(2026, 3, 2, 6, tzinfo=UTC)  # 09:00 in Kampala on 2 March
FLAT = {
    "fixed": [{"name": "Service charge", "amount": "3000"}],
    "energy": {"type": "flat", "rate": "800"},
    "vat_percent": "18",
}
_addresses = iter(range(10, 200))


def metered(org, terms=FLAT, *, since=START):
    tariff = tariff_in_force(org, terms)
    customer = prepaid_customer(org.block_a, package(tariff, Mode.PREPAID_CREDIT))
    meter = factories.assigned_meter(org.block_a, next(_addresses))
    with acting_as(label="test setup"):
        meter_services.meter_serve_customer(
            meter=meter, customer=customer, now=since - dt.timedelta(days=60)
        )
    credit.open_account(customer, since=since)
    return customer, meter


def charge_lines(draw: CreditDraw) -> dict:
    return {line.account.kind: line.amount for line in draw.posting.lines.select_related("account")}


@pytest.fixture
def messages(db):
    catalog.install_defaults()


def test_each_hour_is_charged_once_and_re_runs_change_nothing(org):
    customer, meter = metered(org)
    pay(customer, "50000", START)
    hourly(meter, START, ["1", "1", "1", "1"])
    # At 10:30 UTC hours 06–09 ended at least an hour ago: 06, 07, 08 are due.
    now = START + dt.timedelta(hours=4, minutes=30)
    [draw] = credit.draw(customer, now=now)
    # 3 kWh x 800 = 2,400 + the month's service charge 3,000 = 5,400 + 18 % = 6,372.
    assert (draw.hours_from, draw.hours_to) == (START, START + 3 * H)
    assert (draw.new_kwh, draw.fixed, draw.energy, draw.vat) == (3, 3000, 2400, 972)
    assert draw.posting.kind == Posting.Kind.CHARGE
    assert charge_lines(draw) == {
        Kind.RECEIVABLE: D("6372"),
        Kind.REVENUE_FIXED: D("-3000"),
        Kind.REVENUE_ENERGY: D("-2400"),
        Kind.VAT_PAYABLE: D("-972"),
    }
    assert credit.credit(customer) == D("50000") - D("6372")
    for _ in range(3):
        assert credit.draw(customer, now=now) == []
        assert draw_down.delay(now=now.isoformat()).get()["draws"] == 0
    assert credit.credit(customer) == D("43628")
    # Two hours later the next hour is charged, without the service charge again.
    [second] = credit.draw(customer, now=now + H)
    assert (second.hours_from, second.new_kwh, second.fixed, second.total) == (
        START + 3 * H,
        1,
        0,
        D("944"),
    )
    assert Posting.objects.filter(kind=Posting.Kind.CHARGE).count() == 2


def test_blocks_and_lifeline_follow_the_month_to_date_consumption(org):
    customer, meter = metered(org, UGANDA_DOMESTIC)
    pay(customer, "100000", START)
    hourly(meter, START, ["10"])
    [first] = credit.draw(customer, now=START + 2 * H)
    # 3,360 + 10 kWh x 250 = 5,860 + 18 % (1,054.8 → 1,055) = 6,915.
    assert (first.fixed, first.energy, first.total) == (3360, 2500, D("6915"))
    hourly(meter, START + H, ["10"])
    [second] = credit.draw(customer, now=START + 3 * H)
    # 5 more lifeline kWh (1,250) and 5 above (3,878.5 → 3,879): 5,129 + VAT.
    assert second.energy == D("5129") and second.fixed == 0
    assert second.month_kwh == 20
    # Together the draws are exactly the month's bill for 20 kWh.
    month = credit.CreditDraw.objects.filter(customer=customer)
    assert sum(d.total for d in month) == D("3360") + D("3750") + D("3879") + D("1978")


def test_an_estimated_hour_replaced_by_its_reading_is_repriced_by_the_next_draw(org):
    customer, meter = metered(org)
    pay(customer, "50000", START)
    hourly(meter, START, ["5"], estimated=[0])
    [first] = credit.draw(customer, now=START + 2 * H)
    assert first.estimated and first.energy == 4000
    # The real reading arrives: 2 kWh, not 5; and the next hour used 1 kWh.
    hourly(meter, START, ["2", "1"])
    [second] = credit.draw(customer, now=START + 3 * H)
    assert second.new_kwh == 1 and second.month_kwh == 3
    assert second.energy == D("-1600")  # 1 kWh more, 3 kWh less than charged
    assert not second.estimated
    assert sum(d.total for d in CreditDraw.objects.all()) == D("6372")  # (3,000 + 3 x 800) x 1.18
    assert credit.credit(customer) == D("50000") - D("6372")


def test_a_new_month_is_drawn_separately_with_its_own_fixed_charge(org):
    end_of_march = dt.datetime(2026, 3, 31, 19, tzinfo=UTC)  # 22:00 local
    customer, meter = metered(org, since=end_of_march)
    pay(customer, "50000", end_of_march)
    hourly(meter, end_of_march, ["1", "1", "1", "1"])  # 22:00, 23:00 March; 00:00, 01:00 April
    draws = credit.draw(customer, now=end_of_march + 5 * H)
    assert [(d.month, d.new_kwh, d.fixed) for d in sorted(draws, key=lambda d: d.month)] == [
        (dt.date(2026, 3, 1), 2, 3000),
        (dt.date(2026, 4, 1), 2, 3000),
    ]
    april = next(d for d in draws if d.month.month == 4)
    assert april.posting.date == dt.date(2026, 4, 1)


def test_a_month_without_consumption_costs_nothing(org):
    customer, _ = metered(org)
    pay(customer, "10000", START)
    assert credit.draw(customer, now=START + 30 * H) == []
    assert credit.credit(customer) == D("10000")
    assert CreditAccount.objects.get(customer=customer).charged_to == START + 29 * H


def test_low_balance_is_messaged_once_per_crossing_and_empty_requests_a_disconnect(org, messages):
    customer, meter = metered(org)
    pay(customer, "7000", START)  # the policy's default low-balance line is 2,000
    hourly(meter, START, ["1"] * 12)
    credit.draw(customer, now=START + 4 * H)  # 3 kWh: 6,372 → 628 left: low
    low = Message.objects.filter(template_key="low_balance", to=customer.phone)
    assert low.count() == 1
    assert "628" in low.get().body
    assert not SupplyRequest.objects.exists()
    credit.draw(customer, now=START + 5 * H)  # 944 more: nothing left
    credit.draw(customer, now=START + 6 * H)
    assert low.count() == 1
    [request] = SupplyRequest.objects.all()
    assert (request.action, request.reason, request.status) == (
        "disconnect",
        "prepaid_empty",
        "requested",
    )
    assert "UGX" in request.detail
    for hour in range(7, 9):
        credit.draw(customer, now=START + hour * H)
    assert SupplyRequest.objects.count() == 1 and low.count() == 1
    assert CreditAccount.objects.get(customer=customer).alert == CreditAccount.Alert.EMPTY

    # A top-up above zero asks to reconnect and cancels the open disconnect.
    owed = ledger.customer_balance(customer)
    hooks.payment_received(pay(customer, str(owed + 10000), START + 9 * H))
    reconnect = SupplyRequest.objects.get(action="reconnect")
    assert (reconnect.reason, reconnect.status) == ("top_up", "requested")
    assert SupplyRequest.objects.get(action="disconnect").status == "cancelled"
    assert CreditAccount.objects.get(customer=customer).alert == CreditAccount.Alert.OK
    # The next fall below the line is messaged again.
    hourly(meter, START + 12 * H, ["12"])
    credit.draw(customer, now=START + 14 * H)
    assert low.count() == 2


def test_a_top_up_that_leaves_no_credit_does_not_reconnect(org):
    customer, meter = metered(org)
    hourly(meter, START, ["10"])
    credit.draw(customer, now=START + 2 * H)  # owes 12,980
    assert SupplyRequest.objects.filter(action="disconnect").exists()
    hooks.payment_received(pay(customer, "5000", START + 3 * H))
    assert not SupplyRequest.objects.filter(action="reconnect").exists()
    hooks.payment_received(pay(customer, "9000", START + 3 * H))
    assert SupplyRequest.objects.filter(action="reconnect", reason="top_up").exists()


def test_a_top_up_reconnects_a_customer_whose_disconnection_was_carried_out(org):
    from billing import supply

    customer, meter = metered(org)
    hourly(meter, START, ["10"])
    credit.draw(customer, now=START + 2 * H)
    supply.close(request=SupplyRequest.objects.get(), status="done", outcome="relay off")
    hooks.payment_received(pay(customer, "20000", START + 3 * H))
    assert SupplyRequest.objects.filter(action="reconnect", status="requested").exists()


def test_the_periodic_draw_covers_credit_customers_and_survives_one_failing(org):
    good, meter = metered(org)
    hourly(meter, START, ["1"])
    broken, broken_meter = metered(org)
    hourly(broken_meter, START, ["1"])
    broken.package.tariff = None
    broken.package.save()
    postpaid = factories.customer(org.block_a, package=package(good.package.tariff, Mode.POSTPAID))
    report = draw_down.delay(now=(START + 2 * H).isoformat()).get()
    assert report["customers"] == 2 and report["draws"] == 1
    assert CreditDraw.objects.get().customer == good
    account = CreditAccount.objects.get(customer=broken)
    assert "no package with a tariff" in account.last_error
    assert account.charged_to == START  # the hours wait until the tariff is fixed
    assert not CreditAccount.objects.filter(customer=postpaid).exists()


def test_a_quote_for_a_credit_customer_starts_where_the_month_stands(org):
    from billing.prepaid import tokens

    customer, meter = metered(org, UGANDA_DOMESTIC)
    fresh = tokens.quote(customer, "20000", at=START)
    assert fresh.first_of_month and fresh.kwh == D("27.6")  # standing charge, lifeline
    hourly(meter, START, ["10"])
    credit.draw(customer, now=START + 2 * H)
    q = tokens.quote(customer, "20000", at=START + 2 * H)
    # 5 lifeline kWh left this month (1,250), then 775.7 a kWh; no standing charge again.
    assert not q.first_of_month and q.standing_charge == 0
    rates = [D(x["rate"]) for x in q.breakdown if x["kind"] == "energy"]
    assert rates == [D("250"), D("775.7")]
    assert sum(D(x["amount"]) for x in q.breakdown) == 20000


def test_a_reversed_top_up_that_empties_the_credit_requests_a_disconnect(org):
    customer, meter = metered(org)
    first = pay(customer, "20000", START)
    payment = pay(customer, "10000", START)
    hourly(meter, START, ["1"])
    credit.draw(customer, now=START + 2 * H)  # 4,484: 25,516 left
    assert not SupplyRequest.objects.exists()
    ledger.reversal_post(original=payment.posting, date=START.date(), reason="bounced")
    hooks.payment_reversed(payment, reason="bounced")
    assert CreditAccount.objects.get(customer=customer).alert == CreditAccount.Alert.OK
    ledger.reversal_post(original=first.posting, date=START.date(), reason="x")
    hooks.payment_reversed(first, reason="x")
    assert SupplyRequest.objects.get().reason == "prepaid_empty"
