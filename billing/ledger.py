"""The ledger: every money movement is an immutable, balanced double-entry posting.

Lines carry signed amounts (positive = debit, negative = credit); a posting's lines sum
to zero, so the whole ledger always does. An account's balance is the sum of its lines:
a customer's receivable balance is what they owe (negative = credit in hand). Amounts
are ``Decimal`` and must already be exact in the currency's minor unit (UGX has none);
:func:`round_money` rounds a computed amount first. Nothing is ever edited: a mistake is
corrected by a reversal (a new posting mirroring the original) or an adjustment.
Refunds and write-offs are requested by one person and posted when another approves.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Sum

from billing.models import LedgerAccount, LedgerPeriod, MoneyRequest, Posting, PostingLine
from customers.models import Customer
from mcoms.core import audit, clock
from mcoms.core.models import AuditEvent, Site, User
from mcoms.core.roles import Cap

# Billing officers and head-office admins hold this: the second person on money.
LEDGER_CAPABILITY = Cap.MONEY_APPROVE
MINOR_UNITS = {"UGX": 0, "KES": 2, "NGN": 2}
Kind = LedgerAccount.Kind


class LedgerError(ValidationError):
    """A posting that the ledger refuses: unbalanced, inexact, or into a closed period."""


class PeriodClosedError(LedgerError):
    """A posting dated in a month that has been closed."""


class DuplicatePostingError(LedgerError):
    """A posting whose outside reference is already in the ledger (``existing``)."""

    def __init__(self, existing: Posting):
        super().__init__(f"{existing} already carries reference {existing.reference!r}.")
        self.existing = existing


@dataclass(frozen=True)
class Line:
    """One side of a posting to be made: positive ``amount`` debits, negative credits."""

    account: LedgerAccount
    amount: Decimal


@dataclass(frozen=True)
class Source:
    """Where money comes in or goes out: ``cash`` (an agent), ``mobile_money`` or ``bank``."""

    channel: str
    agent: User | None = None
    provider: str = ""

    def as_dict(self) -> dict:
        """JSON-ready form, as stored on a refund request."""
        return {"channel": self.channel, "agent": self.agent_id, "provider": self.provider}

    @property
    def agent_id(self) -> int | None:
        return self.agent.pk if self.agent is not None else None


# --- Amounts --------------------------------------------------------------------------------


def minor_unit(currency: str) -> Decimal:
    """The smallest amount in ``currency``: 1 for UGX, 0.01 for KES and NGN."""
    try:
        return Decimal(1).scaleb(-MINOR_UNITS[currency])
    except KeyError as exc:
        raise LedgerError(f"Unknown currency {currency!r}.") from exc


def round_money(amount: Decimal, currency: str) -> Decimal:
    """``amount`` rounded half up to the currency's minor unit."""
    return _decimal(amount).quantize(minor_unit(currency), rounding=ROUND_HALF_UP)


def _decimal(amount: object) -> Decimal:
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise LedgerError(f"Money must be a finite Decimal, not {amount!r}.")
    return amount


def _exact(amount: object, currency: str) -> Decimal:
    value = _decimal(amount)
    if value != round_money(value, currency):
        raise LedgerError(f"{value} is not a whole amount of {currency} (round it first).")
    return value.quantize(minor_unit(currency))


def _positive(amount: object, currency: str) -> Decimal:
    value = _exact(amount, currency)
    if value <= 0:
        raise LedgerError(f"The amount must be positive, not {value}.")
    return value


# --- Chart of accounts -----------------------------------------------------------------------


def account(
    site: Site,
    kind: str,
    *,
    currency: str | None = None,
    customer: Customer | None = None,
    agent: User | None = None,
    provider: str = "",
) -> LedgerAccount:
    """The site's account of ``kind`` (per customer, agent or provider where it needs one)."""
    currency = currency or site.currency
    minor_unit(currency)
    party = _party(kind, customer, agent, provider)
    if customer is not None and customer.site_id != site.pk:
        raise LedgerError(f"{customer} is not on {site}.")
    key = f"{site.pk}:{currency}:{kind}:{party}"
    acct, _ = LedgerAccount.objects.get_or_create(
        key=key,
        defaults={
            "site": site,
            "currency": currency,
            "kind": kind,
            "customer": customer,
            "agent": agent,
            "provider": provider,
        },
    )
    return acct


