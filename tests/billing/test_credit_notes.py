"""Credit notes: posted invoices are never edited; corrections are credit notes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied

from billing import invoicing, ledger, runs
from billing.models import Invoice, LedgerImmutableError, Posting
from billing.payments.models import Allocation
from mcoms.core.audit import acting_as
from mcoms.core.models import AuditEvent
from tests.billing.test_runs_fixtures import (
    BLOCKS,
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
def invoice(org):
    c = customer(org.block_a, package("res", tariff("res", BLOCKS, org)))
    usage(meter_of(c), "0.1")
    with acting_as(org.billing):
        run = runs.run_start(site=org.block_a, month=OCT, now=RUN_AT, queue=False)
        runs.preview(run.pk)
        runs.post(run.pk, by=org.billing, now=RUN_AT)
    return Invoice.objects.get(customer=c)


def _parts(posting: Posting) -> dict[str, Decimal]:
    return {line.account.kind: line.amount for line in posting.lines.select_related("account")}


def test_posted_invoices_cannot_be_edited(invoice):
    invoice.total = Decimal(1)
    with pytest.raises(LedgerImmutableError):
        invoice.save()
    with pytest.raises(LedgerImmutableError):
        Invoice.objects.filter(pk=invoice.pk).update(total=1)


def test_a_credit_note_reverses_part_of_an_invoice_in_proportion(org, invoice):
    before = ledger.customer_balance(invoice.customer)
    with acting_as(org.billing):
        note = invoicing.credit_note_issue(
            invoice=invoice, amount=Decimal("10000"), reason="meter read twice", by=org.billing,
            now=RUN_AT,
        )

    assert note.kind == Invoice.Kind.CREDIT_NOTE and note.corrects == invoice
    assert note.number == "CN-KLA-202611-00001"
    assert note.total == Decimal("10000") and note.reason == "meter read twice"
    assert ledger.customer_balance(invoice.customer) == before - Decimal("10000")
    assert note.amount_due == before - Decimal("10000")
    posting = note.posting
    assert posting.kind == Posting.Kind.CREDIT_NOTE and posting.reference == note.number
    original, credit = _parts(invoice.posting), _parts(posting)
    assert credit["receivable"] == Decimal("-10000")
    assert sum(credit.values()) == 0
    assert set(credit) == set(original)  # every revenue, levy and VAT account, debited
    for kind, amount in credit.items():
        if kind != "receivable":
            share = -original[kind] * Decimal("10000") / invoice.total
            assert abs(amount - share) <= 1, kind  # whole shillings, in proportion
    assert credit["vat_payable"] == note.vat
    assert sum(line.amount for line in note.lines.all()) == note.total
    # Audited, and set against the invoice it corrects.
    assert AuditEvent.objects.filter(object_type="billing.invoice", object_id=str(note.pk)).exists()
    assert Allocation.objects.get(credit_note=note).invoice == invoice
    # The invoice itself is untouched.
    invoice.refresh_from_db()
    assert invoice.total == Decimal(sum(line.amount for line in invoice.lines.all()))


def test_credit_notes_never_exceed_the_invoice(org, invoice):
    with acting_as(org.billing):
        invoicing.credit_note_issue(
            invoice=invoice, amount=Decimal("20000"), reason="estimate too high", by=org.billing
        )
        with pytest.raises(ledger.LedgerError, match="left to credit"):
            invoicing.credit_note_issue(
                invoice=invoice, amount=invoice.total, reason="again", by=org.billing
            )
        rest = invoicing.credit_note_issue(
            invoice=invoice, reason="cancel the bill", by=org.billing
        )
    assert rest.total == invoice.total - Decimal("20000")
    assert invoicing.credited(invoice) == invoice.total
    with pytest.raises(ledger.LedgerError):
        invoicing.credit_note_issue(invoice=rest, reason="a credit of a credit", by=org.billing)
    with pytest.raises(ledger.LedgerError):
        invoicing.credit_note_issue(
            invoice=invoice, amount=Decimal("0.5"), reason="x", by=org.billing
        )


def test_credit_notes_need_the_billing_run_capability_and_a_reason(org, invoice):
    with pytest.raises(PermissionDenied):
        invoicing.credit_note_issue(invoice=invoice, reason="please", by=org.supervisor)
    with pytest.raises(ledger.LedgerError):
        invoicing.credit_note_issue(invoice=invoice, reason="  ", by=org.billing)
    assert not Invoice.objects.filter(kind=Invoice.Kind.CREDIT_NOTE).exists()


def test_credit_note_form_on_the_invoice_page(org, invoice, client_for):
    client = client_for(org.billing)
    bad = client.post(
        f"/billing/invoices/{invoice.pk}/", {"amount": "lots", "reason": "x"}
    )
    assert bad.status_code == 200 and "Write the amount as a number" in bad.content.decode()
    response = client.post(
        f"/billing/invoices/{invoice.pk}/", {"amount": "5,000", "reason": "late reading"}
    )
    note = Invoice.objects.get(kind=Invoice.Kind.CREDIT_NOTE)
    assert response.status_code == 302 and response["Location"] == f"/billing/invoices/{note.pk}/"
    assert note.total == Decimal("5000") and note.issued_by == org.billing
    page = client.get(f"/billing/invoices/{invoice.pk}/").content.decode()
    assert note.number in page and "late reading" in page
    assert client_for(org.supervisor).post(
        f"/billing/invoices/{invoice.pk}/", {"amount": "1", "reason": "x"}
    ).status_code == 403


def test_credit_note_pdf(org, invoice, client_for):
    import io

    from pypdf import PdfReader

    with acting_as(org.billing):
        note = invoicing.credit_note_issue(
            invoice=invoice, amount=Decimal("7000"), reason="tariff applied twice", by=org.billing
        )
    response = client_for(org.billing).get(f"/billing/invoices/{note.pk}/pdf/")
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(response.content)).pages)
    assert "Credit note" in text and note.number in text and invoice.number in text
    assert "tariff applied twice" in text and "7,000" in text
