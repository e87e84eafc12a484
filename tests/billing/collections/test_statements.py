"""Statements: opening balance, every movement in order with a running balance, closing
balance; as a page, CSV and PDF, for staff and for the customer."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal as D

import pytest
from django.urls import reverse
from pypdf import PdfReader

from billing import ledger
from billing.collections.statements import StatementError, statement
from customers.models import DataAccess
from mcoms.core.audit import acting_as
from tests import factories
from tests.billing.collections.conftest import bill, credit_note, pay


@pytest.fixture
def history(org):
    """A year of Block A money for one customer (UGX):

    Jan bill 10,000 · Feb payment 10,000 · Mar bill 12,000 · Mar credit note 2,000 ·
    Apr payment 4,000 · Apr adjustment +1,500 · May bill 9,000 · Jun payment 20,000.
    """
    c = factories.customer(org.block_a, first_name="Wanjiru", status="active")
    jan = bill(c, "10000", issued=dt.date(2026, 1, 3))
    pay(c, "10000", on=dt.date(2026, 2, 1))
    mar = bill(c, "12000", issued=dt.date(2026, 3, 3))
    credit_note(mar, "2000", issued=dt.date(2026, 3, 20))
    pay(c, "4000", on=dt.date(2026, 4, 2))
    with acting_as(label="test"):
        ledger.adjustment_post(
            customer=c, amount=D("1500"), date=dt.date(2026, 4, 10), reason="Meter seal fee"
        )
    may = bill(c, "9000", issued=dt.date(2026, 5, 3))
    pay(c, "20000", on=dt.date(2026, 6, 1))
    return c, jan, mar, may


def test_opening_running_and_closing_balance(org, history):
    c, _jan, mar, may = history
    st = statement(c, dt.date(2026, 3, 1), dt.date(2026, 5, 31))
    assert st.opening == D("0")  # January billed and February paid
    assert [(e.kind, e.debit, e.credit, e.balance) for e in st.entries] == [
        ("invoice", D("12000"), 0, D("12000")),
        ("credit_note", 0, D("2000"), D("10000")),
        ("payment", 0, D("4000"), D("6000")),
        ("adjustment", D("1500"), 0, D("7500")),
        ("invoice", D("9000"), 0, D("16500")),
    ]
    assert st.closing == D("16500") == ledger.customer_balance(c, dt.date(2026, 5, 31))
    assert st.entries[0].reference == mar.number and st.entries[4].reference == may.number
    assert st.entries[1].description == f"Credit note (corrects {mar.number})"
    assert st.entries[3].description == "Meter seal fee"


def test_a_range_starting_mid_history_opens_with_what_was_owed(org, history):
    c, *_ = history
    st = statement(c, dt.date(2026, 4, 5), dt.date(2026, 6, 30))
    assert st.opening == D("6000")
    assert st.closing == D("-3500")  # paid ahead: in credit
    assert st.debits - st.credits == st.closing - st.opening
    with pytest.raises(StatementError):
        statement(c, dt.date(2026, 6, 1), dt.date(2026, 5, 1))


def test_csv_and_pdf(org, history, client_for):
    c, _jan, mar, _may = history
    url = reverse("collections:statement", args=[c.pk])
    params = {"start": "2026-03-01", "end": "2026-05-31"}
    staff = client_for(org.billing)
    rows = list(
        csv.reader(io.StringIO(staff.get(url, {**params, "format": "csv"}).content.decode()))
    )
    assert rows[1][1:] == ["opening", "", "Opening balance", "", "", "0"]
    assert rows[2][:2] == ["2026-03-03", "invoice"] and rows[2][4:] == ["12000", "", "12000"]
    assert rows[-1][1] == "closing" and rows[-1][-1] == "16500"
    pdf = staff.get(url, {**params, "format": "pdf"})
    assert pdf["Content-Type"] == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert c.account_number in text and mar.number in text
    assert "Opening balance" in text and "16,500" in text and "You owe: UGX 16,500" in text
    # Both downloads are in the personal-data access log, as exports of this customer.
    logged = DataAccess.objects.order_by("pk")
    assert [(a.actor, a.action) for a in logged] == [(org.billing, "export")] * 2
    assert {s.customer_id for a in logged for s in a.subjects.all()} == {c.pk}


def test_staff_page_is_scoped(org, history, client_for):
    c, *_ = history
    url = reverse("collections:statement", args=[c.pk])
    page = client_for(org.billing).get(url, {"start": "2026-01-01", "end": "2026-06-30"})
    assert page.status_code == 200 and "Closing balance" in page.content.decode()
    assert client_for(org.outsider_agent).get(url).status_code in (403, 404)
    jinja_manager = factories.customer(org.jinja_town)
    other = reverse("collections:statement", args=[jinja_manager.pk])
    assert client_for(org.billing).get(other).status_code == 404


def test_bad_dates_are_explained(org, history, client_for):
    c, *_ = history
    url = reverse("collections:statement", args=[c.pk])
    page = client_for(org.billing).get(url, {"start": "2026-06-01", "end": "2026-05-01"})
    assert page.status_code == 200
    assert "The end date is before the start date." in page.content.decode()


def test_charge_instalments_and_deposits_appear(org):
    from billing import charges

    c = factories.customer(org.block_a, status="active")
    with acting_as(org.billing):
        fee = charges.charge_create(
            customer=c,
            kind="connection_fee",
            total=D("60000"),
            instalments=3,
            first_due=dt.date(2026, 4, 15),
            by=org.billing,
            description="Connection fee",
        )
        deposit = charges.charge_create(
            customer=c,
            kind="deposit",
            total=D("20000"),
            instalments=1,
            first_due=dt.date(2026, 4, 1),
            by=org.billing,
        )
        for inst in [*fee.schedule.all()[:2], *deposit.schedule.all()]:
            charges.post_instalment(inst, today=dt.date(2026, 6, 1))
    st = statement(c, dt.date(2026, 4, 1), dt.date(2026, 5, 31))
    assert [(e.date, e.kind, e.description, e.debit, e.balance) for e in st.entries] == [
        (dt.date(2026, 4, 1), "deposit", "Deposit", D("20000"), D("20000")),
        (dt.date(2026, 4, 15), "charge", "Connection fee 1 of 3", D("20000"), D("40000")),
        (dt.date(2026, 5, 15), "charge", "Connection fee 2 of 3", D("20000"), D("60000")),
    ]
    assert st.entries[1].reference == f"charge:{fee.pk}:1"


def test_a_reversed_payment_shows_as_such(org):
    from billing.payments import services as payment_services

    c = factories.customer(org.block_a, status="active")
    bill(c, "8000", issued=dt.date(2026, 5, 3))
    receipt = pay(c, "8000", on=dt.date(2026, 5, 10))
    with acting_as(org.billing):
        payment_services.reverse_payment(payment=receipt, reason="Sent twice", by=org.billing)
    st = statement(c, dt.date(2026, 5, 1), dt.date(2026, 12, 31))
    last = st.entries[-1]
    assert (last.kind, last.reference, last.debit) == (
        "reversal",
        receipt.receipt_number,
        D("8000"),
    )
    assert last.description == "Payment reversed: Sent twice"
    assert st.closing == D("8000")
