"""Charges besides energy: connection fees, deposits and other amounts, in monthly instalments.

- :func:`charge_create` records a charge and its instalment schedule. The total is split
  exactly in the currency's minor unit: every instalment but the last is the total
  divided by their number, rounded down; the last takes the remainder, so the
  instalments always add up to the total.
- :func:`post_due` (run daily by ``billing.charge_tasks.post_due_instalments``) posts each
  instalment to the ledger once its due date has come in the site's time: a fee or
  other charge debits the customer's receivable and credits fee revenue; a deposit
  credits deposits held. Each posting carries the reference ``charge:<id>:<number>``,
  so an instalment is never posted twice, however often the task runs.
- :func:`charge_cancel` stops the instalments not posted yet; what was posted stays.
- :func:`deposit_return` settles a closed account's deposit: what the customer still owes
  is set against it first, and what is left becomes credit that a refund request
  (approved by a second person) pays out.

Every change is audited; see ``docs/charges.md``.
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Sum

from billing import ledger
from billing.ledger import Line, Source
from billing.models import Charge, ChargeInstalment, LedgerAccount, MoneyRequest, Posting
from customers.models import Customer
from mcoms.core import audit, clock
from mcoms.core.models import AuditEvent, User
from mcoms.core.roles import Cap
from mcoms.core.selectors import can_on_site

log = logging.getLogger(__name__)

CHARGE_CAPABILITY = Cap.BILLING_RUN
MAX_INSTALMENTS = 60
Kind = LedgerAccount.Kind


# --- The schedule ---------------------------------------------------------------------------


def split_total(total: Decimal, count: int, currency: str) -> list[Decimal]:
    """``total`` in ``count`` instalments, exact in the currency's minor unit.

    Each but the last is ``total / count`` rounded down; the last takes the rest. Raises
    ``ValueError`` when the total is not exact, not positive, or too small to split.
    """
    unit = ledger.minor_unit(currency)
    if not isinstance(total, Decimal) or not total.is_finite() or total <= 0:
        raise ValueError("The total must be a positive amount.")
    if total != total.quantize(unit):
        raise ValueError(f"{total} is not a whole amount of {currency}.")
    if count < 1:
        raise ValueError("There must be at least one instalment.")
    each = (total / count).quantize(unit, rounding=ROUND_DOWN)
    if each <= 0:
        raise ValueError(f"{total} {currency} cannot be split into {count} instalments.")
    total = total.quantize(unit)
    return [each] * (count - 1) + [total - each * (count - 1)]


def add_months(day: dt.date, months: int, anchor_day: int | None = None) -> dt.date:
    """``day`` moved ``months`` on, on the anchor day or the month's last day if shorter."""
    anchor = anchor_day or day.day
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(anchor, last))


def due_dates(first_due: dt.date, count: int) -> list[dt.date]:
    """Monthly due dates from ``first_due`` (31 January → 28/29 February → 31 March)."""
    return [add_months(first_due, n, first_due.day) for n in range(count)]


# --- Writes ---------------------------------------------------------------------------------


def _require(user: User, customer: Customer) -> None:
    if not can_on_site(user, CHARGE_CAPABILITY, customer.site_id):
        raise PermissionDenied(f"{user} may not add or cancel charges on {customer.site}.")


@transaction.atomic
def charge_create(
    *,
    customer: Customer,
    kind: str,
    total: Decimal,
    instalments: int,
    first_due: dt.date,
    by: User,
    description: str = "",
) -> Charge:
    """Record a charge and its monthly instalments; nothing is posted before a due date."""
    _require(by, customer)
    errors: dict[str, str] = {}
    if kind not in Charge.Kind.values:
        errors["kind"] = f"Unknown kind of charge {kind!r}."
    if not 1 <= instalments <= MAX_INSTALMENTS:
        errors["instalments"] = f"Choose between 1 and {MAX_INSTALMENTS} monthly instalments."
    currency = customer.site.currency
    amounts: list[Decimal] = []
    if not errors:
        try:
            amounts = split_total(total, instalments, currency)
        except ValueError as exc:
            errors["total"] = str(exc)
    if errors:
        raise ValidationError(errors)
    description = description.strip() or Charge.Kind(kind).label
    charge = Charge(
        customer=customer,
        kind=kind,
        description=description[:200],
        total=total,
        instalments=instalments,
        first_due=first_due,
        created_by=by,
        created_at=clock.now(),
    )
    charge.full_clean()
    charge.save()
    schedule = list(zip(due_dates(first_due, instalments), amounts, strict=True))
    ChargeInstalment.objects.bulk_create(
        ChargeInstalment(charge=charge, number=n, due_on=day, amount=amount)
        for n, (day, amount) in enumerate(schedule, 1)
    )
    after = audit.snapshot(charge)
    after["schedule"] = [[str(day), str(amount)] for day, amount in schedule]
    audit.record(
        AuditEvent.Action.CREATE, charge, after=after, site=customer.site_id, note="charge added"
    )
    return charge


