"""Invoices and credit notes: numbering, issue, PDF and SMS summary. See docs/billing.md.

Invoices are issued by billing runs (:mod:`billing.runs`); they are never edited. A
correction is a **credit note** (:func:`credit_note_issue`): an invoice of kind
``credit_note`` naming the invoice it corrects, with a ledger posting that credits the
customer's receivable and debits the revenue and tax accounts the invoice credited, in
proportion. Numbers are per site and month: ``KLA-A-202611-00042`` for the bills of
November 2026 on site ``kla-a``, ``CN-KLA-A-202612-00001`` for credit notes issued in
December 2026.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import ROUND_FLOOR, Decimal

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Max, Sum

from billing import ledger
from billing.ledger import LedgerError, Line, minor_unit, receivable
from billing.models import Invoice, InvoiceLine, LedgerAccount, Posting
from billing.payments import allocation
from mcoms.core import audit, clock
from mcoms.core.models import AuditEvent, Site, User
from mcoms.core.roles import Cap
from mcoms.core.selectors import can_on_site
from notifications.models import Message
from notifications.services import TemplateMissing, send_message

log = logging.getLogger(__name__)
ZERO = Decimal(0)
NUMBER_DIGITS = 5


# --- Numbers ---------------------------------------------------------------------------------


def number_prefix(site: Site, month: dt.date, *, credit_note: bool = False) -> str:
    """``KLA-A-202611-`` (or ``CN-KLA-A-202611-``) for ``site`` and ``month``."""
    prefix = f"{site.code.upper()}-{month:%Y%m}-"
    return f"CN-{prefix}" if credit_note else prefix


def next_numbers(
    site: Site, month: dt.date, count: int, *, credit_note: bool = False
) -> list[str]:
    """The next ``count`` free numbers of the site and month (call with the site locked)."""
    prefix = number_prefix(site, month, credit_note=credit_note)
    last = Invoice.objects.filter(number__startswith=prefix).aggregate(n=Max("number"))["n"]
    first = int(last.removeprefix(prefix)) + 1 if last else 1
    return [f"{prefix}{n:0{NUMBER_DIGITS}d}" for n in range(first, first + count)]


# --- What an invoice shows ------------------------------------------------------------------


def other_since(invoice: Invoice) -> Decimal:
    """Movements since the last bill other than payments (charges, adjustments, credits).

    So that previous balance − payments since + other + this bill = amount due.
    """
    if invoice.kind != Invoice.Kind.INVOICE:
        return ZERO
    return invoice.amount_due - invoice.previous_balance + invoice.payments_since - invoice.total


def money(amount: Decimal, currency: str) -> str:
    """``24,500`` (UGX) or ``1,234.50`` (KES): the amount in the currency's minor unit."""
    value = amount.quantize(minor_unit(currency))
    return f"{value:,}"


def period_label(invoice: Invoice) -> str:
    """``Oct 2026`` for a month's bill."""
    return f"{invoice.period_start:%b %Y}" if invoice.period_start else ""


def summary(invoice: Invoice) -> list[tuple[str, Decimal]]:
    """The account summary lines: previous balance, payments, other, this bill, amount due."""
    rows = [
        ("Previous balance", invoice.previous_balance),
        ("Payments since your last bill", -invoice.payments_since),
    ]
    other = other_since(invoice)
    if other:
        rows.append(("Other charges and credits since your last bill", other))
    rows += [("This bill", invoice.total), ("Amount due", invoice.amount_due)]
    return rows


# --- SMS ----------------------------------------------------------------------------------


def bill_message_about(invoice: Invoice) -> str:
    return f"billing.invoice:{invoice.pk}"


def send_bill_sms(invoice: Invoice) -> Message | None:
    """Queue the ``bill_issued`` SMS for an invoice, once (None when already sent)."""
    about = bill_message_about(invoice)
    if Message.objects.filter(about=about, template_key="bill_issued").exists():
        return None
    customer = invoice.customer
    context = {
        "name": customer.first_name,
        "account": customer.account_number,
        "currency": invoice.currency,
        "amount": money(invoice.total, invoice.currency),
        "period": period_label(invoice),
        "due_date": f"{invoice.due_on.day} {invoice.due_on:%b}" if invoice.due_on else "",
    }
    try:
        return send_message(
            to=customer.phone,
            template="bill_issued",
            context=context,
            language=customer.language,
            about=about,
            site_id=invoice.site_id,
            timezone=invoice.site.timezone,
        )
    except TemplateMissing:
        log.warning("No bill_issued template; %s not messaged", invoice.number)
        return None


