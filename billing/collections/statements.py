"""Customer statements: every movement on the account over a date range, with a running balance.

A statement is read straight from the ledger: the lines of the customer's receivable
account (:func:`billing.ledger.receivable`). The opening balance is the sum of the lines
dated before the first day; each bill, credit note, payment, charge, adjustment,
refund, write-off and reversal in the range follows in posting order with the balance
after it; the closing balance is what the customer owed at the end of the last day
(negative: credit in hand). Debits raise what is owed, credits lower it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Sum

from billing import ledger
from billing.collections.money import fmt, plain
from billing.models import Posting, PostingLine
from customers.models import Customer

ZERO = Decimal(0)
NEXT_LINE = {"new_x": "LMARGIN", "new_y": "NEXT"}


@dataclass(frozen=True)
class Entry:
    date: dt.date
    posting_id: int
    kind: str
    kind_label: str
    reference: str
    description: str
    debit: Decimal
    credit: Decimal
    balance: Decimal

    @property
    def signed(self) -> Decimal:
        """Debit positive, credit negative."""
        return self.debit - self.credit


@dataclass(frozen=True)
class Statement:
    customer: Customer
    start: dt.date
    end: dt.date  # inclusive
    currency: str
    opening: Decimal
    entries: list[Entry]
    closing: Decimal

    @property
    def debits(self) -> Decimal:
        return sum((e.debit for e in self.entries), ZERO)

    @property
    def credits(self) -> Decimal:
        return sum((e.credit for e in self.entries), ZERO)


class StatementError(ValueError):
    """A date range that makes no statement."""


def _describe(posting: Posting) -> tuple[str, str]:
    """(reference, description) of a posting as the customer would recognise it."""
    invoice = getattr(posting, "invoice", None)
    if invoice is not None:
        if posting.kind == Posting.Kind.CREDIT_NOTE or invoice.kind == "credit_note":
            corrects = f" (corrects {invoice.corrects.number})" if invoice.corrects_id else ""
            return invoice.number, f"Credit note{corrects}"
        period = ""
        if invoice.period_start:
            period = f" for {invoice.period_start:%b %Y}"
        due = f", due {invoice.due_on:%d %b %Y}" if invoice.due_on else ""
        return invoice.number, f"Bill{period}{due}"
    payment = getattr(posting, "payment", None)
    if payment is not None:
        return payment.receipt_number, f"Payment ({payment.get_method_display()})"
    reversed_payment = getattr(posting, "reversed_payment", None)
    if reversed_payment is not None:
        why = f": {reversed_payment.reversed_reason}" if reversed_payment.reversed_reason else ""
        return reversed_payment.receipt_number, f"Payment reversed{why}"
    instalment = getattr(posting, "instalment", None)
    if instalment is not None:
        charge = instalment.charge
        label = charge.description or charge.get_kind_display()
        count = f" {instalment.number} of {charge.instalments}" if charge.instalments > 1 else ""
        return posting.reference, f"{label}{count}"
    return posting.reference, posting.memo or posting.get_kind_display()


def statement(customer: Customer, start: dt.date, end: dt.date) -> Statement:
    """The customer's statement from ``start`` to ``end``, both days included."""
    if end < start:
        raise StatementError("The end date is before the start date.")
    if (end - start).days > 366 * 10:
        raise StatementError("Ask for ten years at most.")
    acct = ledger.receivable(customer)
    currency = acct.currency
    before = acct.lines.filter(posting__date__lt=start).aggregate(s=Sum("amount"))["s"] or ZERO
    opening = before.quantize(ledger.minor_unit(currency))
    lines = (
        PostingLine.objects.filter(account=acct, posting__date__gte=start, posting__date__lte=end)
        .select_related(
            "posting",
            "posting__invoice",
            "posting__invoice__corrects",
            "posting__payment",
            "posting__reversed_payment",
            "posting__instalment__charge",
        )
        .order_by("posting__date", "posting_id", "id")
    )
    running = opening
    entries = []
    for line in lines:
        running += line.amount
        reference, description = _describe(line.posting)
        entries.append(
            Entry(
                date=line.posting.date,
                posting_id=line.posting_id,
                kind=line.posting.kind,
                kind_label=line.posting.get_kind_display(),
                reference=reference,
                description=description,
                debit=line.amount if line.amount > 0 else ZERO,
                credit=-line.amount if line.amount < 0 else ZERO,
                balance=running,
            )
        )
    return Statement(
        customer=customer,
        start=start,
        end=end,
        currency=currency,
        opening=opening,
        entries=entries,
        closing=running,
    )