def _party(kind: str, customer: Customer | None, agent: User | None, provider: str) -> str:
    needs = {Kind.RECEIVABLE: customer, Kind.CASH: agent, Kind.MOBILE_MONEY: provider or None}
    given = [p for p in (customer, agent, provider or None) if p is not None]
    if kind not in Kind.values:
        raise LedgerError(f"Unknown account kind {kind!r}.")
    if kind in needs:
        if needs[kind] is None or len(given) != 1:
            raise LedgerError(f"A {Kind(kind).label.lower()} account needs exactly its own party.")
        party = needs[kind]
        return provider.lower() if kind == Kind.MOBILE_MONEY else str(party.pk)
    if given:
        raise LedgerError(f"A {Kind(kind).label.lower()} account belongs to the site, not a party.")
    return ""


def receivable(customer: Customer) -> LedgerAccount:
    """The customer's receivable account in their site's currency."""
    return account(customer.site, Kind.RECEIVABLE, customer=customer)


def source_account(site: Site, source: Source) -> LedgerAccount:
    """The cash, mobile-money clearing or bank account that ``source`` names."""
    if source.channel == "cash":
        return account(site, Kind.CASH, agent=source.agent)
    if source.channel == "mobile_money":
        return account(site, Kind.MOBILE_MONEY, provider=source.provider)
    if source.channel == "bank":
        return account(site, Kind.BANK)
    raise LedgerError(f"Unknown payment channel {source.channel!r}.")


# --- Posting -------------------------------------------------------------------------------


def _month(day: dt.date) -> dt.date:
    return day.replace(day=1)


def check_open(site: Site, day: dt.date) -> None:
    """Raise :class:`PeriodClosedError` when ``day``'s month is closed on ``site``."""
    if LedgerPeriod.objects.filter(site=site, month=_month(day)).exists():
        raise PeriodClosedError(f"{day:%B %Y} is closed on {site}; post into an open period.")


@transaction.atomic
def post(
    *,
    site: Site,
    kind: str,
    date: dt.date,
    lines: list[Line],
    by: User | None = None,
    memo: str = "",
    currency: str | None = None,
    reverses: Posting | None = None,
    reference: str = "",
) -> Posting:
    """Record one balanced posting of two or more lines; refuse anything else.

    A non-empty ``reference`` (receipt, provider transaction id, bill number) is posted
    once per site: a retry raises :class:`DuplicatePostingError` naming the first posting.
    """
    currency = currency or site.currency
    if len(lines) < 2:
        raise LedgerError("A posting needs at least two lines.")
    amounts = [_exact(line.amount, currency) for line in lines]
    for line, amount in zip(lines, amounts, strict=True):
        if amount == 0:
            raise LedgerError("A posting line cannot be zero.")
        if line.account.site_id != site.pk or line.account.currency != currency:
            raise LedgerError(f"{line.account} is not a {currency} account of {site}.")
    if sum(amounts, Decimal(0)) != 0:
        raise LedgerError(f"Debits and credits differ by {sum(amounts)} {currency}.")
    # One posting at a time per site, so a close cannot slip in between check and write.
    Site.objects.select_for_update().get(pk=site.pk)
    check_open(site, date)
    existing = Posting.objects.filter(site=site, reference=reference).first() if reference else None
    if existing is not None:
        raise DuplicatePostingError(existing)
    posting = Posting(
        site=site,
        currency=currency,
        kind=kind,
        date=date,
        posted_at=clock.now(),
        posted_by=by,
        memo=memo,
        reverses=reverses,
        reference=reference,
    )
    posting.full_clean(validate_constraints=False)
    posting.save()
    PostingLine.objects.bulk_create(
        PostingLine(posting=posting, account=line.account, amount=amount)
        for line, amount in zip(lines, amounts, strict=True)
    )
    after = audit.snapshot(posting)
    after["lines"] = [[line.account.key, str(a)] for line, a in zip(lines, amounts, strict=True)]
    audit.record(AuditEvent.Action.CREATE, posting, after=after, site=site, note=f"{kind} posted")
    return posting


def balance(acct: LedgerAccount, as_of: dt.date | None = None) -> Decimal:
    """The sum of the account's lines (dated up to ``as_of`` inclusive): debit positive."""
    lines = acct.lines.all()
    if as_of is not None:
        lines = lines.filter(posting__date__lte=as_of)
    total = lines.aggregate(total=Sum("amount"))["total"] or Decimal(0)
    return total.quantize(minor_unit(acct.currency))


def trial_balance(site: Site, as_of: dt.date | None = None) -> dict[LedgerAccount, Decimal]:
    """Every account of ``site`` with its balance (up to ``as_of``); the figures sum to zero."""
    lines = PostingLine.objects.filter(account__site=site)
    if as_of is not None:
        lines = lines.filter(posting__date__lte=as_of)
    totals = dict(lines.values_list("account").annotate(total=Sum("amount")))
    accounts = LedgerAccount.objects.filter(pk__in=totals)
    return {a: totals[a.pk].quantize(minor_unit(a.currency)) for a in accounts}


