"""Invoices: the page, the PDF, the SMS summary, existing credit, and the run pages."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from pypdf import PdfReader

from billing import ledger, runs
from billing.models import BillingRun, Invoice
from billing.payments.models import Allocation
from customers.models import DataAccess
from mcoms.core.audit import acting_as
from notifications import catalog
from notifications.models import Message
from tests.billing.test_runs_fixtures import (
    FLAT,
    OCT,
    RUN_AT,
    customer,
    meter_of,
    package,
    tariff,
    usage,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def flat(org):
    return package("shop", tariff("flat", FLAT, org))


def _billed(org, *people, capture=None):
    with acting_as(org.billing):
        run = runs.run_start(site=org.block_a, month=OCT, now=RUN_AT, queue=False)
        runs.preview(run.pk)
        return runs.post(run.pk, by=org.billing, now=RUN_AT)


@pytest.fixture
def invoice(org, flat):
    c = customer(org.block_a, flat, first_name="Amina")
    usage(meter_of(c), "0.1")
    _billed(org)
    return Invoice.objects.get(customer=c)


def test_invoice_page_shows_lines_summary_and_due_date(org, invoice, client_for):
    page = client_for(org.billing).get(f"/billing/invoices/{invoice.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert invoice.number in html
    assert "Monthly standing charge" in html and "VAT 18%" in html
    assert "74.400 kWh" in html
    assert "15 Nov 2026" in html  # due date
    assert "Amount due" in html and "Previous balance" in html
    assert "Issue a credit note" in html
    # A supervisor of the site may see it but not credit it.
    seen = client_for(org.supervisor).get(f"/billing/invoices/{invoice.pk}/")
    assert seen.status_code == 200 and "Issue a credit note" not in seen.content.decode()


def test_invoice_pdf_carries_the_bill(org, invoice, client_for):
    response = client_for(org.billing).get(f"/billing/invoices/{invoice.pk}/pdf/")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(response.content)).pages)
    assert invoice.number in text
    assert invoice.customer.account_number in text
    assert "Monthly standing charge" in text
    assert "74,198" in text  # total and amount due
    assert "Amount due" in text and "15 Nov 2026" in text
    (entry,) = DataAccess.objects.all()  # in the personal-data access log
    assert (entry.actor, entry.action, entry.what) == (org.billing, "export", "invoice PDF")
    assert list(entry.subjects.values_list("customer_id", flat=True)) == [invoice.customer_id]


def test_invoices_are_scoped_to_the_sites_one_may_see(org, invoice, client_for):
    assert client_for(org.outsider_agent).get(f"/billing/invoices/{invoice.pk}/").status_code in (
        403, 404,
    )
    listing = client_for(org.billing).get("/billing/invoices/", {"period": "2026-10"})
    assert invoice.number in listing.content.decode()
    other = client_for(org.billing).get("/billing/invoices/", {"period": "2026-09"})
    assert invoice.number not in other.content.decode()
    by_customer = client_for(org.billing).get(
        "/billing/invoices/", {"q": invoice.customer.account_number}
    )
    assert invoice.number in by_customer.content.decode()


def test_the_bill_sms_goes_after_commit_once(org, flat, django_capture_on_commit_callbacks):
    catalog.install_defaults()
    c = customer(org.block_a, flat, first_name="Amina")
    usage(meter_of(c), "0.1")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run = _billed(org)
    bills = Message.objects.filter(template_key="bill_issued")
    assert not bills.exists() and callbacks, "nothing is sent before the commit"
    for callback in callbacks:
        callback()
    message = Message.objects.get(template_key="bill_issued")
    assert message.to == c.phone
    assert "Amina" in message.body and "UGX 74,198" in message.body and "15 Nov" in message.body
    assert "Oct 2026" in message.body and c.account_number in message.body
    with django_capture_on_commit_callbacks(execute=True):
        runs.post(run.pk, now=RUN_AT)  # run again: no second message
    assert Message.objects.filter(template_key="bill_issued").count() == 1


def test_existing_credit_pays_the_new_invoice(org, flat):
    from billing.payments import services as payments

    c = customer(org.block_a, flat)
    usage(meter_of(c), "0.1")
    with acting_as(org.billing):
        payments.record_payment(
            customer=c, amount=Decimal("100000"), method="bank",
            received_at=dt.datetime(2026, 10, 20, tzinfo=dt.UTC), by=org.billing,
        )
    _billed(org)
    invoice = Invoice.objects.get(customer=c)
    assert invoice.payments_since == Decimal("100000")
    assert invoice.amount_due == Decimal("74198") - Decimal("100000")
    assert invoice.amount_due == ledger.customer_balance(c)
    paid = Allocation.objects.get(invoice=invoice)
    assert paid.amount == invoice.total and paid.payment is not None


def test_run_pages_start_preview_post_and_show_progress(
    org, flat, client_for, django_capture_on_commit_callbacks
):
    c = customer(org.block_a, flat)
    usage(meter_of(c), "0.1")
    held = customer(org.block_a, flat, meter=False)
    client = client_for(org.billing)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/billing/runs/", {"site": org.block_a.pk, "month": "2026-10"})
    run = BillingRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/billing/runs/{run.pk}/"
    assert run.status == BillingRun.Status.PREVIEWED and run.total == 2 and run.held == 1
    assert run.task_id, "the preview ran as a Celery task"
    page = client.get(f"/billing/runs/{run.pk}/").content.decode()
    assert "2 of 2 accounts" in page and "1 held for review" in page
    assert "No meter served this account" in page and held.account_number in page
    assert "Post 1 invoice" in page

    BillingRun.objects.filter(pk=run.pk).update(status="posting", done=0, total=1)
    panel = client.get(f"/billing/runs/{run.pk}/progress/", HTTP_HX_REQUEST="true")
    assert 'hx-trigger="every 2s"' in panel.content.decode()
    assert "0 of 1 accounts" in panel.content.decode()
    BillingRun.objects.filter(pk=run.pk).update(status="previewed", done=2, total=2)

    assert client_for(org.supervisor).post(f"/billing/runs/{run.pk}/post/").status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/billing/runs/{run.pk}/post/")
    run.refresh_from_db()
    assert run.status == BillingRun.Status.POSTED
    assert Invoice.objects.filter(customer=c).count() == 1
    done = client.get(f"/billing/runs/{run.pk}/progress/", HTTP_HX_REQUEST="true")
    assert done["HX-Refresh"] == "true" and "every 2s" not in done.content.decode()
    listing = client.get("/billing/runs/").content.decode()
    assert "Oct 2026" in listing and "Posted" in listing


def test_run_pages_refuse_what_one_may_not_do(org, flat, client_for):
    c = customer(org.block_a, flat)
    usage(meter_of(c), "0.1")
    with acting_as(org.billing):
        run = runs.run_start(site=org.block_a, month=OCT, now=RUN_AT, queue=False)
    assert client_for(org.outsider_agent).get("/billing/runs/").status_code == 403
    assert client_for(org.supervisor).post(
        "/billing/runs/", {"site": org.block_a.pk, "month": "2026-10"}
    ).status_code == 403
    # A billing officer of Block A cannot see or start Jinja's runs.
    assert client_for(org.billing).get(f"/billing/runs/{run.pk}/").status_code == 200
    response = client_for(org.billing).post(
        "/billing/runs/", {"site": org.jinja_town.pk, "month": "2026-10"}
    )
    assert response.status_code == 200 and not BillingRun.objects.filter(
        site=org.jinja_town
    ).exists()
    future = client_for(org.billing).post(
        "/billing/runs/", {"site": org.block_a.pk, "month": "2099-01"}
    )
    assert "not over yet" in future.content.decode()