def as_csv(st: Statement) -> str:
    """The statement as CSV: a row per movement between opening and closing rows."""
    out = io.StringIO()
    w = csv.writer(out)
    cur = st.currency
    w.writerow(["date", "kind", "reference", "description", "debit", "credit", "balance"])
    w.writerow(
        [st.start.isoformat(), "opening", "", "Opening balance", "", "", plain(st.opening, cur)]
    )
    for e in st.entries:
        w.writerow(
            [
                e.date.isoformat(),
                e.kind,
                e.reference,
                e.description,
                plain(e.debit, cur) if e.debit else "",
                plain(e.credit, cur) if e.credit else "",
                plain(e.balance, cur),
            ]
        )
    w.writerow(
        [st.end.isoformat(), "closing", "", "Closing balance", "", "", plain(st.closing, cur)]
    )
    return out.getvalue()


def _latin(text: str) -> str:
    """The PDF's built-in fonts cover Latin-1; anything else is shown as '?'."""
    text = text.replace("–", "-").replace("—", "-").replace("’", "'")
    return text.encode("latin-1", "replace").decode("latin-1")


def as_pdf(st: Statement, *, operator: str = "") -> bytes:
    """The statement as a one-or-more-page A4 PDF."""
    from fpdf import FPDF

    cur = st.currency
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_title(f"Statement {st.customer.account_number}")
    pdf.set_font("Helvetica", "B", 15)
    pdf.cell(0, 8, _latin(f"{operator or st.customer.site.name}: account statement"), **NEXT_LINE)
    pdf.set_font("Helvetica", "", 10)
    c = st.customer
    for text in (
        f"{c.full_name}, account {c.account_number}",
        f"{c.site.name}; phone {c.phone}",
        f"From {st.start:%d %b %Y} to {st.end:%d %b %Y}; amounts in {cur}",
    ):
        pdf.cell(0, 6, _latin(text), **NEXT_LINE)
    pdf.ln(3)
    widths = (22, 28, 62, 26, 26, 26)
    heads = ("Date", "Reference", "Description", "Debit", "Credit", "Balance")

    def row(values, bold=False):
        pdf.set_font("Helvetica", "B" if bold else "", 9)
        for i, (w, v) in enumerate(zip(widths, values, strict=True)):
            pdf.cell(w, 6, _latin(str(v))[:40], border="B", align="R" if i >= 3 else "L")
        pdf.ln()

    row(heads, bold=True)
    row((f"{st.start:%d %b %Y}", "", "Opening balance", "", "", fmt(st.opening, cur)), bold=True)
    for e in st.entries:
        row(
            (
                f"{e.date:%d %b %Y}",
                e.reference,
                e.description,
                fmt(e.debit, cur) if e.debit else "",
                fmt(e.credit, cur) if e.credit else "",
                fmt(e.balance, cur),
            )
        )
    row(
        (
            f"{st.end:%d %b %Y}",
            "",
            "Closing balance",
            fmt(st.debits, cur),
            fmt(st.credits, cur),
            fmt(st.closing, cur),
        ),
        bold=True,
    )
    pdf.ln(4)
    pdf.set_font("Helvetica", "", 9)
    owed = "You owe" if st.closing > 0 else ("In credit" if st.closing < 0 else "Nothing owed")
    pdf.cell(0, 6, _latin(f"{owed}: {cur} {fmt(abs(st.closing), cur)}"), **NEXT_LINE)
    return bytes(pdf.output())