@transaction.atomic
def charge_cancel(*, charge: Charge, reason: str, by: User) -> Charge:
    """Stop the instalments not posted yet, saying why; posted ones stay in the ledger."""
    charge = Charge.objects.select_for_update().select_related("customer").get(pk=charge.pk)
    _require(by, charge.customer)
    if not reason.strip():
        raise ValidationError({"reason": "Say why the charge is cancelled."})
    if charge.status != Charge.Status.ACTIVE:
        raise ValidationError(f"This charge is already {charge.get_status_display().lower()}.")
    before = audit.snapshot(charge, ["status"])
    charge.status = Charge.Status.CANCELLED
    charge.save(update_fields=["status"])
    stopped = charge.schedule.filter(posting__isnull=True).count()
    audit.record(
        AuditEvent.Action.TRANSITION,
        charge,
        before=before,
        after={"status": charge.status, "instalments_stopped": stopped},
        site=charge.customer.site_id,
        note=f"charge cancelled: {reason}",
    )
    return charge


def instalment_reference(instalment: ChargeInstalment) -> str:
    """The ledger reference of an instalment's posting: one posting per instalment."""
    return f"charge:{instalment.charge_id}:{instalment.number}"


def _lines(charge: Charge, amount: Decimal) -> tuple[str, list[Line]]:
    customer = charge.customer
    if charge.kind == Charge.Kind.DEPOSIT:
        credit, kind = Kind.DEPOSITS_HELD, Posting.Kind.DEPOSIT
    else:
        credit, kind = Kind.REVENUE_FEES, Posting.Kind.CHARGE
    return kind, [
        Line(ledger.receivable(customer), amount),
        Line(ledger.account(customer.site, credit), -amount),
    ]


@transaction.atomic
def post_instalment(instalment: ChargeInstalment, *, today: dt.date) -> Posting | None:
    """Post one due instalment of an active charge; None when there is nothing to do."""
    inst = (
        ChargeInstalment.objects.select_for_update()
        .select_related("charge__customer__site")
        .get(pk=instalment.pk)
    )
    charge = inst.charge
    if inst.posting_id is not None or charge.status != Charge.Status.ACTIVE or inst.due_on > today:
        return None
    kind, lines = _lines(charge, inst.amount)
    site = charge.customer.site
    date = inst.due_on
    try:
        ledger.check_open(site, date)
    except ledger.PeriodClosedError:
        date = today  # the due month is closed: the instalment lands in the open one
    memo = f"{charge.description} – instalment {inst.number} of {charge.instalments}"
    try:
        posting = ledger.post(
            site=site,
            kind=kind,
            date=date,
            lines=lines,
            memo=memo[:300],
            reference=instalment_reference(inst),
        )
    except ledger.DuplicatePostingError as exc:  # posted before, link lost: link it again
        posting = exc.existing
    before = audit.snapshot(inst, ["posting"])
    inst.posting = posting
    inst.save(update_fields=["posting"])
    audit.record_changes(inst, before, site=site, note="instalment posted")
    if not charge.schedule.filter(posting__isnull=True).exists():
        before = audit.snapshot(charge, ["status"])
        charge.status = Charge.Status.COMPLETED
        charge.save(update_fields=["status"])
        audit.record_changes(charge, before, site=site, note="all instalments posted")
    return posting


@dataclass
class PostResult:
    posted: int = 0
    failed: int = 0