def customer_balance(customer: Customer, as_of: dt.date | None = None) -> Decimal:
    """What the customer owes (negative: credit they hold)."""
    return balance(receivable(customer), as_of)


# --- Typed movements -----------------------------------------------------------------------


def invoice_post(
    *,
    customer: Customer,
    date: dt.date,
    energy: Decimal = Decimal(0),
    fixed: Decimal = Decimal(0),
    vat: Decimal = Decimal(0),
    levies: Decimal = Decimal(0),
    by: User | None = None,
    memo: str = "",
    reference: str = "",
) -> Posting:
    """Charge the customer: receivable up, revenue and taxes owed credited."""
    site, cur = customer.site, customer.site.currency
    parts = [
        (Kind.REVENUE_ENERGY, energy),
        (Kind.REVENUE_FIXED, fixed),
        (Kind.VAT_PAYABLE, vat),
        (Kind.LEVIES_PAYABLE, levies),
    ]
    credits = [(k, _exact(a, cur)) for k, a in parts]
    if any(a < 0 for _, a in credits):
        raise LedgerError("Invoice parts cannot be negative; credit with an adjustment.")
    lines = [Line(account(site, k), -a) for k, a in credits if a]
    total = sum((a for _, a in credits), Decimal(0))
    lines.insert(0, Line(receivable(customer), total))
    return post(
        site=site,
        kind=Posting.Kind.INVOICE,
        date=date,
        lines=lines,
        by=by,
        memo=memo,
        reference=reference,
    )


def payment_post(
    *,
    customer: Customer,
    amount: Decimal,
    date: dt.date,
    source: Source,
    by: User | None = None,
    memo: str = "",
    reference: str = "",
) -> Posting:
    """Money received from the customer into cash, mobile-money clearing or the bank."""
    site = customer.site
    value = _positive(amount, site.currency)
    lines = [Line(source_account(site, source), value), Line(receivable(customer), -value)]
    return post(
        site=site,
        kind=Posting.Kind.PAYMENT,
        date=date,
        lines=lines,
        by=by,
        memo=memo,
        reference=reference,
    )


def fee_post(
    *,
    site: Site,
    amount: Decimal,
    date: dt.date,
    source: Source,
    by: User | None = None,
    memo: str = "",
    reference: str = "",
) -> Posting:
    """A fee the operator pays (e.g. a provider's transaction fee) out of ``source``."""
    value = _positive(amount, site.currency)
    lines = [
        Line(account(site, Kind.FEES_EXPENSE), value),
        Line(source_account(site, source), -value),
    ]
    return post(
        site=site,
        kind=Posting.Kind.FEE,
        date=date,
        lines=lines,
        by=by,
        memo=memo,
        reference=reference,
    )


def adjustment_post(
    *,
    customer: Customer,
    amount: Decimal,
    date: dt.date,
    reason: str,
    against: str = Kind.REVENUE_ENERGY,
    by: User | None = None,
) -> Posting:
    """Correct what the customer owes by ``amount`` (negative lowers it) against ``against``."""
    site = customer.site
    value = _exact(amount, site.currency)
    if value == 0 or not reason.strip():
        raise LedgerError("An adjustment needs a non-zero amount and a reason.")
    if against in (Kind.RECEIVABLE, Kind.CASH, Kind.MOBILE_MONEY):
        raise LedgerError("Adjust against a site account (revenue, taxes, fees).")
    lines = [Line(receivable(customer), value), Line(account(site, against), -value)]
    return post(site=site, kind=Posting.Kind.ADJUSTMENT, date=date, lines=lines, by=by, memo=reason)


@transaction.atomic
def reversal_post(
    *, original: Posting, date: dt.date, reason: str, by: User | None = None
) -> Posting:
    """A new posting mirroring ``original`` line by line; a posting is reversed at most once."""
    original = Posting.objects.select_for_update().get(pk=original.pk)
    if Posting.objects.filter(reverses=original).exists():
        raise LedgerError(f"{original} has already been reversed.")
    if not reason.strip():
        raise LedgerError("Say why the posting is reversed.")
    lines = [Line(line.account, -line.amount) for line in original.lines.select_related("account")]
    return post(
        site=original.site,
        kind=Posting.Kind.REVERSAL,
        date=date,
        lines=lines,
        by=by,
        memo=f"Reverses #{original.pk}: {reason}"[:300],
        currency=original.currency,
        reverses=original,
    )


# --- Period close --------------------------------------------------------------------------


