"""Provider settlements: a provider's file for one site and day, matched to our payments.

The file is CSV with one transaction a row: provider transaction id, amount (what the
provider collected: the payment plus any fee the customer paid), the provider's fee
to us, and the date. A header row is optional; with one, the columns are found by
name (``id``/``transaction``, ``amount``, ``fee``, ``date``). Each row is *matched*,
*missing in our records* or *amount differs*; each of our payments by that provider
on that local day that the file lacks is *missing in the settlement*. The provider's
fee on a matched transaction is posted once (``billing.ledger.fee_post``), and the rest
moves from the provider's clearing account to the bank, once per transaction. Importing
a file for the same site, provider and day again replaces the earlier result.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction

from billing import ledger
from billing.models import LedgerAccount, Posting
from billing.payments.models import Method, Payment, Settlement, SettlementLine
from billing.payments.services import local_day, post_operator_fee, source_for, to_money
from mcoms.core import audit, clock
from mcoms.core.models import AuditEvent, Site, User
from mcoms.core.permissions import require
from mcoms.core.roles import Cap

Result = SettlementLine.Result
PROVIDERS = (Method.MTN, Method.AIRTEL, Method.PESAPAL)
MAX_ERRORS = 20


@dataclass(frozen=True)
class Row:
    number: int
    txn: str
    amount: Decimal
    fee: Decimal
    date: dt.date | None


def _date(text: str) -> dt.date | None:
    text = text.strip()
    if not text:
        return None
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"):
        try:
            return dt.datetime.strptime(text[:19], fmt).date()
        except ValueError:
            continue
    raise ValidationError(f"{text!r} is not a date (use YYYY-MM-DD)")


def _columns(header: list[str]) -> list[int] | None:
    """Column positions of id, amount, fee, date when ``header`` is a header row."""
    names = [h.strip().lower() for h in header]
    if not any(n in ("amount", "fee") for n in names):
        return None

    def find(*words: str) -> int:
        for i, name in enumerate(names):
            if any(w in name for w in words):
                return i
        raise ValidationError(f"The header has no {words[0]} column: {', '.join(header)}")

    return [
        find("id", "transaction", "txn", "reference"),
        find("amount"),
        find("fee"),
        find("date"),
    ]


def parse(text: str, currency: str) -> list[Row]:
    """The file's rows, or one ValidationError listing every bad row (nothing is kept)."""
    reader = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    if not reader:
        raise ValidationError("The file is empty.")
    order = _columns(reader[0])
    start = 1 if order is not None else 0
    order = order or [0, 1, 2, 3]
    rows, errors, seen = [], [], set()
    for number, cells in enumerate(reader[start:], start=start + 1):
        if not any(c.strip() for c in cells):
            continue
        try:
            if len(cells) <= max(order[:3]):
                raise ValidationError("needs transaction id, amount, fee and date")
            txn = cells[order[0]].strip()
            if not txn:
                raise ValidationError("no transaction id")
            if txn in seen:
                raise ValidationError(f"transaction {txn} appears twice")
            seen.add(txn)
            amount = to_money(cells[order[1]].strip(), currency)
            fee = to_money(
                cells[order[2]].strip() or "0", currency, what="The fee", allow_zero=True
            )
            day = _date(cells[order[3]]) if len(cells) > order[3] else None
        except ValidationError as exc:
            errors.append(f"Row {number}: {' '.join(exc.messages)}")
            continue
        rows.append(Row(number, txn, amount, fee, day))
    if errors:
        more = f" (and {len(errors) - MAX_ERRORS} more)" if len(errors) > MAX_ERRORS else ""
        raise ValidationError([*errors[:MAX_ERRORS], f"Nothing was imported{more}."])
    if not rows:
        raise ValidationError("The file has no transactions.")
    return rows