def post_due(*, now: dt.datetime | None = None) -> PostResult:
    """Post every instalment due by today (each site's own date); safe to run again."""
    at = clock.resolve(now)
    result = PostResult()
    due = (
        ChargeInstalment.objects.filter(
            posting__isnull=True,
            charge__status=Charge.Status.ACTIVE,
            due_on__lte=(at + dt.timedelta(days=1)).date(),  # no site is a day ahead of UTC
        )
        .select_related("charge__customer__site")
        .order_by("due_on", "pk")
    )
    for inst in due:
        today = at.astimezone(inst.charge.customer.site.zone).date()
        if inst.due_on > today:
            continue
        try:
            with audit.acting_as(label="charge instalments", channel="system"):
                if post_instalment(inst, today=today) is not None:
                    result.posted += 1
        except ValidationError:
            log.exception("instalment %s not posted", inst.pk)
            result.failed += 1
    return result


# --- Deposits on closing --------------------------------------------------------------------


def deposit_held(customer: Customer) -> Decimal:
    """The deposit posted for the customer and not yet returned."""
    paid = ChargeInstalment.objects.filter(
        charge__customer=customer, charge__kind=Charge.Kind.DEPOSIT, posting__isnull=False
    ).aggregate(total=Sum("amount"))["total"] or Decimal(0)
    returned = Posting.objects.filter(
        site=customer.site_id, reference=deposit_return_reference(customer)
    ).exists()
    unit = ledger.minor_unit(customer.site.currency)
    return Decimal(0).quantize(unit) if returned else paid.quantize(unit)


def deposit_return_reference(customer: Customer) -> str:
    return f"deposit-return:{customer.pk}"


@dataclass
class DepositReturn:
    """What became of a closed account's deposit."""

    held: Decimal
    against_arrears: Decimal
    refund: MoneyRequest | None
    posting: Posting | None


@transaction.atomic
def deposit_return(
    *, customer: Customer, source: Source, by: User, date: dt.date | None = None
) -> DepositReturn:
    """Return a closed account's deposit: arrears first, the rest as a refund request.

    The deposit held moves from deposits held to the customer's receivable (one posting,
    reference ``deposit-return:<customer>``), which clears what they owe; any credit
    left (up to the deposit) is asked to be refunded through ``source``, and is paid
    only when a second person approves the refund. Active charges are cancelled first,
    so nothing more falls due.
    """
    _require(by, customer)
    customer = Customer.objects.select_for_update().select_related("site").get(pk=customer.pk)
    if customer.status != Customer.Status.CLOSED:
        raise ValidationError("A deposit is returned only once the account is closed.")
    for charge in Charge.objects.filter(customer=customer, status=Charge.Status.ACTIVE):
        charge_cancel(charge=charge, reason="account closed", by=by)
    held = deposit_held(customer)
    zero = Decimal(0).quantize(ledger.minor_unit(customer.site.currency))
    if held <= 0:
        return DepositReturn(held=zero, against_arrears=zero, refund=None, posting=None)
    day = date or clock.now().astimezone(customer.site.zone).date()
    owed = ledger.customer_balance(customer)
    against = min(max(owed, zero), held)
    posting = ledger.post(
        site=customer.site,
        kind=Posting.Kind.DEPOSIT,
        date=day,
        lines=[
            Line(ledger.account(customer.site, Kind.DEPOSITS_HELD), held),
            Line(ledger.receivable(customer), -held),
        ],
        by=by,
        memo=f"Deposit returned on closing: {against} set against arrears",
        reference=deposit_return_reference(customer),
    )
    refund = None
    rest = held - against
    if rest > 0:
        refund = ledger.refund_request(
            customer=customer,
            amount=rest,
            source=source,
            reason="Deposit returned on closing the account",
            by=by,
        )
    return DepositReturn(held=held, against_arrears=against, refund=refund, posting=posting)


# --- Reading --------------------------------------------------------------------------------


def charges_of(customer: Customer):
    """The customer's charges with their schedules, newest first."""
    return (
        Charge.objects.filter(customer=customer)
        .prefetch_related("schedule__posting")
        .order_by("-created_at", "-id")
    )
