"""Arrears ageing: open invoice amounts by days past due, per site, with pages and CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing import ledger
from billing.collections import ageing
from customers.models import DataAccess
from tests import factories
from tests.billing.collections.conftest import bill, credit_note, pay

AS_OF = dt.date(2026, 6, 30)


def days_ago(n: int) -> dt.date:
    return AS_OF - dt.timedelta(days=n)


@pytest.fixture
def book(org):
    """Block A: Akello owes in every bucket; Bbosa paid in full; Block B: Chebet owes."""
    akello = factories.customer(org.block_a, first_name="Akello", status="active")
    bbosa = factories.customer(org.block_a, first_name="Bbosa", status="active")
    chebet = factories.customer(org.block_b, first_name="Chebet", status="active")
    issued = dt.date(2026, 1, 5)
    bill(akello, "1000", issued=issued, due=days_ago(120))  # over 90
    bill(akello, "2000", issued=issued + dt.timedelta(days=1), due=days_ago(91))  # over 90
    bill(akello, "3000", issued=issued + dt.timedelta(days=2), due=days_ago(90))  # 61-90
    bill(akello, "4000", issued=issued + dt.timedelta(days=3), due=days_ago(45))  # 31-60
    bill(akello, "5000", issued=issued + dt.timedelta(days=4), due=days_ago(0))  # 0-30 (today)
    bill(akello, "6000", issued=issued + dt.timedelta(days=5), due=AS_OF + dt.timedelta(days=1))
    # 1,500 paid: the oldest bill (1,000) is settled, 500 off the second.
    pay(akello, "1500", on=dt.date(2026, 6, 1))
    b = bill(bbosa, "7000", issued=issued, due=days_ago(40))
    pay(bbosa, "5000", on=dt.date(2026, 6, 1))
    credit_note(b, "2000", issued=dt.date(2026, 6, 2))
    bill(chebet, "800", issued=issued, due=days_ago(10))
    return akello, bbosa, chebet


def test_buckets_by_days_past_due(org, book):
    akello, bbosa, _ = book
    (report,) = ageing.site_arrears([org.block_a], AS_OF)
    assert [r.customer for r in report.customers] == [akello]  # Bbosa has nothing open
    row = report.customers[0]
    assert row.buckets.amounts == {
        "current": D("6000"),
        "d0_30": D("5000"),
        "d31_60": D("4000"),
        "d61_90": D("3000"),
        "d90_plus": D("1500"),  # 2,000 less the 500 allocated
    }
    assert row.buckets.overdue == D("13500")
    assert row.invoices == 5
    assert report.totals.total == D("19500")


def test_the_edges_of_each_bucket():
    assert [ageing.bucket_for(d) for d in (-1, 0, 30, 31, 60, 61, 90, 91, 4000)] == [
        "current",
        "d0_30",
        "d0_30",
        "d31_60",
        "d31_60",
        "d61_90",
        "d61_90",
        "d90_plus",
        "d90_plus",
    ]


def test_all_sites_at_once_keep_sites_apart(org, book):
    reports = {r.site: r for r in ageing.site_arrears([org.block_a, org.block_b], AS_OF)}
    assert reports[org.block_b].totals.amounts["d0_30"] == D("800")
    assert reports[org.block_a].totals.total == D("19500")
    assert [r.customer for r in reports[org.block_b].customers] == [book[2]]


def test_query_count_does_not_grow_with_customers(org, django_assert_max_num_queries):
    for i in range(12):
        c = factories.customer(org.block_a, status="active")
        bill(c, str(1000 + i), issued=dt.date(2026, 1, 5), due=days_ago(i * 10))
    with django_assert_max_num_queries(3):
        (report,) = ageing.site_arrears([org.block_a], AS_OF)
    assert len(report.customers) == 12
    with django_assert_max_num_queries(3):
        ageing.site_arrears([org.block_a, org.block_b, org.jinja_town], AS_OF)


def test_open_amounts_summed_over_a_join_not_a_subquery_per_invoice(org, book):
    """What was allocated is grouped by invoice in the query itself: a subquery per invoice
    ran twice a row on PostgreSQL and, where most customers owe (the weeks after the
    bills go out), its estimated cost set off JIT compilation, tripling the dashboard's
    arrears query. Rows and balance cap come from one query."""
    akello, bbosa, chebet = book
    with CaptureQueriesContext(connection) as queries:
        rows = ageing.open_invoice_rows([org.block_a.pk], [akello.pk, bbosa.pk])
    (query,) = queries.captured_queries
    sql = " ".join(query["sql"].split()).lower()
    assert sql.count("payments_allocation") == 1
    assert "left join payments_allocation al on al.invoice_id = i.id" in sql
    # Bbosa's bill is covered by two allocations (a payment and a credit note).
    assert [r["open"] for r in rows] == [D("1500"), D("3000"), D("4000"), D("5000"), D("6000")]
    assert [r["due_on"] for r in rows] == [days_ago(n) for n in (91, 90, 45, 0)] + [
        AS_OF + dt.timedelta(days=1)
    ]
    assert {r["currency"] for r in rows} == {"UGX"} and rows[0]["total"] == D("2000")


def test_sums_by_site_in_one_query(org, book, django_assert_num_queries):
    """What the dashboards ask: the same open amounts summed per site and bucket in the
    database, and how many customers have something overdue."""
    with django_assert_num_queries(1):
        found = ageing.ageing_by_site([org.block_a.pk, org.block_b.pk], AS_OF)
    assert found[org.block_a.pk].amounts == {
        "current": D("6000"),
        "d0_30": D("5000"),
        "d31_60": D("4000"),
        "d61_90": D("3000"),
        "d90_plus": D("1500"),
    }
    assert found[org.block_a.pk].owing == 1  # Akello; Bbosa paid
    assert found[org.block_b.pk].amounts["d0_30"] == D("800")
    assert found[org.block_b.pk].total == D("800") and found[org.block_b.pk].owing == 1
    assert ageing.ageing_by_site([], AS_OF) == {}


def test_sums_by_site_agree_with_the_rows_on_a_mixed_book(org):
    """Bills of every age, part payments, money not yet allocated, write-offs, credit notes
    and customers in credit: the sums in the database equal the report's rows added up."""
    import random

    from billing.ledger import Source
    from mcoms.core.audit import acting_as

    rng = random.Random(7)
    for n in range(14):
        site = org.block_a if n % 3 else org.block_b
        c = factories.customer(site, status="active")
        bills = []
        for k in range(rng.randint(1, 5)):
            issued = dt.date(2026, 1, 5) + dt.timedelta(days=30 * k)
            due = days_ago(rng.randint(-20, 150)) if rng.random() < 0.9 else None
            total = D(rng.randint(5, 90) * 100 + rng.choice([0, 1, 50]))
            bills.append(bill(c, str(total), issued=issued, due=due))
        if rng.random() < 0.6:
            pay(c, str(rng.randint(1, 120) * 100 + 1), on=dt.date(2026, 6, 1))
        if rng.random() < 0.3:
            credit_note(bills[0], "300", issued=dt.date(2026, 6, 2))
        with acting_as(label="test"):
            if rng.random() < 0.3:  # in the ledger, not yet allocated
                ledger.payment_post(
                    customer=c,
                    amount=D(rng.randint(1, 40) * 100),
                    date=dt.date(2026, 6, 3),
                    source=Source("mobile_money", provider="mtn"),
                )
            if rng.random() < 0.3:
                asked = ledger.write_off_request(
                    customer=c, amount=D("700"), reason="Hardship", by=org.billing
                )
                ledger.money_request_approve(request=asked, by=org.admin, date=dt.date(2026, 6, 4))
    sites = [org.block_a, org.block_b]
    sums = ageing.ageing_by_site([s.pk for s in sites], AS_OF)
    seen_cap = False
    for report in ageing.site_arrears(sites, AS_OF):
        assert sums[report.site.pk].amounts == report.totals.amounts
        overdue = [r for r in report.customers if r.buckets.overdue > 0]
        assert sums[report.site.pk].owing == len(overdue)
        for r in report.customers:
            balance = ledger.customer_balance(r.customer)
            assert r.buckets.total <= balance
            seen_cap |= r.buckets.total == balance and r.invoices > 0
    assert seen_cap and any(s.owing for s in sums.values())


