"""Meter tokens: money turned into kWh at the moment of sale, by the tariff.

The inverse of the tariff: for an amount of money, the most kWh (in steps of
:data:`STEP`) whose price fits in it. The price of a purchase is the month-to-date
price with it minus the month-to-date price without it, both over the whole local
month, so:

- the month's first purchase pays the full standing (fixed monthly) charge, and its
  VAT and levies, before any kWh;
- later purchases continue from the kWh already bought this month (block position);
- the lifeline block (Uganda's rule for prepaid domestic customers) is given on the
  first purchase only: later purchases that month buy at the normal rate, and a first
  purchase too small to use the whole lifeline block loses the rest of it.

What is left of the money below one more step of kWh is shown on the receipt and kept
as energy revenue, so the receipt's lines add up to the amount paid and the customer's
balance is, after the sale, what it was before the payment.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction

from billing import ledger
from billing.models import Posting
from billing.prepaid.models import CreditDraw, TokenPurchase
from billing.prepaid.pricing import (
    LEDGER_KIND,
    ZERO,
    calendar_for,
    lines_diff,
    month_of,
    month_start,
    price_month,
    schedule_for,
)
from billing.tariffs import Bill, Calendar, InForce, Interval, TariffError
from customers.models import Customer
from mcoms.core import audit, clock
from mcoms.core.models import AuditEvent

STEP = Decimal("0.1")  # the token meters' resolution in kWh
MAX_STEPS = 10**7  # a million kWh: no purchase buys more
MINUTE = dt.timedelta(minutes=1)


class QuoteError(ValueError):
    """An amount that cannot buy anything (bad, too small, or no tariff to price by)."""


@dataclass(frozen=True)
class Quote:
    """What ``amount`` buys now: kWh, and how the money is spent (lines summing to it)."""

    customer: Customer
    amount: Decimal
    currency: str
    at: dt.datetime
    month: dt.date
    first_of_month: bool
    month_kwh_before: Decimal
    kwh: Decimal
    cost: Decimal
    remainder: Decimal
    breakdown: list[dict]

    @property
    def standing_charge(self) -> Decimal:
        return sum((Decimal(x["amount"]) for x in self.breakdown if x["kind"] == "fixed"), ZERO)


def _without_lifeline(force: InForce) -> InForce:
    """The version as later purchases of the month see it: lifeline blocks at the normal rate."""
    terms = force.terms
    normal = next((b.rate for b in terms.blocks if not b.lifeline), None)
    if normal is None or not any(b.lifeline for b in terms.blocks):
        return force
    blocks = tuple(
        dataclasses.replace(b, rate=normal, lifeline=False) if b.lifeline else b
        for b in terms.blocks
    )
    terms = dataclasses.replace(terms, blocks=blocks, lifeline_eligible_up_to=None)
    return dataclasses.replace(force, terms=terms)


def _at_minute(ts: dt.datetime) -> dt.datetime:
    return ts.astimezone(dt.UTC).replace(second=0, microsecond=0)


def _interval(ts: dt.datetime, kwh: Decimal) -> Interval:
    start = _at_minute(ts)
    return Interval(start, start + MINUTE, kwh)


def _amount(value: object, currency: str) -> Decimal:
    try:
        amount = Decimal(str(value).strip().replace(",", ""))
    except ArithmeticError as exc:
        raise QuoteError(f"{value!r} is not an amount of money.") from exc
    if not amount.is_finite() or amount <= 0:
        raise QuoteError("The amount must be more than zero.")
    if amount != ledger.round_money(amount, currency):
        raise QuoteError(f"{amount} is not a whole amount of {currency}.")
    return ledger.round_money(amount, currency)


@dataclass(frozen=True)
class Conversion:
    """The pure result of turning money into kWh (see :func:`convert`)."""

    month: dt.date
    first_of_month: bool
    kwh: Decimal
    cost: Decimal
    remainder: Decimal
    breakdown: list[dict]


def convert(
    money: Decimal,
    *,
    currency: str,
    schedule: list[InForce],
    calendar: Calendar,
    at: dt.datetime,
    bought: list[tuple[dt.datetime, Decimal]],
    step: Decimal = STEP,
    lifeline_first_only: bool = True,
) -> Conversion:
    """The inverse of the tariff: the most kWh (in ``step``s) that ``money`` pays for at ``at``.

    ``bought`` are the month's earlier purchases (time of sale, kWh): they set the block
    position, and when there are any the standing charge is already paid and the
    lifeline block no longer applies (unless ``lifeline_first_only`` is false, as for
    account credit, where blocks simply follow the month's kWh). Pure: reads nothing
    but its arguments.
    Raises :class:`QuoteError` when the money buys no kWh or the tariff cannot price it.
    """
    month = month_of(at.astimezone(calendar.zone).date())
    first = not bought
    original = schedule
    if not first and lifeline_first_only:
        schedule = [_without_lifeline(f) for f in schedule]
    earlier = [_interval(ts, kwh) for ts, kwh in bought if kwh > 0]

    def price(kwh: Decimal) -> Bill:
        usage = earlier + ([_interval(at, kwh)] if kwh > 0 else [])
        return price_month(
            month=month, currency=currency, schedule=schedule, calendar=calendar, usage=usage
        )

    try:
        before = None if first else price(ZERO)
        base = before.total if before is not None else ZERO

        def cost(steps: int) -> Decimal:
            return price(step * steps).total - base

        if cost(0) > money:
            raise QuoteError(
                f"{money} {currency} does not cover this month's standing charge "
                f"({cost(0)} {currency} with taxes): the first purchase must be more."
            )
        low, high = 0, 1
        while cost(high) <= money:
            low, high = high, high * 2
            if high > MAX_STEPS:
                raise QuoteError(f"{money} {currency} buys more than any meter takes.")
        while high - low > 1:  # the price only rises with kWh: find the last step that fits
            middle = (low + high) // 2
            if cost(middle) <= money:
                low = middle
            else:
                high = middle
        if low == 0:
            raise QuoteError(
                f"{money} {currency} buys no kWh: the month's standing charge and taxes "
                f"take {cost(0)} {currency} and {step} kWh costs more than the rest."
            )
        kwh = (step * low).quantize(Decimal("0.001"))
        after = price(kwh)
    except TariffError as exc:
        raise QuoteError(f"The tariff cannot price this purchase: {exc}") from exc
    spent = after.total - base
    breakdown = lines_diff(after, before)
    if not first and lifeline_first_only and schedule != original:
        breakdown.insert(
            0,
            {
                "kind": "note",
                "description": "The standing charge and the lifeline block came with this "
                "month's first purchase; later purchases buy at the normal rate.",
                "quantity": "",
                "unit": "",
                "rate": "",
                "amount": "0",
            },
        )
    remainder = money - spent
    if remainder:
        breakdown.append(
            {
                "kind": "remainder",
                "description": f"Left over, less than {step} kWh more would cost",
                "quantity": "",
                "unit": currency,
                "rate": "",
                "amount": str(remainder),
            }
        )
    return Conversion(month, first, kwh, spent, remainder, breakdown)


def quote(
    customer: Customer,
    amount: object,
    *,
    at: dt.datetime | None = None,
    step: Decimal = STEP,
) -> Quote:
    """How many kWh ``amount`` buys for ``customer`` at ``at`` (default now), and why.

    For a token customer this is what a purchase would give; for an account-credit
    customer, what the money would pay for from where the month's consumption stands
    (the draw-down's pricing), not counting anything they owe.

    Raises :class:`QuoteError` when the amount is not money, the customer's tariff
    cannot price it, or it buys no kWh after the month's standing charge.
    """
    at = at or clock.now()
    currency = customer.site.currency
    money = _amount(amount, currency)
    calendar = calendar_for(customer)
    try:
        schedule = schedule_for(customer)
    except TariffError as exc:
        raise QuoteError(str(exc)) from exc
    month = month_of(at.astimezone(calendar.zone).date())
    package = customer.package
    on_credit = package.payment_mode == package.PaymentMode.PREPAID_CREDIT
    if on_credit:  # the month's consumption drawn so far sets the position
        last = CreditDraw.objects.filter(customer=customer, month=month).order_by("-hours_to")
        bought = [(month_start(month, calendar), d.month_kwh) for d in last[:1]]
    else:
        bought = list(
            TokenPurchase.objects.filter(
                customer=customer, month=month, status__in=TokenPurchase.COUNTED
            ).values_list("sold_at", "kwh")
        )
    c = convert(
        money,
        currency=currency,
        schedule=schedule,
        calendar=calendar,
        at=at,
        bought=bought,
        step=step,
        lifeline_first_only=not on_credit,
    )
    return Quote(
        customer=customer,
        amount=money,
        currency=currency,
        at=at,
        month=month,
        first_of_month=c.first_of_month,
        month_kwh_before=sum((kwh for _, kwh in bought), ZERO),
        kwh=c.kwh,
        cost=c.cost,
        remainder=c.remainder,
        breakdown=c.breakdown,
    )


def _posting_lines(customer: Customer, q: Quote) -> list[ledger.Line]:
    site = customer.site
    by_kind: dict[str, Decimal] = {}
    for item in q.breakdown:
        kind = LEDGER_KIND.get(item["kind"], ledger.Kind.REVENUE_ENERGY)
        by_kind[kind] = by_kind.get(kind, ZERO) + Decimal(item["amount"])
    lines = [ledger.Line(ledger.receivable(customer), q.amount)]
    lines += [ledger.Line(ledger.account(site, k), -a) for k, a in by_kind.items() if a]
    return lines


@transaction.atomic
def sell(payment) -> TokenPurchase:
    """Turn a recorded payment into a token purchase (once per payment).

    The sale is posted (receivable debited with the whole amount; revenue, VAT and
    levies credited), so the customer's balance is what it was before the payment.
    A payment that cannot be priced gives a *held* purchase and no posting: the money
    stays on the account as credit.
    """
    existing = TokenPurchase.objects.filter(payment_id=payment.pk).first()
    if existing is not None:
        return existing
    # One sale at a time per customer: the month-to-date kWh must not move under us.
    customer = (
        Customer.objects.select_for_update(of=("self",))
        .select_related("site", "package__tariff")
        .get(pk=payment.customer.pk)
    )
    existing = TokenPurchase.objects.filter(payment_id=payment.pk).first()
    if existing is not None:  # sold while we waited for the lock
        return existing
    at = payment.received_at
    zone = customer.site.zone
    purchase = TokenPurchase(
        customer=customer,
        payment_id=payment.pk,
        amount=payment.amount,
        currency=payment.currency,
        month=month_of(at.astimezone(zone).date()),
        sold_at=at,
        created_at=clock.now(),
    )
    try:
        if payment.currency != customer.site.currency:
            raise QuoteError(f"Paid in {payment.currency}; the site sells in its own currency.")
        q = quote(customer, payment.amount, at=at)
    except QuoteError as exc:
        purchase.status = TokenPurchase.Status.HELD
        purchase.detail = str(exc)[:300]
        purchase.save()
        audit.record(
            AuditEvent.Action.CREATE,
            purchase,
            after=audit.snapshot(purchase),
            site=customer.site,
            note="token purchase held: money kept as credit",
        )
        return purchase
    purchase.posting = ledger.post(
        site=customer.site,
        kind=Posting.Kind.TOKEN_SALE,
        date=at.astimezone(zone).date(),
        lines=_posting_lines(customer, q),
        memo=f"Token sale: {q.kwh} kWh for {q.amount} {q.currency} (payment {payment.pk})",
        reference=f"token-sale:{payment.pk}",
    )
    purchase.kwh = q.kwh
    purchase.breakdown = q.breakdown
    purchase.first_of_month = q.first_of_month
    purchase.status = TokenPurchase.Status.AWAITING_VEND
    purchase.save()
    audit.record(
        AuditEvent.Action.CREATE,
        purchase,
        after=audit.snapshot(purchase),
        site=customer.site,
        note=f"token purchase: {q.kwh} kWh",
    )
    return purchase


@transaction.atomic
def cancel(payment, *, reason: str, by=None) -> TokenPurchase | None:
    """The payment was reversed: undo its purchase unless the token has been issued.

    A purchase awaiting its token has its sale reversed in the ledger and is cancelled
    (its kWh no longer count in the month); a held one is just cancelled. A purchase
    whose token was issued is left as it is: the kWh are in the meter, so with the
    payment reversed the customer owes the amount (staff decide what follows).
    """
    purchase = TokenPurchase.objects.select_for_update().filter(payment_id=payment.pk).first()
    if purchase is None or purchase.status == TokenPurchase.Status.CANCELLED:
        return purchase
    if purchase.status == TokenPurchase.Status.VENDED or purchase.token:
        return purchase
    before = audit.snapshot(purchase, ["status", "detail"])
    if purchase.posting_id is not None:
        site = purchase.customer.site
        ledger.reversal_post(
            original=purchase.posting,
            date=clock.now().astimezone(site.zone).date(),
            reason=f"payment {payment.pk} reversed: {reason}"[:200],
            by=by,
        )
    purchase.status = TokenPurchase.Status.CANCELLED
    purchase.detail = f"Payment reversed: {reason}"[:300]
    purchase.save(update_fields=["status", "detail"])
    audit.record(
        AuditEvent.Action.TRANSITION,
        purchase,
        before=before,
        after=audit.snapshot(purchase, ["status", "detail"]),
        site=purchase.customer.site,
        note="token purchase cancelled: payment reversed",
    )
    return purchase


def _figure(value) -> str:
    """A kWh figure or rate without trailing zeros, with thousands separators."""
    return f"{Decimal(str(value)).normalize():,f}"


def _money(value, currency: str) -> str:
    return f"{ledger.round_money(Decimal(str(value)), currency):,}"


def explain(purchase: TokenPurchase) -> list[str]:
    """The purchase's breakdown as short lines for a receipt (SMS or PDF), in order."""
    out = []
    for x in purchase.breakdown:
        kind, amount = x["kind"], _money(x["amount"], purchase.currency)
        if kind == "note":
            continue
        if x["unit"] == "kWh" and kind == "energy":
            what = f"{_figure(x['quantity'])} kWh x {_figure(x['rate'])}"
            if "lifeline" in x["description"] and "not applicable" not in x["description"]:
                what += " (lifeline)"
            out.append(f"{what} = {amount}")
        elif kind == "remainder":
            out.append(f"Left over {amount}")
        else:  # standing charge, levies, VAT
            out.append(f"{x['description']} {amount}")
    return out


def summary(purchase: TokenPurchase) -> str:
    """One line for an SMS receipt: the kWh and how the money was used."""
    paid = _money(purchase.amount, purchase.currency)
    head = f"{purchase.currency} {paid} = {_figure(purchase.kwh)} kWh"
    return f"{head}: " + "; ".join(explain(purchase))
