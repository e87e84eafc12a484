"""Prepaid account credit: a money balance drawn down as consumption arrives.

The credit is the customer's receivable balance with its sign turned (a customer
holding credit has a negative balance). :func:`draw` charges a customer's newly
validated hours; :func:`draw_all` is the periodic task's body. How a draw is priced:

- hours are charged once, in order: ``CreditAccount.charged_to`` is the watermark, and
  an hour is due once it ended :data:`SETTLE` ago (the readings' rollup has caught up);
- each draw prices the whole local month to date with the tariff engine (full monthly
  fixed charge, monthly block sizes by month-to-date kWh) and charges that price minus
  what the month's earlier draws charged. The fixed charge therefore falls on the
  month's first draw with consumption (a month without any consumption costs nothing),
  and an estimated hour later replaced by its real reading is re-priced by the next
  draw of the same month (which may lower a part, even below zero for that draw);
- the posting's reference names the customer and hour range, so a re-run never
  charges twice.

After each draw the credit is compared with the site's low-balance line: a
``low_balance`` message goes once per downward crossing, and at zero a disconnect is
requested from the steering rules (once per crossing). A top-up that brings the credit
back above zero asks to reconnect (:func:`topped_up`, called by the payments hook).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum

from billing import ledger, supply
from billing.models import BillingPolicy, Posting, ServicePackage, SupplyRequest
from billing.prepaid.models import CreditAccount, CreditDraw
from billing.prepaid.pricing import (
    PARTS,
    ZERO,
    bill_lines,
    calendar_for,
    month_of,
    month_start,
    next_month,
    price_month,
    schedule_for,
    totals,
)
from billing.tariffs import Interval, TariffError
from customers.models import Customer
from mcoms.core import clock
from metering import consumption
from notifications import services as messaging

log = logging.getLogger(__name__)
Action = SupplyRequest.Action
Alert = CreditAccount.Alert
SETTLE = dt.timedelta(hours=1)
HOUR = dt.timedelta(hours=1)
# Customers whose consumption is drawn from their credit.
DRAWN = (Customer.Status.ACTIVE, Customer.Status.SUSPENDED, Customer.Status.DISCONNECTED)
PART_ACCOUNTS = {
    "fixed": ledger.Kind.REVENUE_FIXED,
    "energy": ledger.Kind.REVENUE_ENERGY,
    "levies": ledger.Kind.LEVIES_PAYABLE,
    "vat": ledger.Kind.VAT_PAYABLE,
}
assert set(PARTS.values()) == set(PART_ACCOUNTS)


def credit(customer: Customer) -> Decimal:
    """The money the customer holds (the receivable balance with its sign turned)."""
    return -ledger.customer_balance(customer)


def supply_off(customer: Customer) -> bool:
    """Whether a disconnect is open, or the last carried-out request disconnected them."""
    if supply.open_request(customer, Action.DISCONNECT) is not None:
        return True
    if customer.status == Customer.Status.DISCONNECTED:
        return True
    last = (
        SupplyRequest.objects.filter(customer=customer, status=SupplyRequest.Status.DONE)
        .order_by("-closed_at", "-id")
        .first()
    )
    return last is not None and last.action == Action.DISCONNECT


def due_until(now: dt.datetime) -> dt.datetime:
    """Hours starting before this are due to be charged at ``now``."""
    return consumption.floor_hour(now - SETTLE)


def open_account(customer: Customer, *, since: dt.datetime | None = None) -> CreditAccount:
    """The customer's draw-down state, opened (charging from ``since``, default now) if new."""
    start = consumption.floor_hour(since) if since is not None else due_until(clock.now())
    account, _ = CreditAccount.objects.get_or_create(
        customer=customer, defaults={"charging_from": start, "charged_to": start}
    )
    return account


# --- Drawing ------------------------------------------------------------------------------


def _charged(customer: Customer, month: dt.date) -> dict[str, Decimal]:
    sums = CreditDraw.objects.filter(customer=customer, month=month).aggregate(
        fixed=Sum("fixed"), energy=Sum("energy"), levies=Sum("levies"), vat=Sum("vat")
    )
    return {k: v or ZERO for k, v in sums.items()}