# --- Pages ---------------------------------------------------------------------------------


def test_management_page_totals_per_site_scoped(org, book, client_for):
    page = client_for(org.billing).get(reverse("collections:arrears"), {"as_of": "2026-06-30"})
    assert page.status_code == 200
    body = page.content.decode()
    assert "Block A" in body and "19,500" in body and "13,500" in body
    assert "Block B" not in body  # the billing officer works on Block A only
    everyone = client_for(org.cluster).get(reverse("collections:arrears"), {"as_of": "2026-06-30"})
    assert "Block B" in everyone.content.decode()


def test_drill_down_lists_customers(org, book, client_for):
    url = reverse("collections:arrears_site", args=[org.block_a.pk])
    body = client_for(org.billing).get(url, {"as_of": "2026-06-30"}).content.decode()
    assert book[0].account_number in body
    assert book[1].account_number not in body
    assert reverse("collections:statement", args=[book[0].pk]) in body


def test_pages_refuse_without_capability_or_scope(org, book, client_for):
    assert client_for(org.agent).get(reverse("collections:arrears")).status_code == 403
    other = reverse("collections:arrears_site", args=[org.block_b.pk])
    assert client_for(org.billing).get(other).status_code == 403
    csv_b = client_for(org.billing).get(
        reverse("collections:arrears_csv"), {"site": org.block_b.pk}
    )
    assert csv_b.status_code == 403


