"""General-ledger export per site and period, trial balance, and month close through the page."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal as D

import pytest
from django.urls import reverse

from billing import ledger
from billing.models import LedgerPeriod, PostingLine
from mcoms.core import clock
from mcoms.core.audit import acting_as
from tests import factories
from tests.billing.collections.conftest import bill, pay


@pytest.fixture
def books(org):
    a1 = factories.customer(org.block_a, status="active")
    a2 = factories.customer(org.block_a, status="active")
    b1 = factories.customer(org.block_b, status="active")
    bill(a1, "10000", issued=dt.date(2026, 2, 27))  # February: outside March
    bill(a1, "12000", issued=dt.date(2026, 3, 3))
    bill(a2, "7000", issued=dt.date(2026, 3, 3))
    pay(a1, "15000", on=dt.date(2026, 3, 10))
    with acting_as(label="test"):
        ledger.invoice_post(
            customer=a2,
            date=dt.date(2026, 3, 31),
            energy=D("3000"),
            vat=D("540"),
            levies=D("60"),
            reference="X-31",
        )
    bill(a2, "4000", issued=dt.date(2026, 4, 1))  # April: outside March
    bill(b1, "9999", issued=dt.date(2026, 3, 5))  # another site
    return a1, a2, b1


def export(client, site, **params):
    response = client.get(reverse("collections:gl_export", args=[site.pk]), params)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_gl_export_lists_every_line_of_the_period_and_balances(org, books, client_for):
    rows = export(client_for(org.billing), org.block_a, month="2026-03")
    expected = PostingLine.objects.filter(
        posting__site=org.block_a, posting__date__range=(dt.date(2026, 3, 1), dt.date(2026, 3, 31))
    )
    assert len(rows) == expected.count() == 2 + 2 + 2 + 4
    assert {r["date"][:7] for r in rows} == {"2026-03"}
    debit = sum(D(r["debit"] or 0) for r in rows)
    credit = sum(D(r["credit"] or 0) for r in rows)
    assert debit == credit == D("12000") + D("7000") + D("15000") + D("3600")
    vat = [r for r in rows if r["account_kind"] == "vat_payable"]
    assert vat[0]["credit"] == "540" and vat[0]["reference"] == "X-31"
    assert vat[0]["kind"] == "invoice" and vat[0]["posting_id"].isdigit()
    assert all(r["account_key"].startswith(f"{org.block_a.pk}:UGX:") for r in rows)
    assert set(rows[0]) >= {
        "date",
        "posting_id",
        "kind",
        "reference",
        "account_key",
        "account_kind",
        "debit",
        "credit",
        "memo",
    }


def test_gl_export_any_dates_and_bad_input(org, books, client_for):
    client = client_for(org.billing)
    rows = export(client, org.block_a, start="2026-02-01", end="2026-04-30")
    assert {r["date"][:7] for r in rows} == {"2026-02", "2026-03", "2026-04"}
    bad = client.get(reverse("collections:gl_export", args=[org.block_a.pk]), {"month": "March"})
    assert bad.status_code == 302


def test_gl_export_and_close_need_the_capability_and_the_site(org, books, client_for):
    url = reverse("collections:gl_export", args=[org.block_a.pk])
    assert client_for(org.site_manager).get(url, {"month": "2026-03"}).status_code == 403
    other = reverse("collections:gl_export", args=[org.block_b.pk])
    assert client_for(org.billing).get(other, {"month": "2026-03"}).status_code == 403
    close = reverse("collections:period_close", args=[org.block_a.pk])
    assert (
        client_for(org.agent).post(close, {"month": "2026-03", "confirm": "on"}).status_code == 403
    )


def test_close_page_shows_trial_balance_and_close_refuses_later_postings(org, books, client_for):
    a1, a2, _ = books
    client = client_for(org.billing)
    page = client.get(
        reverse("collections:ledger_site", args=[org.block_a.pk]), {"month": "2026-03"}
    )
    body = page.content.decode()
    assert "Trial balance at the end of 31 Mar 2026" in body and "balanced" in body
    assert "Close March 2026" in body
    # Receivables 7,000 + 10,600 and mobile money 15,000 against revenue, VAT and levies.
    assert page.context["debits"] == page.context["credits"] == D("32600")
    assert "32,600" in body and "VAT payable" in body
    url = reverse("collections:period_close", args=[org.block_a.pk])
    unticked = client.post(url, {"month": "2026-03"}, follow=True)
    assert "Tick the box" in unticked.content.decode()
    assert not LedgerPeriod.objects.exists()
    done = client.post(url, {"month": "2026-03", "confirm": "on"}, follow=True)
    assert "March 2026 is closed" in done.content.decode()
    period = LedgerPeriod.objects.get(site=org.block_a)
    assert period.month == dt.date(2026, 3, 1) and period.closed_by == org.billing
    with acting_as(label="test"), pytest.raises(ledger.PeriodClosedError):
        ledger.invoice_post(customer=a1, date=dt.date(2026, 3, 31), energy=D("100"))
    with acting_as(label="test"):
        ledger.invoice_post(customer=a1, date=dt.date(2026, 4, 1), energy=D("100"))
        ledger.invoice_post(  # Block B's March is still open
            customer=books[2], date=dt.date(2026, 3, 31), energy=D("100")
        )
    again = client.post(url, {"month": "2026-03", "confirm": "on"}, follow=True)
    assert "already closed" in again.content.decode()


def test_a_month_not_yet_ended_cannot_be_closed(org, books, client_for):
    this_month = clock.now().date().replace(day=1)
    url = reverse("collections:period_close", args=[org.block_a.pk])
    page = client_for(org.billing).post(
        url, {"month": this_month.strftime("%Y-%m"), "confirm": "on"}, follow=True
    )
    assert "has not ended yet" in page.content.decode()
    assert not LedgerPeriod.objects.exists()