def _post(customer: Customer, parts: dict[str, Decimal], day: dt.date, reference: str, memo: str):
    site = customer.site
    total = sum(parts.values(), ZERO)
    lines = [ledger.Line(ledger.receivable(customer), total)] if total else []
    lines += [
        ledger.Line(ledger.account(site, PART_ACCOUNTS[k]), -a) for k, a in parts.items() if a
    ]
    if len(lines) < 2:  # nothing moves (parts that cancel out exactly are not worth a posting)
        return None
    try:
        ledger.check_open(site, day)
    except ledger.PeriodClosedError:
        day = clock.now().astimezone(site.zone).date()  # a closed month: post into today
    return ledger.post(
        site=site, kind=Posting.Kind.CHARGE, date=day, lines=lines, memo=memo, reference=reference
    )


def _draw_month(customer, account, calendar, schedule, month, upto, now) -> CreditDraw | None:
    """Charge the hours from the watermark to ``upto`` (inside ``month``) and re-price it."""
    hours_from = account.charged_to
    usage_from = max(month_start(month, calendar), account.charging_from)
    buckets = consumption.customer_usage(
        customer, by=consumption.HOUR, start=usage_from, end=upto
    ).buckets
    usage = [Interval(b.start, b.end, b.kwh, b.estimated_kwh) for b in buckets]
    new_kwh = sum((b.kwh for b in buckets if b.start >= hours_from), ZERO)
    charged = _charged(customer, month)
    bill = price_month(
        month=month,
        currency=customer.site.currency,
        schedule=schedule,
        calendar=calendar,
        usage=usage,
    )
    if bill.kwh == 0 and not any(charged.values()):
        return None  # no consumption in the month yet: nothing, not even the fixed charge
    now_due = totals(bill)
    parts = {k: now_due[k] - charged[k] for k in now_due}
    if not any(parts.values()):
        return None
    last_day = (upto - HOUR).astimezone(calendar.zone).date()
    span = f"{hours_from:%Y%m%d%H}-{upto:%Y%m%d%H}"
    posting = _post(
        customer,
        parts,
        last_day,
        reference=f"prepaid-draw:{customer.pk}:{span}",
        memo=f"Prepaid consumption {new_kwh} kWh, {month:%B %Y} to date {bill.kwh} kWh",
    )
    return CreditDraw.objects.create(
        customer=customer,
        month=month,
        hours_from=hours_from,
        hours_to=upto,
        new_kwh=new_kwh,
        month_kwh=bill.kwh,
        total=sum(parts.values(), ZERO),
        estimated=bill.estimated,
        lines=bill_lines(bill),
        posting=posting,
        created_at=now,
        **parts,
    )


@transaction.atomic
def draw(customer: Customer, *, now: dt.datetime | None = None) -> list[CreditDraw]:
    """Charge the customer's due hours from their credit; return the draws made (maybe none).

    A tariff that cannot price the hours leaves the watermark where it is (the hours
    are charged once the tariff is fixed) and records the error on the account.
    """
    now = clock.resolve(now)
    account = open_account(customer)
    account = CreditAccount.objects.select_for_update().get(pk=account.pk)
    upto = due_until(now)
    made: list[CreditDraw] = []
    if upto > account.charged_to:
        calendar = calendar_for(customer)
        try:
            schedule = schedule_for(customer)
            month = month_of(account.charged_to.astimezone(calendar.zone).date())
            while account.charged_to < upto:
                end = min(upto, month_start(next_month(month), calendar))
                with transaction.atomic():
                    made_now = _draw_month(customer, account, calendar, schedule, month, end, now)
                if made_now is not None:
                    made.append(made_now)
                account.charged_to = end
                month = next_month(month)
            account.last_error = ""
        except TariffError as exc:
            account.last_error = str(exc)[:300]
            log.warning("prepaid draw for customer %s: %s", customer.pk, exc)
    account.last_run_at = now
    account.save(update_fields=["charged_to", "last_error", "last_run_at"])
    check_balance(customer, account=account, now=now)
    return made


