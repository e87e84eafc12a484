"""The customer portal's money pages: a signed-in customer sees only their own money."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal as D

import pytest
from django.urls import reverse
from pypdf import PdfReader

from tests import factories
from tests.billing.collections.conftest import bill, pay


@pytest.fixture
def mine(org, me):
    jan = bill(me, "10000", issued=dt.date(2026, 1, 3), due=dt.date(2026, 1, 17))
    feb = bill(me, "12500", issued=dt.date(2026, 2, 3), due=dt.date(2026, 2, 17))
    receipt = pay(me, "15000", on=dt.date(2026, 2, 10))
    return jan, feb, receipt


@pytest.fixture
def theirs(org):
    other = factories.customer(org.block_a, first_name="Neighbour", status="active")
    invoice = bill(other, "99000", issued=dt.date(2026, 1, 3))
    receipt = pay(other, "1234", on=dt.date(2026, 1, 20))
    return other, invoice, receipt


def test_portal_home_links_to_the_money_pages(org, me, client_for):
    body = client_for(org.customer).get(reverse("customers:portal")).content.decode()
    for name in ("my_bills", "my_payments", "my_statement"):
        assert reverse(f"collections:{name}") in body


def test_my_bills_and_a_bill_with_its_lines(org, mine, theirs, client_for):
    jan, feb, receipt = mine
    client = client_for(org.customer)
    body = client.get(reverse("collections:my_bills")).content.decode()
    assert jan.number in body and feb.number in body
    assert theirs[1].number not in body
    assert "7,500 to pay" in body  # 12,500 less the 5,000 left after January
    assert "You owe" in body and "7,500" in body
    page = client.get(reverse("collections:my_bill", args=[feb.pk])).content.decode()
    assert "Energy" in page and "12,500" in page and "Still to pay on this bill" in page
    assert receipt.receipt_number in page


def test_another_customers_invoice_or_receipt_is_not_found(org, mine, theirs, client_for):
    _other, invoice, receipt = theirs
    client = client_for(org.customer)
    assert client.get(reverse("collections:my_bill", args=[invoice.pk])).status_code == 404
    assert client.get(reverse("collections:my_bill_pdf", args=[invoice.pk])).status_code == 404
    assert client.get(reverse("collections:my_receipt", args=[receipt.pk])).status_code == 404
    assert client.get(reverse("collections:my_receipt_pdf", args=[receipt.pk])).status_code == 404


def test_staff_without_an_account_get_no_portal(org, client_for):
    assert client_for(org.billing).get(reverse("collections:my_bills")).status_code == 403


def test_payments_and_receipt(org, mine, theirs, client_for):
    jan, feb, receipt = mine
    client = client_for(org.customer)
    body = client.get(reverse("collections:my_payments")).content.decode()
    assert receipt.receipt_number in body and "15,000" in body
    assert theirs[2].receipt_number not in body
    page = client.get(reverse("collections:my_receipt", args=[receipt.pk])).content.decode()
    assert jan.number in page and feb.number in page and "10,000" in page and "5,000" in page


def test_my_statement_for_a_date_range(org, mine, client_for):
    client = client_for(org.customer)
    params = {"start": "2026-02-01", "end": "2026-02-28"}
    page = client.get(reverse("collections:my_statement"), params)
    st = page.context["st"]
    assert (st.opening, st.closing) == (D("10000"), D("7500"))
    assert [e.kind for e in st.entries] == ["invoice", "payment"]
    rows = list(
        csv.reader(
            io.StringIO(
                client.get(
                    reverse("collections:my_statement"), {**params, "format": "csv"}
                ).content.decode()
            )
        )
    )
    assert rows[-1][-1] == "7500"
    pdf = client.get(reverse("collections:my_statement"), {**params, "format": "pdf"})
    text = PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert "Closing balance" in text and "7,500" in text


def test_pages_fit_a_phone(org, mine, client_for):
    """No fixed widths: tables scroll inside their wrapper; lists wrap."""
    client = client_for(org.customer)
    for name in ("my_bills", "my_payments", "my_statement"):
        body = client.get(reverse(f"collections:{name}")).content.decode()
        assert 'name="viewport"' in body
        assert "width:" not in body.replace("max-width", "")
        assert "<table" not in body or 'class="table-wrap"' in body


def test_my_bill_and_receipt_as_pdf(org, mine, client_for):
    jan, _feb, receipt = mine
    client = client_for(org.customer)
    bill_pdf = client.get(reverse("collections:my_bill_pdf", args=[jan.pk]))
    assert bill_pdf["Content-Type"] == "application/pdf"
    assert jan.number in PdfReader(io.BytesIO(bill_pdf.content)).pages[0].extract_text()
    receipt_pdf = client.get(reverse("collections:my_receipt_pdf", args=[receipt.pk]))
    text = PdfReader(io.BytesIO(receipt_pdf.content)).pages[0].extract_text()
    assert receipt.receipt_number in text


def test_pay_by_mobile_money_asks_the_provider_for_my_account(org, mine, live, mtn, client_for):
    from billing.payments.models import PaymentRequest

    client = client_for(org.customer)
    form = client.get(reverse("collections:my_pay"))
    assert form.status_code == 200
    assert form.context["form"].initial["amount"] == D("7500")  # what is owed
    bad = client.post(reverse("collections:my_pay"), {"amount": "", "phone": "0772123456"})
    assert bad.status_code == 200 and not PaymentRequest.objects.exists()
    wrong = client.post(reverse("collections:my_pay"), {"amount": "7500", "phone": "12"})
    assert "is not a valid UG number" in wrong.content.decode()
    assert not PaymentRequest.objects.exists()
    done = client.post(
        reverse("collections:my_pay"), {"amount": "7500", "phone": "0772123456"}, follow=True
    )
    body = done.content.decode()
    assert "Approve it on your phone" in body and "Waiting for your approval" in body
    (req,) = PaymentRequest.objects.all()
    assert (req.customer, req.amount, req.channel, req.requested_by, req.status) == (
        mine[0].customer,
        D("7500"),
        "portal",
        org.customer,
        "pending",
    )
    (asked,) = mtn.payments.values()  # the provider was really asked, by HTTP
    assert asked["payer"]["partyId"] == "256772123456" and asked["amount"] == "7500"


def test_a_refused_request_is_explained(org, mine, live, mtn, client_for):
    mtn.subscription_key = "changed"  # the provider now refuses our calls
    page = client_for(org.customer).post(
        reverse("collections:my_pay"), {"amount": "7500", "phone": "0772123456"}
    )
    assert page.status_code == 200
    assert "The payment could not be requested" in page.content.decode()
