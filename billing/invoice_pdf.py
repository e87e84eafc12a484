"""An invoice or credit note as a PDF (A4, one page for a usual bill)."""

from __future__ import annotations

from fpdf import FPDF

from billing.invoicing import money, other_since, period_label, summary
from billing.models import Invoice

# The PDF core fonts are Latin-1: write the few other characters bills use plainly.
_PLAIN = str.maketrans({"–": "-", "—": "-", "×": "x", "÷": "/", "’": "'", "…": "..."})


def _text(value: object) -> str:
    return str(value).translate(_PLAIN).encode("latin-1", "replace").decode("latin-1")


def render(invoice: Invoice) -> bytes:
    """The PDF of ``invoice``: who, period, lines, account summary and amount due."""
    cur = invoice.currency
    customer, site = invoice.customer, invoice.site
    is_note = invoice.kind == Invoice.Kind.CREDIT_NOTE
    pdf = FPDF(format="A4")
    pdf.set_title(_text(f"{invoice.get_kind_display()} {invoice.number}"))
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 9, _text(f"{site.name} - {invoice.get_kind_display()}"), new_x="LMARGIN",
             new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    rows = [
        ("Number", invoice.number),
        ("Customer", f"{customer.first_name} {customer.last_name}"),
        ("Account", customer.account_number),
        ("Issued", f"{invoice.issued_on:%d %b %Y}"),
    ]
    if is_note:
        rows += [("Corrects", invoice.corrects.number), ("Reason", invoice.reason)]
    else:
        last = invoice.period_end
        rows += [
            ("Period", f"{period_label(invoice)} ({invoice.period_start:%d %b} to "
                       f"{last:%d %b %Y}, end excluded)"),
            ("Due date", f"{invoice.due_on:%d %b %Y}" if invoice.due_on else "-"),
            ("Consumption", f"{invoice.kwh} kWh" + (" (includes estimated usage)"
                                                     if invoice.estimated else "")),
        ]
    for label, value in rows:
        pdf.cell(35, 6, _text(label))
        pdf.multi_cell(0, 6, _text(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 10)
    widths = (88, 25, 14, 25, 28)
    for width, head in zip(widths, ("Item", "Quantity", "Unit", "Rate", f"Amount {cur}"),
                           strict=True):
        pdf.cell(width, 7, _text(head), border="B", align="L" if head == "Item" else "R")
    pdf.ln()
    pdf.set_font("Helvetica", "", 9)
    for line in invoice.lines.all():
        description = line.description + (" (estimated)" if line.estimated else "")
        cells = (
            description[:60],
            f"{line.quantity.normalize():f}" if line.quantity else "",
            line.unit,
            f"{line.rate.normalize():f}" if line.rate else "",
            money(line.amount, cur),
        )
        for width, value, align in zip(widths, cells, "LRRRR", strict=True):
            pdf.cell(width, 6, _text(value), align=align)
        pdf.ln()
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(sum(widths[:-1]), 7, "Total", border="T")
    pdf.cell(widths[-1], 7, _text(money(invoice.total, cur)), border="T", align="R")
    pdf.ln(10)
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 7, "Account summary", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    rows = summary(invoice) if not is_note else [("Balance after this credit", invoice.amount_due)]
    for label, amount in rows:
        bold = label == "Amount due"
        pdf.set_font("Helvetica", "B" if bold else "", 10)
        pdf.cell(120, 6, _text(label))
        pdf.cell(35, 6, _text(f"{cur} {money(amount, cur)}"), align="R")
        pdf.ln()
    if not is_note and other_since(invoice):
        pdf.set_font("Helvetica", "I", 8)
        pdf.multi_cell(0, 5, "Other charges: connection fees, deposits, instalments and "
                             "adjustments posted since your last bill.")
    pdf.ln(4)
    pdf.set_font("Helvetica", "", 9)
    if not is_note:
        pdf.multi_cell(
            0, 5,
            _text(f"Pay by mobile money or to our agent, quoting account "
                  f"{customer.account_number}. A negative amount is credit in hand."),
        )
    return bytes(pdf.output())
