"""Receipts: the SMS and the PDF show amount, fee, method, number, allocation, new balance."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from pypdf import PdfReader

from billing.payments import receipts, services
from notifications.models import Message
from tests.billing.payments.conftest import make_invoice

pytestmark = pytest.mark.django_db


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def test_pdf_receipt_shows_everything(org, customer):
    old = make_invoice(customer, "12000", dt.date(2026, 8, 1))
    new = make_invoice(customer, "9000", dt.date(2026, 9, 1))
    payment = services.record_payment(
        customer=customer, amount="15000", fee="450", method="mtn", provider_txn_id="MM77"
    )
    text = _text(receipts.pdf(payment))
    assert f"Receipt {payment.receipt_number}" in text
    assert "MTN Mobile Money" in text and "MM77" in text
    assert "UGX 15,000" in text and "Fee paid" in text and "UGX 450" in text
    assert "UGX 15,450" in text  # total paid
    assert f"Invoice {old.number}" in text and "UGX 12,000" in text
    assert f"Invoice {new.number}" in text and "UGX 3,000" in text
    assert "New balance owed: UGX 6,000" in text
    assert "Amina Nakato" in text


def test_pdf_shows_credit_and_the_balance_at_the_time(org, customer):
    first = services.record_cash(customer=customer, amount="5000", agent=org.agent)
    services.record_cash(customer=customer, amount="1000", agent=org.agent)
    text = _text(receipts.pdf(first))
    assert "Kept as credit on the account: UGX 5,000" in text
    assert "New balance (credit): UGX -5,000" in text  # not the later -6,000
    assert "Cash (field agent)" in text and "Received by" in text


def test_sms_receipt_after_commit(org, customer, templates, django_capture_on_commit_callbacks):
    make_invoice(customer, "2500", dt.date(2026, 9, 1))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        payment = services.record_cash(customer=customer, amount="2000", agent=org.agent)
    assert not Message.objects.exists()  # nothing before the commit
    for callback in callbacks:
        callback()
    (sms,) = Message.objects.filter(template_key="payment_received", to=customer.phone)
    assert "UGX 2,000" in sms.body and payment.receipt_number in sms.body
    assert "New balance UGX 500" in sms.body


def test_money_formatting():
    assert receipts.format_money(Decimal("1234567"), "UGX") == "1,234,567"
    assert receipts.format_money(Decimal("1234.5"), "KES") == "1,234.50"