@transaction.atomic
def period_close(*, site: Site, month: dt.date, by: User) -> LedgerPeriod:
    """Close ``month`` on ``site``: postings dated in it are refused from now on."""
    _require(by)
    Site.objects.select_for_update().get(pk=site.pk)
    month = _month(month)
    if LedgerPeriod.objects.filter(site=site, month=month).exists():
        raise LedgerError(f"{month:%B %Y} is already closed on {site}.")
    period = LedgerPeriod.objects.create(
        site=site, month=month, closed_at=clock.now(), closed_by=by
    )
    audit.record(
        AuditEvent.Action.CREATE, period, after=audit.snapshot(period), site=site, note="closed"
    )
    return period


# --- Refunds and write-offs: maker-checker -------------------------------------------------


def _require(user: User) -> None:
    if not user.can(LEDGER_CAPABILITY):
        raise PermissionDenied(f"{user} may not approve or close ledger entries.")


@transaction.atomic
def refund_request(
    *, customer: Customer, amount: Decimal, source: Source, reason: str, by: User
) -> MoneyRequest:
    """Ask to pay money back to the customer; nothing is posted until someone else approves."""
    source_account(customer.site, source)  # refuse an unknown channel now, not at approval
    return _request(MoneyRequest.Kind.REFUND, customer, amount, source.as_dict(), reason, by)


@transaction.atomic
def write_off_request(
    *, customer: Customer, amount: Decimal, reason: str, by: User
) -> MoneyRequest:
    """Ask to write off part of what the customer owes; posted when someone else approves."""
    return _request(MoneyRequest.Kind.WRITE_OFF, customer, amount, {}, reason, by)


def _request(kind, customer, amount, source, reason, by) -> MoneyRequest:
    _require(by)
    if not reason.strip():
        raise LedgerError("Say why.")
    request = MoneyRequest.objects.create(
        kind=kind,
        customer=customer,
        amount=_positive(amount, customer.site.currency),
        source=source,
        reason=reason,
        requested_by=by,
        requested_at=clock.now(),
    )
    audit.record(
        AuditEvent.Action.CREATE,
        request,
        after=audit.snapshot(request),
        site=customer.site_id,
        note=f"{kind} requested",
    )
    return request


@transaction.atomic
def money_request_approve(
    *, request: MoneyRequest, by: User, date: dt.date, note: str = ""
) -> MoneyRequest:
    """Approve and post a refund or write-off; the approver must not be the requester."""
    _require(by)
    request = _pending(request)
    if request.requested_by_id == by.pk:
        raise PermissionDenied("A refund or write-off needs a second person: you requested it.")
    customer, memo = request.customer, f"{request.get_kind_display()}: {request.reason}"
    if request.kind == MoneyRequest.Kind.WRITE_OFF:
        owed = customer_balance(customer)
        if request.amount > owed:
            raise LedgerError(f"Only {owed} is owed; {request.amount} cannot be written off.")
        lines = [
            Line(account(customer.site, Kind.WRITE_OFF_EXPENSE), request.amount),
            Line(receivable(customer), -request.amount),
        ]
    else:
        src = request.source
        agent = User.objects.get(pk=src["agent"]) if src.get("agent") else None
        source = Source(channel=src["channel"], agent=agent, provider=src.get("provider", ""))
        lines = [
            Line(receivable(customer), request.amount),
            Line(source_account(customer.site, source), -request.amount),
        ]
    posting = post(
        site=customer.site, kind=request.kind, date=date, lines=lines, by=by, memo=memo[:300]
    )
    return _decide(request, MoneyRequest.Status.APPROVED, by, note, posting)


@transaction.atomic
def money_request_reject(*, request: MoneyRequest, by: User, note: str) -> MoneyRequest:
    """Turn a refund or write-off down (or withdraw one's own), saying why."""
    _require(by)
    request = _pending(request)
    if not note.strip():
        raise LedgerError("Say why the request is rejected.")
    return _decide(request, MoneyRequest.Status.REJECTED, by, note)


def _pending(request: MoneyRequest) -> MoneyRequest:
    request = MoneyRequest.objects.select_for_update().get(pk=request.pk)
    if request.status != MoneyRequest.Status.REQUESTED:
        raise LedgerError(f"This request is already {request.get_status_display().lower()}.")
    return request


def _decide(
    request: MoneyRequest, status: str, by: User, note: str, posting: Posting | None = None
) -> MoneyRequest:
    fields = ["status", "decided_by", "decided_at", "decision_note", "posting"]
    before = audit.snapshot(request, fields)
    request.posting = posting
    request.status = status
    request.decided_by = by
    request.decided_at = clock.now()
    request.decision_note = note
    request.save(update_fields=fields)
    audit.record(
        AuditEvent.Action.TRANSITION,
        request,
        before=before,
        after=audit.snapshot(request, fields),
        site=request.customer.site_id,
        note=f"{request.kind} {status}",
    )
    return request