# --- Credit notes ---------------------------------------------------------------------------


def credited(invoice: Invoice) -> Decimal:
    """What credit notes have already taken off ``invoice``."""
    return invoice.credit_notes.aggregate(s=Sum("total"))["s"] or ZERO


def _shares(parts: list[tuple[LedgerAccount, Decimal]], amount: Decimal, unit: Decimal):
    """``amount`` shared over ``parts`` in proportion, exact in ``unit`` (largest remainder)."""
    whole = sum((p for _, p in parts), ZERO)
    raw = [(acct, amount * part / whole) for acct, part in parts]
    floors = [(acct, share.quantize(unit, rounding=ROUND_FLOOR), share) for acct, share in raw]
    left = amount - sum((f for _, f, _ in floors), ZERO)
    order = sorted(range(len(floors)), key=lambda i: floors[i][2] - floors[i][1], reverse=True)
    out = [[acct, f] for acct, f, _ in floors]
    i = 0
    while left > 0:
        out[order[i % len(order)]][1] += unit
        left -= unit
        i += 1
    return [(acct, share) for acct, share in out if share]


@transaction.atomic
def credit_note_issue(
    *,
    invoice: Invoice,
    reason: str,
    by: User,
    amount: Decimal | None = None,
    now: dt.datetime | None = None,
) -> Invoice:
    """Credit ``amount`` (default: all that is left) of a posted invoice, saying why.

    Posts a credit-note posting (receivable credited, the invoice's revenue, levy and
    VAT accounts debited in proportion), records the credit note with its lines,
    audits it, and sets the credit against open invoices (this one first).
    """
    if not can_on_site(by, Cap.BILLING_RUN, invoice.site_id):
        raise PermissionDenied(f"{by} may not issue credit notes on this site.")
    if not reason.strip():
        raise LedgerError("Say why the invoice is credited.")
    site = Site.objects.select_for_update().get(pk=invoice.site_id)
    invoice = Invoice.objects.select_related("customer", "posting").get(pk=invoice.pk)
    if invoice.kind != Invoice.Kind.INVOICE:
        raise LedgerError("Only an invoice can be credited, not a credit note.")
    unit = minor_unit(invoice.currency)
    left = invoice.total - credited(invoice)
    value = left if amount is None else amount
    if not isinstance(value, Decimal) or value != value.quantize(unit) or value <= 0:
        raise LedgerError(f"The credit must be a positive whole amount of {invoice.currency}.")
    if value > left:
        left_text = money(left, invoice.currency)
        raise LedgerError(f"Only {left_text} of this invoice is left to credit.")
    customer = invoice.customer
    owed = receivable(customer)
    parts = [
        (line.account, -line.amount)
        for line in invoice.posting.lines.select_related("account")
        if line.account_id != owed.pk
    ]
    shares = _shares(parts, value, unit)
    at = clock.resolve(now)
    issued = at.astimezone(site.zone).date()
    (number,) = next_numbers(site, issued, 1, credit_note=True)
    posting = ledger.post(
        site=site,
        kind=Posting.Kind.CREDIT_NOTE,
        date=issued,
        lines=[Line(owed, -value)] + [Line(acct, share) for acct, share in shares],
        by=by,
        memo=f"Credit note {number} on {invoice.number}: {reason}"[:300],
        reference=number,
    )
    vat = sum((s for a, s in shares if a.kind == LedgerAccount.Kind.VAT_PAYABLE), ZERO)
    note = Invoice.objects.create(
        number=number,
        kind=Invoice.Kind.CREDIT_NOTE,
        customer=customer,
        site=site,
        period_start=None,
        period_end=None,
        issued_on=issued,
        currency=invoice.currency,
        subtotal=value - vat,
        vat=vat,
        total=value,
        previous_balance=ledger.customer_balance(customer) + value,
        amount_due=ledger.customer_balance(customer),
        corrects=invoice,
        reason=reason[:300],
        posting=posting,
        issued_by=by,
        created_at=at,
    )
    InvoiceLine.objects.bulk_create(
        InvoiceLine(
            invoice=note,
            position=n,
            kind="credit",
            description=f"Credit: {acct.get_kind_display()} on {invoice.number}",
            amount=share,
        )
        for n, (acct, share) in enumerate(shares, start=1)
    )
    audit.record(
        AuditEvent.Action.CREATE,
        note,
        after=audit.snapshot(note),
        site=site,
        note=f"credit note on {invoice.number}: {reason}"[:300],
    )
    allocation.allocate(customer)
    return note