def _post_settled(site: Site, provider: str, row: Row, by: User) -> None:
    """The provider paid a matched transaction out to the bank: clearing to bank, once."""
    net = row.amount - row.fee
    if net <= 0:
        return
    with contextlib.suppress(ledger.DuplicatePostingError):  # settled by an earlier import
        ledger.post(
            site=site,
            kind=Posting.Kind.ADJUSTMENT,
            date=local_day(site),
            lines=[
                ledger.Line(ledger.account(site, LedgerAccount.Kind.BANK), net),
                ledger.Line(ledger.source_account(site, source_for(provider)), -net),
            ],
            by=by,
            memo=f"{Method(provider).label} settlement of {row.txn}",
            reference=f"{provider}:{row.txn}:settled",
        )


def _day_bounds(site: Site, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(), tzinfo=site.zone)
    return start, start + dt.timedelta(days=1)


@transaction.atomic
def import_settlement(
    *, site: Site, provider: str, day: dt.date, text: str, by: User, filename: str = ""
) -> Settlement:
    """Import a settlement file and reconcile it against our payments (see module doc)."""
    require(by, Cap.LEDGER_CLOSE, site.pk)
    if provider not in PROVIDERS:
        raise ValidationError(f"Settlements come from MTN, Airtel or Pesapal, not {provider!r}.")
    rows = parse(text, site.currency)
    now = clock.now()
    settlement, created = Settlement.objects.select_for_update().get_or_create(
        site=site,
        provider=provider,
        day=day,
        defaults={"imported_at": now, "imported_by": by, "filename": filename[:200]},
    )
    before = None if created else audit.snapshot(settlement)
    if not created:
        settlement.lines.all().delete()
        settlement.imported_at, settlement.imported_by = now, by
        settlement.filename = filename[:200]
    ours = {
        p.provider_txn_id: p
        for p in Payment.objects.filter(
            site=site, method=provider, provider_txn_id__in=[r.txn for r in rows]
        )
    }
    lines = []
    for row in rows:
        payment = ours.get(row.txn)
        if payment is None:
            result = Result.MISSING_OURS
        elif (
            payment.amount + payment.fee != row.amount or payment.status != Payment.Status.COMPLETED
        ):
            result = Result.AMOUNT_DIFFERS
        else:
            result = Result.MATCHED
            if row.fee:
                post_operator_fee(
                    site=site,
                    method=provider,
                    txn=row.txn,
                    amount=row.fee,
                    date=local_day(site),
                    by=by,
                )
            _post_settled(site, provider, row, by)
        lines.append(
            SettlementLine(
                settlement=settlement,
                provider_txn_id=row.txn,
                amount=row.amount,
                fee=row.fee,
                date=row.date,
                payment=payment,
                result=result,
                row=row.number,
            )
        )
    start, end = _day_bounds(site, day)
    in_file = {r.txn for r in rows}
    for payment in Payment.objects.filter(
        site=site,
        method=provider,
        status=Payment.Status.COMPLETED,
        received_at__gte=start,
        received_at__lt=end,
    ).exclude(provider_txn_id__in=in_file):
        lines.append(
            SettlementLine(
                settlement=settlement,
                provider_txn_id=payment.provider_txn_id,
                amount=None,
                payment=payment,
                result=Result.MISSING_SETTLEMENT,
            )
        )
    settlement.total = sum((r.amount for r in rows), Decimal(0))
    settlement.fees = sum((r.fee for r in rows), Decimal(0))
    settlement.save()
    SettlementLine.objects.bulk_create(lines)
    audit.record(
        AuditEvent.Action.CREATE if created else AuditEvent.Action.UPDATE,
        settlement,
        before=before,
        after=audit.snapshot(settlement),
        site=site,
        note=f"settlement imported: {summary(settlement)}",
    )
    return settlement


def summary(settlement: Settlement) -> dict[str, int]:
    """How many lines of each result."""
    counts = {r: 0 for r in Result.values}
    for result in settlement.lines.values_list("result", flat=True):
        counts[result] += 1
    return counts
