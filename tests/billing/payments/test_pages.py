"""Payment pages: management lists and actions, cash, settlements, the field agent's page."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from billing import ledger
from billing.payments import services
from billing.payments.models import CashHandover, Payment, PaymentRequest, Refund, Settlement
from customers.models import DataAccess
from tests import factories
from tests.billing.payments.conftest import make_invoice

pytestmark = pytest.mark.django_db


def test_payments_list_is_scoped_and_filtered(org, customer, client_for):
    other = factories.customer(org.block_b)
    mine = services.record_cash(customer=customer, amount="1000", agent=org.agent)
    theirs = services.record_payment(customer=other, amount="2000", method="bank")
    page = client_for(org.billing).get("/payments/")
    assert page.status_code == 200
    assert mine.receipt_number.encode() in page.content
    assert theirs.receipt_number.encode() not in page.content  # billing sees Block A only
    everyone = client_for(org.admin)
    assert theirs.receipt_number.encode() in everyone.get("/payments/").content
    cash_only = everyone.get("/payments/?method=cash").content
    assert mine.receipt_number.encode() in cash_only
    assert theirs.receipt_number.encode() not in cash_only
    by_site = everyone.get(f"/payments/?site={org.block_b.pk}").content
    assert theirs.receipt_number.encode() in by_site and mine.receipt_number.encode() not in by_site
    assert client_for(org.agent).get("/payments/").status_code == 403


def test_held_request_listed_and_resolved_from_the_page(org, customer, client_for, settings):
    settings.PAYMENT_BACKEND = "console"
    req = PaymentRequest.objects.create(
        provider="mtn",
        customer=customer,
        amount=Decimal("5000"),
        currency="UGX",
        phone=customer.phone,
        channel="ussd",
        status=PaymentRequest.Status.HELD,
        detail="Held for review: the provider reports amount 500 instead of 5000",
        provider_txn_id="H1",
        created_at=customer.created_at,
        updated_at=customer.created_at,
    )
    billing = client_for(org.billing)
    page = billing.get("/payments/")
    assert b"Held for review" in page.content and b"amount 500 instead of 5000" in page.content
    billing.post(
        f"/payments/requests/{req.pk}/resolve/",
        {"action": "credit", "amount": "500", "note": "what arrived"},
    )
    req.refresh_from_db()
    assert req.status == PaymentRequest.Status.SUCCESSFUL
    assert Payment.objects.get(request=req).amount == Decimal("500")
    assert (
        client_for(org.site_manager)
        .post(f"/payments/requests/{req.pk}/resolve/", {"action": "reject", "note": "x"})
        .status_code
        == 403
    )


def test_payment_page_pdf_reverse_and_refund(org, customer, client_for):
    make_invoice(customer, "3000", dt.date(2026, 9, 1))
    payment = services.record_payment(customer=customer, amount="5000", method="bank")
    billing = client_for(org.billing)
    page = billing.get(f"/payments/{payment.pk}/")
    assert page.status_code == 200 and b"Kept as credit: 2,000" in page.content
    pdf = billing.get(f"/payments/{payment.pk}/receipt.pdf")
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    receipt = DataAccess.objects.get(what="receipt PDF")  # in the personal-data access log
    assert (receipt.actor, receipt.action) == (org.billing, "export")
    assert list(receipt.subjects.values_list("customer_id", flat=True)) == [customer.pk]
    billing.post(f"/payments/{payment.pk}/refund/", {"amount": "2000", "reason": "overpaid"})
    refund = Refund.objects.get()
    own = billing.post(
        f"/payments/refunds/{refund.pk}/decide/", {"decision": "approve"}, follow=True
    )
    assert b"needs a second person" in own.content
    refund.money_request.refresh_from_db()
    assert refund.money_request.status == "requested"  # the requester cannot approve
    client_for(org.admin).post(f"/payments/refunds/{refund.pk}/decide/", {"decision": "approve"})
    refund.money_request.refresh_from_db()
    assert refund.money_request.status == "approved"
    second = services.record_payment(customer=customer, amount="700", method="bank")
    billing.post(f"/payments/{second.pk}/reverse/", {"reason": "duplicate entry"})
    second.refresh_from_db()
    assert second.status == Payment.Status.REVERSED
    assert (
        client_for(org.site_manager)
        .post(f"/payments/{payment.pk}/reverse/", {"reason": "x"})
        .status_code
        == 403
    )
    payment.refresh_from_db()
    assert payment.status == Payment.Status.COMPLETED  # a site manager may not reverse


def test_cash_page_and_handover_form(org, customer, client_for):
    services.record_cash(customer=customer, amount="25000", agent=org.agent)
    manager = client_for(org.site_manager)
    page = manager.get("/payments/cash/")
    assert page.status_code == 200 and b"25,000" in page.content
    account = ledger.account(org.block_a, "cash", agent=org.agent)
    form = manager.get("/payments/cash/handover/")
    assert b"on hand 25000" in form.content
    response = manager.post(
        "/payments/cash/handover/",
        {"account": account.pk, "counted": "24000", "destination": "bank", "note": ""},
        follow=True,
    )
    assert b"short by 1000" in response.content
    handover = CashHandover.objects.get()
    assert handover.difference == Decimal("-1000") and handover.received_by == org.site_manager
    listed = manager.get("/payments/cash/")
    assert b"difference -1,000" in listed.content
    assert client_for(org.agent).get("/payments/cash/").status_code == 403
    bad = manager.post(
        "/payments/cash/handover/", {"account": account.pk, "counted": "abc", "destination": "bank"}
    )
    assert bad.status_code == 200 and CashHandover.objects.count() == 1


def test_settlement_import_page(org, customer, client_for):
    services.record_payment(
        customer=customer,
        amount="10000",
        method="mtn",
        provider_txn_id="S1",
        received_at=dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC),
    )
    billing = client_for(org.billing)
    upload = SimpleUploadedFile(
        "mtn-2026-11-20.csv", b"id,amount,fee,date\nS1,10000,100,2026-11-20\nS2,5,0,2026-11-20\n"
    )
    response = billing.post(
        "/payments/settlements/",
        {"site": org.block_a.pk, "provider": "mtn", "day": "2026-11-20", "file": upload},
        follow=True,
    )
    assert response.status_code == 200
    settlement = Settlement.objects.get()
    assert b"Matched (1)" in response.content and b"Missing in our records (1)" in response.content
    assert settlement.filename == "mtn-2026-11-20.csv"
    bad = billing.post(
        "/payments/settlements/",
        {
            "site": org.block_a.pk,
            "provider": "mtn",
            "day": "2026-11-21",
            "file": SimpleUploadedFile("x.csv", b"S9,lots,0,2026-11-21\n"),
        },
    )
    assert b"Row 1" in bad.content and Settlement.objects.count() == 1
    assert client_for(org.site_manager).get("/payments/settlements/").status_code == 403


def test_field_agent_takes_cash(org, customer, client_for, settings):
    settings.PAYMENT_BACKEND = "console"
    make_invoice(customer, "8000", dt.date(2026, 9, 1))
    agent = client_for(org.agent)
    found = agent.get("/payments/field/?q=Nakato")
    assert f"/payments/field/{customer.pk}/".encode() in found.content
    search = DataAccess.objects.get()  # the search is in the personal-data access log
    assert (search.actor, search.action, search.query) == (org.agent, "search", "q=Nakato")
    assert list(search.subjects.values_list("customer_id", flat=True)) == [customer.pk]
    page = agent.get(f"/payments/field/{customer.pk}/")
    assert b"8,000" in page.content and b"owed" in page.content
    response = agent.post(
        f"/payments/field/{customer.pk}/", {"kind": "cash", "amount": "5000"}, follow=True
    )
    payment = Payment.objects.get()
    assert payment.agent == org.agent and payment.method == "cash"
    assert payment.receipt_number.encode() in response.content  # the receipt page
    assert agent.get(f"/payments/{payment.pk}/receipt.pdf").status_code == 200
    home = agent.get("/payments/field/")
    assert b"5,000 UGX" in home.content  # own cash on hand
    bad = agent.post(f"/payments/field/{customer.pk}/", {"kind": "cash", "amount": "-5"})
    assert bad.status_code == 200 and Payment.objects.count() == 1
    ask = agent.post(f"/payments/field/{customer.pk}/", {"kind": "ask", "ask-amount": "1000"})
    assert ask.status_code == 302
    assert PaymentRequest.objects.get().channel == "field"
    outsider = client_for(org.outsider_agent)
    assert outsider.get(f"/payments/field/{customer.pk}/").status_code == 404


def test_field_page_fits_a_phone(org, customer, client_for):
    page = client_for(org.agent).get(f"/payments/field/{customer.pk}/").content.decode()
    assert 'name="viewport" content="width=device-width' in page
    assert "<table" not in page  # lists, not wide tables, on the agent's phone


def test_field_home_links_to_taking_a_payment(org, client_for):
    assert b"/payments/field/" in client_for(org.agent).get("/field/").content
    assert b"/payments/field/" not in client_for(org.site_manager).get("/field/").content


def test_payment_page_is_scoped_by_site(org, customer, client_for):
    other = factories.customer(org.block_b)
    theirs = services.record_payment(customer=other, amount="2000", method="bank")
    billing = client_for(org.billing)  # Block A only
    assert billing.get(f"/payments/{theirs.pk}/").status_code == 403
    assert billing.get(f"/payments/{theirs.pk}/receipt.pdf").status_code == 403
    assert client_for(org.admin).get(f"/payments/{theirs.pk}/").status_code == 200
    cash = services.record_cash(customer=customer, amount="100", agent=org.agent)
    assert client_for(org.supervisor).get(f"/payments/{cash.pk}/").status_code == 200
    assert client_for(org.outsider_agent).get(f"/payments/{cash.pk}/").status_code == 403


def test_pending_request_checked_from_the_list(org, customer, client_for, live, mtn):
    req = services.request_to_pay(customer=customer, amount="4000", provider="mtn", channel="staff")
    billing = client_for(org.billing)
    assert b"Check now" in billing.get("/payments/").content
    mtn.settle(req.reference, "SUCCESSFUL")
    response = billing.post(f"/payments/requests/{req.pk}/check/", follow=True)
    assert b"Paid" in response.content
    assert Payment.objects.get().request == req
    assert client_for(org.agent).post(f"/payments/requests/{req.pk}/check/").status_code == 403