def test_csv_download(org, book, client_for):
    response = client_for(org.cluster).get(
        reverse("collections:arrears_csv"), {"as_of": "2026-06-30"}
    )
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    by_account = {r["account"]: r for r in rows}
    akello = by_account[book[0].account_number]
    assert (akello["d90_plus"], akello["d61_90"], akello["overdue"], akello["total"]) == (
        "1500",
        "3000",
        "13500",
        "19500",
    )
    # The download names customers: it is in the personal-data access log, with each of them.
    (entry,) = DataAccess.objects.all()
    assert (entry.actor, entry.action, entry.what) == (org.cluster, "export", "arrears CSV")
    shown = {int(pk) for pk in entry.subjects.values_list("customer_id", flat=True)}
    assert shown == {c.pk for c in book if c.account_number in by_account}
    assert by_account[book[2].account_number]["site"] == "klb"
    assert book[1].account_number not in by_account


def test_nobody_shows_owing_more_than_their_ledger_balance(org):
    """Money not yet allocated and write-offs come off the oldest open invoices first."""
    from billing.ledger import Source
    from mcoms.core.audit import acting_as

    c = factories.customer(org.block_a, status="active")
    bill(c, "4000", issued=dt.date(2026, 1, 5), due=days_ago(100))
    bill(c, "6000", issued=dt.date(2026, 2, 5), due=days_ago(50))
    with acting_as(label="test"):  # a payment in the ledger that no allocation covers yet
        ledger.payment_post(
            customer=c,
            amount=D("3000"),
            date=dt.date(2026, 6, 1),
            source=Source("mobile_money", provider="mtn"),
        )
        asked = ledger.write_off_request(
            customer=c, amount=D("2000"), reason="Hardship", by=org.billing
        )
        ledger.money_request_approve(request=asked, by=org.admin, date=dt.date(2026, 6, 2))
    (report,) = ageing.site_arrears([org.block_a], AS_OF)
    (row,) = report.customers
    assert row.buckets.amounts["d90_plus"] == 0  # 4,000: 3,000 paid and 1,000 written off
    assert row.buckets.amounts["d31_60"] == D("5000")  # the other 1,000 written off
    assert row.buckets.total == ledger.customer_balance(c)
    (only,) = ageing.customer_open_invoices(c, AS_OF)
    assert only["open"] == D("5000") and only["bucket"] == "d31_60"
    by_site = ageing.ageing_by_site([org.block_a.pk], AS_OF)[org.block_a.pk]
    assert by_site.amounts == row.buckets.amounts and by_site.owing == 1
