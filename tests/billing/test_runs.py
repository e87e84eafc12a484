"""Billing runs: who is billed, preview, holds, posting, idempotence, resuming, schedule."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from billing import ledger, runs
from billing.models import (
    BillingPolicy,
    BillingRun,
    BillingRunItem,
    Invoice,
    InvoiceLine,
    Posting,
    ServicePackage,
)
from billing.tariff_terms import parse_terms
from billing.tariffs import Calendar, InForce, intervals_from_hourly, price_period
from customers import services as customer_services
from mcoms.core.audit import acting_as
from mcoms.core.models import AuditEvent, PublicHoliday
from metering import partitions
from metering import services as meter_services
from metering.consumption import customer_usage
from metering.models import HourlyUsage, Reading
from tests import factories
from tests.billing.test_runs_fixtures import (
    BLOCKS,
    END,
    FLAT,
    HOURS,
    JOINED,
    KAMPALA,
    NOV,
    OCT,
    RUN_AT,
    START,
    TOU,
    customer,
    hours,
    meter_of,
    package,
    tariff,
    usage,
)

pytestmark = pytest.mark.django_db
READY, HELD, INVOICED = (
    BillingRunItem.Status.READY,
    BillingRunItem.Status.HELD,
    BillingRunItem.Status.INVOICED,
)


@pytest.fixture
def flat(org):
    return package("shop", tariff("flat", FLAT, org))


def _run(org, now=RUN_AT) -> BillingRun:
    with acting_as(org.billing):
        run = runs.run_start(site=org.block_a, month=OCT, by=org.billing, now=now, queue=False)
        return runs.preview(run.pk)


def _post(run, org, **kw):
    with acting_as(org.billing):
        return runs.post(run.pk, by=org.billing, now=RUN_AT, **kw)


def test_preview_prices_active_postpaid_customers_and_posts_nothing(org, flat):
    billed = customer(org.block_a, flat)
    usage(meter_of(billed), "0.1")  # 74.4 kWh over October's 744 hours
    prepaid = customer(org.block_a, package("home", flat.tariff, "prepaid_credit"))
    usage(meter_of(prepaid), "0.1")
    later = customer(org.block_a, flat, joined=dt.datetime(2026, 11, 5, tzinfo=dt.UTC))
    gone = customer(org.block_a, flat)
    with acting_as(label="test"):
        customer_services.customer_set_status(
            customer=gone, status="closed", now=dt.datetime(2026, 9, 20, tzinfo=dt.UTC)
        )
    customer(org.block_b, flat)  # another site

    run = _run(org)

    assert run.status == BillingRun.Status.PREVIEWED
    items = {i.customer_id: i for i in run.items.all()}
    assert set(items) == {billed.pk}, "only active postpaid customers of the site"
    item = items[billed.pk]
    assert item.status == READY
    assert item.kwh == Decimal("74.400")
    # 3360 + 74.4 x 800 = 62,880; VAT 18% = 11,318.4 -> 11,318; total 74,198.
    assert item.total == Decimal("74198")
    assert [line["kind"] for line in item.lines] == ["fixed", "energy", "vat"]
    assert (run.total, run.done, run.held) == (1, 1, 0)
    assert not Posting.objects.exists() and not Invoice.objects.exists()
    assert later.pk not in items and prepaid.pk not in items


def test_accounts_without_enough_data_are_held_never_billed_zero(org, flat):
    full = customer(org.block_a, flat)
    usage(meter_of(full), "0.1")
    few_gaps = customer(org.block_a, flat)  # 10% of hours missing: billed
    usage(meter_of(few_gaps), "0.1", skip=set(hours()[: HOURS // 10]))
    many_gaps = customer(org.block_a, flat)  # 25% missing: held
    usage(meter_of(many_gaps), "0.1", skip=set(hours()[: HOURS // 4]))
    no_meter = customer(org.block_a, flat, meter=False)
    no_tariff = customer(org.block_a, package("bare", None))
    usage(meter_of(no_tariff), "0.1")
    nothing = customer(org.block_a, package("free", tariff("free", {"energy": {
        "type": "flat", "rate": "100"}}, org)))
    usage(meter_of(nothing), "0")

    run = _run(org)
    items = {i.customer_id: i for i in run.items.all()}

    assert items[full.pk].status == READY and items[few_gaps.pk].status == READY
    assert items[many_gaps.pk].status == HELD
    assert "186 of 744 metered hours have no reading" in items[many_gaps.pk].reason
    assert items[no_meter.pk].status == HELD and "No meter" in items[no_meter.pk].reason
    assert items[no_tariff.pk].status == HELD and "no tariff" in items[no_tariff.pk].reason
    assert items[nothing.pk].status == HELD and "zero" in items[nothing.pk].reason
    assert (run.total, run.done, run.held) == (6, 6, 4)

    run = _post(run, org)
    assert Invoice.objects.count() == 2
    assert not Invoice.objects.filter(total__lte=0).exists()
    assert (run.total, run.done, run.held) == (2, 2, 4)


def test_posting_issues_invoice_lines_and_one_ledger_posting_each(org, flat):
    a, b = customer(org.block_a, flat), customer(org.block_a, flat)
    usage(meter_of(a), "0.1")
    usage(meter_of(b), "0.2")
    run = _post(_run(org), org)

    assert run.status == BillingRun.Status.POSTED
    invoices = list(Invoice.objects.order_by("number"))
    assert [i.number for i in invoices] == ["KLA-202610-00001", "KLA-202610-00002"]
    for invoice in invoices:
        item = invoice.run_item
        assert item.status == INVOICED
        assert invoice.total == item.total and invoice.kwh == item.kwh
        assert invoice.period_start == OCT and invoice.period_end == NOV
        assert invoice.issued_on == dt.date(2026, 11, 1)
        assert invoice.due_on == dt.date(2026, 11, 15)  # 14 days by default
        lines = list(invoice.lines.values_list("kind", "amount"))
        assert lines == [(x["kind"], Decimal(x["amount"])) for x in item.lines]
        assert sum(a for _, a in lines) == invoice.total
        assert invoice.subtotal + invoice.vat == invoice.total
        posting = invoice.posting
        assert posting.kind == Posting.Kind.INVOICE and posting.reference == invoice.number
        assert sum(line.amount for line in posting.lines.all()) == 0
        assert ledger.customer_balance(invoice.customer) == invoice.total == invoice.amount_due
        event = AuditEvent.objects.get(object_type="billing.posting", object_id=str(posting.pk))
        assert event.actor == org.billing and event.after["reference"] == invoice.number
        assert sorted(Decimal(a) for _, a in event.after["lines"]) == sorted(
            line.amount for line in posting.lines.all()
        )
        assert AuditEvent.objects.filter(
            object_type="billing.invoice", object_id=str(invoice.pk)
        ).exists()
    vat = ledger.balance(ledger.account(org.block_a, "vat_payable"))
    assert vat == -sum(i.vat for i in invoices)


def test_one_invoice_per_account_and_period_however_often_it_runs(org, flat):
    c = customer(org.block_a, flat)
    usage(meter_of(c), "0.1")
    run = _post(_run(org), org)
    first = list(Invoice.objects.values_list("pk", "number"))

    _post(run, org)  # posting again
    again = runs.run_start(site=org.block_a, month=OCT, now=RUN_AT, queue=False)
    assert again.pk == run.pk and again.status == BillingRun.Status.POSTED
    with acting_as(org.billing):
        runs.preview(run.pk)  # a new preview leaves invoiced accounts alone
        runs.post(run.pk)

    assert list(Invoice.objects.values_list("pk", "number")) == first
    assert Posting.objects.count() == 1
    assert BillingRun.objects.count() == 1
    # And the ledger refuses a second posting with the invoice's number.
    with pytest.raises(ledger.DuplicatePostingError):
        ledger.invoice_post(
            customer=c, date=dt.date(2026, 11, 1), energy=Decimal(1), reference=first[0][1]
        )


def test_posting_resumes_after_stopping_part_way(org, flat):
    people = [customer(org.block_a, flat) for _ in range(5)]
    for p in people:
        usage(meter_of(p), "0.1")
    run = _run(org)

    run = _post(run, org, limit=2)  # the worker stops after two invoices
    assert Invoice.objects.count() == 2
    run.refresh_from_db()
    assert run.status == BillingRun.Status.POSTING and (run.done, run.total) == (2, 5)

    with pytest.raises(runs.RunError):  # still under way: not started twice
        runs.post_start(run=run, by=org.billing, queue=False)
    BillingRun.objects.filter(pk=run.pk).update(updated_at=RUN_AT - dt.timedelta(hours=1))
    run.refresh_from_db()
    assert runs.stale(run)  # no progress for long: the page offers to resume
    runs.post_start(run=run, by=org.billing, queue=False)
    run = _post(run, org)  # started again
    assert run.status == BillingRun.Status.POSTED and (run.done, run.total) == (5, 5)
    assert Invoice.objects.count() == 5 == Posting.objects.count()
    assert sorted(Invoice.objects.values_list("customer_id", flat=True)) == sorted(
        p.pk for p in people
    )
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == [f"KLA-202610-{n:05d}" for n in range(1, 6)]


def test_a_bad_row_stops_the_posting_and_a_rerun_finishes_without_duplicates(
    org, flat, settings
):
    people = [customer(org.block_a, flat) for _ in range(4)]
    for p in people:
        usage(meter_of(p), "0.1")
    run = _run(org)
    settings.BILLING_POST_CHUNK = 2
    bad = run.items.get(customer=people[3])
    good_lines = bad.lines
    bad.lines = [{**good_lines[0], "amount": "3360.5"}, *good_lines[1:]]  # not whole UGX
    bad.save()
    with pytest.raises(ledger.LedgerError):
        _post(run, org)
    run.refresh_from_db()
    assert run.status == BillingRun.Status.FAILED and "3360.5" in run.error
    assert Invoice.objects.count() == 2  # the first chunk went through; the bad one not
    assert not Invoice.objects.filter(customer=people[3]).exists()

    bad.lines = good_lines
    bad.save()
    run = _post(run, org)
    assert run.status == BillingRun.Status.POSTED
    assert Invoice.objects.count() == 4 == Posting.objects.count()
    assert Invoice.objects.filter(customer=people[3]).count() == 1


def test_estimated_usage_is_marked_on_the_bill(org, flat):
    c = customer(org.block_a, flat)
    usage(meter_of(c), "0.1", estimated=set(hours()[:5]))
    clean = customer(org.block_a, flat)
    usage(meter_of(clean), "0.1")
    _post(_run(org), org)

    invoice = Invoice.objects.get(customer=c)
    assert invoice.estimated
    assert invoice.lines.get(kind="energy").estimated
    assert not invoice.lines.get(kind="fixed").estimated
    assert not Invoice.objects.get(customer=clean).estimated


def test_a_bill_across_a_meter_change_uses_both_meters(org, flat):
    c = customer(org.block_a, flat)
    old = meter_of(c)
    new = factories.assigned_meter(org.block_a, 98)
    moved = dt.datetime(2026, 10, 15, 7, 37, tzinfo=dt.UTC)
    with acting_as(label="test"):
        meter_services.meter_release(meter=old, now=moved)
        meter_services.meter_serve_customer(meter=new, customer=c, now=moved)
    usage(old, "0.1")  # the old meter goes on reading (for whoever has it next)
    usage(new, "0.3")
    _run(org)

    item = BillingRunItem.objects.get(customer=c)
    before = len([h for h in hours() if h < moved.replace(minute=0) + dt.timedelta(hours=1)])
    assert item.kwh == Decimal("0.1") * before + Decimal("0.3") * (HOURS - before)
    assert item.kwh == customer_usage(c, by="hour", start=START, end=END).kwh
    assert item.status == READY


def test_time_of_use_bill_equals_the_engine_on_every_hour(org):
    PublicHoliday.objects.create(site=org.block_a, date=dt.date(2026, 10, 9), name="Independence")
    tou = package("tou", tariff("tou", TOU, org))
    blocks = package("blocks", tariff("blocks", BLOCKS, org))
    shape = {h: f"0.{(h * 7) % 10}{h % 3}" for h in range(24)}
    c, d = customer(org.block_a, tou), customer(org.block_a, blocks)
    rows = usage(meter_of(c), shape, estimated={hours()[100]})
    usage(meter_of(d), shape)
    _run(org)

    expected = price_period(
        starts=OCT,
        ends=NOV,
        currency="UGX",
        schedule=[InForce(parse_terms(TOU), dt.date(2026, 1, 1))],
        calendar=Calendar(KAMPALA, frozenset({dt.date(2026, 10, 9)})),
        usage=intervals_from_hourly((r.hour, r.kwh, r.estimated_kwh) for r in rows),
    )
    item = BillingRunItem.objects.get(customer=c)
    assert item.total == expected.total
    assert [(x["description"], Decimal(x["amount"]), x["estimated"]) for x in item.lines] == [
        (line.description, line.amount, line.estimated) for line in expected.lines
    ]
    assert {x["description"] for x in item.lines} >= {"Energy, peak", "Energy, off-peak"}
    blocks_item = BillingRunItem.objects.get(customer=d)
    assert any("lifeline" in x["description"] for x in blocks_item.lines)
    assert any(x["kind"] == "levy" for x in blocks_item.lines)


def test_demand_charge_comes_from_the_register(org):
    terms = {**FLAT, "demand": {"rate": "1000", "unit": "kW", "interval_minutes": 30}}
    c = customer(org.block_a, package("big", tariff("big", terms, org)))
    m = meter_of(c)
    usage(m, "0.5")
    # Register readings on 1 October: 0.5 kWh per half hour, and 2 kWh in one half hour.
    base = START + dt.timedelta(hours=2)
    register, rows = Decimal("100"), []
    for n in range(12):
        ts = base + dt.timedelta(minutes=30 * n)
        rows.append(Reading(meter=m, ts=ts, energy_kwh=register, received_at=ts))
        register += Decimal("2") if n == 5 else Decimal("0.5")
    partitions.ensure_ahead(now=START, back=1)
    Reading.objects.bulk_create(rows)
    _run(org)

    item = BillingRunItem.objects.get(customer=c)
    demand = [x for x in item.lines if x["kind"] == "demand"]
    assert len(demand) == 1
    assert Decimal(demand[0]["quantity"]) == Decimal("4.00")  # 2 kWh in half an hour
    assert Decimal(demand[0]["amount"]) == Decimal("4000")


def test_invoice_shows_previous_balance_payments_and_other_charges(org, flat):
    c = customer(org.block_a, flat)
    sep_start = dt.datetime(2026, 9, 1, tzinfo=KAMPALA).astimezone(dt.UTC)
    usage(meter_of(c), "0.1", start=sep_start, end=START)
    usage(meter_of(c), "0.1")
    with acting_as(org.billing):
        sep = runs.run_start(
            site=org.block_a, month=dt.date(2026, 9, 1), now=RUN_AT, queue=False
        )
        runs.preview(sep.pk)
        runs.post(sep.pk)
    september = Invoice.objects.get(customer=c)
    with acting_as(org.billing):
        ledger.payment_post(
            customer=c, amount=Decimal("50000"), date=dt.date(2026, 11, 1),
            source=ledger.Source("bank"), reference="BANK-1",
        )
        ledger.adjustment_post(
            customer=c, amount=Decimal("2500"), date=dt.date(2026, 11, 1),
            reason="meter seal replaced", against="revenue_fees",
        )
    _post(_run(org), org)

    october = Invoice.objects.get(customer=c, period_start=OCT)
    assert october.previous_balance == september.amount_due == september.total
    assert october.payments_since == Decimal("50000")
    from billing.invoicing import other_since

    assert other_since(october) == Decimal("2500")
    assert october.amount_due == ledger.customer_balance(c)
    assert october.amount_due == (
        october.previous_balance - october.payments_since + Decimal("2500") + october.total
    )


def test_the_monthly_schedule_starts_a_preview_once_after_the_run_moment(
    org, flat, django_capture_on_commit_callbacks
):
    c = customer(org.block_a, flat)
    usage(meter_of(c), "0.1")
    BillingPolicy.objects.create(site=org.block_b, run_day=3, run_hour=10)
    early = dt.datetime(2026, 11, 1, 4, 59, tzinfo=dt.UTC)  # 07:59 in Kampala
    with django_capture_on_commit_callbacks(execute=True):
        assert runs.due_runs(now=early) == []
    on_time = dt.datetime(2026, 11, 1, 5, 0, tzinfo=dt.UTC)  # 08:00 in Kampala
    with django_capture_on_commit_callbacks(execute=True):
        started = runs.due_runs(now=on_time)
    sites = {r.site_id for r in started}
    assert org.block_a.pk in sites and org.block_b.pk not in sites  # B runs on the 3rd
    run = BillingRun.objects.get(site=org.block_a)
    assert run.period_start == OCT and run.status == BillingRun.Status.PREVIEWED
    assert run.items.get().status == READY
    assert not Invoice.objects.exists(), "the schedule previews; a person posts"
    with django_capture_on_commit_callbacks(execute=True):
        again = runs.due_runs(now=on_time + dt.timedelta(minutes=15))
    assert org.block_a.pk not in {r.site_id for r in again}
    assert BillingRun.objects.filter(site=org.block_a).count() == 1
    third = dt.datetime(2026, 11, 3, 7, 0, tzinfo=dt.UTC)
    with django_capture_on_commit_callbacks(execute=True):
        assert {r.site_id for r in runs.due_runs(now=third)} == {org.block_b.pk}


def test_the_schedule_is_declared():
    from metering.schedules import declared

    entry = next(s for s in declared() if s.name == "billing.start_due_runs")
    assert entry.task == "billing.tasks.start_due_runs"
    assert entry.every == dt.timedelta(minutes=15)


def test_a_month_not_yet_over_cannot_be_run(org, flat):
    with pytest.raises(runs.RunError):
        runs.run_start(site=org.block_a, month=NOV, now=RUN_AT, queue=False)


def test_held_account_billed_after_its_data_arrives(org, flat):
    c = customer(org.block_a, flat)
    ok = customer(org.block_a, flat)
    usage(meter_of(ok), "0.1")
    run = _post(_run(org), org)
    assert run.items.get(customer=c).status == HELD
    usage(meter_of(c), "0.1")  # the readings came in late
    run = runs.run_start(site=org.block_a, month=OCT, now=RUN_AT, queue=False)
    with acting_as(org.billing):
        runs.preview(run.pk)
        run = runs.post(run.pk)
    assert Invoice.objects.filter(customer=c).count() == 1
    assert Invoice.objects.filter(customer=ok).count() == 1
    assert sorted(Invoice.objects.values_list("number", flat=True)) == [
        "KLA-202610-00001", "KLA-202610-00002"
    ]
    assert HourlyUsage.objects.exists() and ServicePackage.objects.exists()
    assert InvoiceLine.objects.filter(invoice__customer=c).exists()
    assert JOINED < START


def test_a_preview_stopped_part_way_is_run_again_whole(org, flat):
    people = [customer(org.block_a, flat) for _ in range(3)]
    for p in people:
        usage(meter_of(p), "0.1")
    run = runs.run_start(site=org.block_a, month=OCT, now=RUN_AT, queue=False)
    run = runs.preview(run.pk, limit=1)  # the worker stops after one account
    run.refresh_from_db()
    assert run.status == BillingRun.Status.PREVIEWING and (run.done, run.total) == (1, 3)
    with pytest.raises(runs.RunError):
        runs.post(run.pk)  # a half-done preview is never posted
    run = runs.preview(run.pk)
    assert run.status == BillingRun.Status.PREVIEWED and (run.done, run.total) == (3, 3)
    assert run.items.filter(status=READY).count() == 3


def test_an_account_on_a_broken_tariff_is_held_and_the_rest_billed(org, flat):
    c = customer(org.block_a, flat)
    usage(meter_of(c), "0.1")
    other = customer(org.block_a, package("odd", tariff("odd", FLAT, org)))
    usage(meter_of(other), "0.1")
    # A terms document that no longer reads (a rate written as a JSON number).
    other.package.tariff.versions.update(terms={"energy": {"type": "flat", "rate": 5.5}})
    run = _run(org)
    assert run.status == BillingRun.Status.PREVIEWED
    held = run.items.get(customer=other)
    assert held.status == HELD and held.reason.startswith("Tariff odd:")
    assert run.items.get(customer=c).status == READY