# --- Low balance, empty, top-up --------------------------------------------------------------


def _days_left(customer: Customer, held: Decimal, now: dt.datetime) -> str:
    week = CreditDraw.objects.filter(customer=customer, created_at__gte=now - dt.timedelta(days=7))
    spent = week.aggregate(total=Sum("total"))["total"] or ZERO
    if spent <= 0:
        return "30+"
    return str(min(int(held / (spent / 7)), 99))


def _notify_low(customer: Customer, held: Decimal, now: dt.datetime) -> None:
    try:
        messaging.send_message(
            to=customer.phone,
            template="low_balance",
            context={
                "name": customer.first_name,
                "account": customer.account_number,
                "currency": customer.site.currency,
                "balance": f"{max(held, ZERO):,}",
                "days": _days_left(customer, held, now),
            },
            language=customer.language,
            about=f"customers.customer:{customer.pk}",
            site_id=customer.site_id,
        )
    except messaging.TemplateMissing:
        log.info("no low_balance template; customer %s not messaged", customer.pk)


def check_balance(
    customer: Customer, *, account: CreditAccount | None = None, now: dt.datetime | None = None
) -> str:
    """Compare the credit with the low-balance line and zero; act once per crossing.

    Going down into *low* or *empty* sends one ``low_balance`` message; reaching
    *empty* (no credit left) requests a disconnect. Going back up only resets the state.
    """
    now = clock.resolve(now)
    account = account or open_account(customer)
    held = credit(customer)
    line = BillingPolicy.for_site(customer.site).low_balance
    state = Alert.EMPTY if held <= 0 else Alert.LOW if held <= line else Alert.OK
    before = account.alert
    if state == before:
        return state
    downward = [Alert.OK, Alert.LOW, Alert.EMPTY]
    if downward.index(state) > downward.index(before):
        if before == Alert.OK:
            _notify_low(customer, held, now)
        if state == Alert.EMPTY:
            supply.request(
                customer=customer,
                action=Action.DISCONNECT,
                reason=SupplyRequest.Reason.PREPAID_EMPTY,
                detail=f"Prepaid credit {held} {customer.site.currency}",
            )
    account.alert = state
    account.save(update_fields=["alert"])
    return state


def topped_up(customer: Customer, *, reference: str = "") -> SupplyRequest | None:
    """After money came in: ask to reconnect when credit is back above zero and supply is off.

    Also moves the low-balance state up, so the next fall is messaged again.
    """
    held = credit(customer)
    account = CreditAccount.objects.filter(customer=customer).first()
    if account is not None:
        check_balance(customer, account=account)
    if held <= 0 or not supply_off(customer):
        return None
    detail = f"Credit {held} {customer.site.currency}"
    if reference:
        detail += f" after {reference}"
    return supply.request(
        customer=customer,
        action=Action.RECONNECT,
        reason=SupplyRequest.Reason.TOP_UP,
        detail=detail,
    )


# --- The periodic run -------------------------------------------------------------------------


@dataclass
class RunReport:
    customers: int = 0
    draws: int = 0
    charged: dict[str, Decimal] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)


def credit_customers():
    return Customer.objects.filter(
        package__payment_mode=ServicePackage.PaymentMode.PREPAID_CREDIT, status__in=DRAWN
    ).select_related("site", "package__tariff")


def draw_all(*, now: dt.datetime | None = None) -> RunReport:
    """Draw every prepaid-credit customer's due hours; one failure never stops the others."""
    now = clock.resolve(now)
    report = RunReport()
    for customer in credit_customers().order_by("pk").iterator(chunk_size=200):
        report.customers += 1
        try:
            made = draw(customer, now=now)
        except Exception as exc:  # one customer's trouble must not stop the site's draw-down
            log.exception("prepaid draw failed for customer %s", customer.pk)
            report.failed.append(f"{customer.account_number}: {exc}")
            continue
        report.draws += len(made)
        cur = customer.site.currency
        for d in made:
            report.charged[cur] = report.charged.get(cur, ZERO) + d.total
    return report
