"""The accountant's side: general-ledger export, trial balance and month close.

The export lists every posting line of a site dated in a period (a month, or any
range of days), in posting order, with debit and credit in separate columns; because
every posting balances, the debit and credit columns of any export total the same.
A month is closed with :func:`billing.ledger.period_close`; from then on the ledger
refuses postings dated in it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Min
from django.db.models.functions import TruncMonth

from billing import ledger
from billing.collections.money import plain
from billing.models import LedgerAccount, LedgerPeriod, Posting, PostingLine
from mcoms.core.models import Site

HEADER = (
    "date",
    "posting_id",
    "kind",
    "reference",
    "account_key",
    "account_kind",
    "account",
    "debit",
    "credit",
    "currency",
    "memo",
)


def month_bounds(month: dt.date) -> tuple[dt.date, dt.date]:
    """First day of ``month`` and its last day (inclusive)."""
    first = month.replace(day=1)
    nxt = (first + dt.timedelta(days=32)).replace(day=1)
    return first, nxt - dt.timedelta(days=1)


def parse_month(text: str) -> dt.date:
    """``"2026-03"`` → 1 March 2026; ValueError with a plain message otherwise."""
    try:
        return dt.datetime.strptime(text.strip(), "%Y-%m").date()
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a month like 2026-03.") from exc


def gl_lines(site: Site, start: dt.date, end: dt.date):
    """Every posting line of ``site`` dated from ``start`` to ``end`` inclusive, in order."""
    return (
        PostingLine.objects.filter(
            posting__site=site, posting__date__gte=start, posting__date__lte=end
        )
        .select_related("posting", "account")
        .order_by("posting__date", "posting_id", "id")
    )


def gl_rows(site: Site, start: dt.date, end: dt.date) -> Iterator[list[str]]:
    """The export's rows, header first (streamed: large periods are not held in memory)."""
    yield list(HEADER)
    for line in gl_lines(site, start, end).iterator(chunk_size=2000):
        p, a, cur = line.posting, line.account, line.account.currency
        yield [
            p.date.isoformat(),
            str(p.pk),
            p.kind,
            p.reference,
            a.key,
            a.kind,
            str(a),
            plain(line.amount, cur) if line.amount > 0 else "",
            plain(-line.amount, cur) if line.amount < 0 else "",
            cur,
            p.memo,
        ]


class _Echo:
    def write(self, value: str) -> str:
        return value


def gl_csv_stream(site: Site, start: dt.date, end: dt.date) -> Iterator[str]:
    """CSV text chunk by chunk, for a streaming response."""
    writer = csv.writer(_Echo())
    for row in gl_rows(site, start, end):
        yield writer.writerow(row)


def gl_csv(site: Site, start: dt.date, end: dt.date) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(gl_rows(site, start, end))
    return out.getvalue()


@dataclass(frozen=True)
class MonthState:
    month: dt.date
    closed: LedgerPeriod | None
    postings: int


def months(site: Site, today: dt.date) -> list[MonthState]:
    """The site's months from its first posting (or this month) to this one, newest first."""
    first = Posting.objects.filter(site=site).aggregate(m=Min("date"))["m"] or today
    closed = {
        p.month: p for p in LedgerPeriod.objects.filter(site=site).select_related("closed_by")
    }
    counts = {
        (m.date() if isinstance(m, dt.datetime) else m): n
        for m, n in Posting.objects.filter(site=site)
        .annotate(m=TruncMonth("date"))
        .values_list("m")
        .annotate(n=Count("id"))
        .order_by()
    }
    found = []
    month = first.replace(day=1)
    while month <= today.replace(day=1):
        found.append(MonthState(month, closed.get(month), counts.get(month, 0)))
        month = (month + dt.timedelta(days=32)).replace(day=1)
    return list(reversed(found))


@dataclass(frozen=True)
class TrialRow:
    account: LedgerAccount
    debit: Decimal
    credit: Decimal


def trial_balance(site: Site, as_of: dt.date) -> tuple[list[TrialRow], Decimal, Decimal]:
    """Accounts with their balance at the end of ``as_of``; returns rows, debits, credits."""
    rows = []
    for acct, amount in ledger.trial_balance(site, as_of).items():
        if amount == 0:
            continue
        rows.append(
            TrialRow(
                acct, amount if amount > 0 else Decimal(0), -amount if amount < 0 else Decimal(0)
            )
        )
    rows.sort(key=lambda r: (r.account.kind, r.account.key))
    debits = sum((r.debit for r in rows), Decimal(0))
    credits = sum((r.credit for r in rows), Decimal(0))
    return rows, debits, credits
