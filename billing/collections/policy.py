"""Reminders, impending-disconnection notices and disconnect requests, by the site policy.

:func:`run` goes through every site (a periodic task calls it every hour) and, by the
site's :class:`~billing.models.BillingPolicy` and its own local time:

1. cancels open *arrears* disconnect requests of customers no longer in arrears;
2. sends a ``due_date_reminder`` about each open invoice once, from ``reminder_days``
   before its due date until the due date;
3. sends a ``disconnection_warning`` about each invoice ``notice_days`` or more overdue,
   once, to a customer in arrears (overdue amount above zero and at least
   ``notice_min_amount``); the notice names the first day disconnection may be asked
   (the notice day plus ``grace_days``, moved past weekends and public holidays when
   the policy keeps those free);
4. once that day has come, and only inside the policy's working hours and days, asks
   the steering rules to disconnect (:func:`billing.supply.request`) a customer still
   in arrears;
5. asks to reconnect a customer disconnected for arrears who no longer is in arrears
   (unless a reconnection has been asked since).

Messages go out between :data:`SEND_FROM` and :data:`SEND_UNTIL` site time. Customers
flagged as critical load (clinics, water pumps) and accounts that are not active get
neither notices nor disconnect requests; they stay on the arrears page. Overdue amounts
come from allocations (:mod:`billing.collections.ageing`) and are never taken above
the customer's ledger balance, so a payment not yet allocated already counts.
Every reminder and notice is logged (:class:`CollectionNotice`), one of each kind per
invoice: running again sends nothing twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.db.models import Max, Sum

from billing import supply
from billing.collections.ageing import due_date, not_fully_allocated, open_invoice_rows
from billing.collections.models import CollectionNotice
from billing.collections.money import fmt, local_now
from billing.models import BillingPolicy, LedgerAccount, PostingLine, SupplyRequest
from customers.models import Customer
from mcoms.core import clock
from mcoms.core.models import PublicHoliday, Site
from notifications.services import TemplateMissing, send_message

log = logging.getLogger(__name__)

ZERO = Decimal(0)
SEND_FROM = dt.time(8)
SEND_UNTIL = dt.time(20)
REMINDER = "due_date_reminder"
WARNING = "disconnection_warning"


@dataclass
class SiteRun:
    """What one run did on one site."""

    site: str
    local_time: str
    reminders: int = 0
    notices: int = 0
    disconnects: int = 0
    cancelled: int = 0
    reconnects: int = 0
    held: list[str] = field(default_factory=list)


def run(*, now: dt.datetime | None = None, sites=None) -> list[SiteRun]:
    """Apply the collections policy on every site (or ``sites``) at ``now``."""
    at = clock.resolve(now)
    return [run_site(site, at) for site in (sites if sites is not None else Site.objects.all())]


def _day(d: dt.date) -> str:
    return f"{d.day} {d:%b %Y}"


class _Calendar:
    """The site's working days for disconnection."""

    def __init__(self, site: Site, policy: BillingPolicy, today: dt.date):
        self.policy = policy
        self.holidays = set(
            PublicHoliday.objects.filter(
                site=site, date__gte=today, date__lte=today + dt.timedelta(days=60)
            ).values_list("date", flat=True)
        )

    def working_day(self, day: dt.date) -> bool:
        if not self.policy.disconnect_weekdays_only:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def first_working_day(self, day: dt.date) -> dt.date:
        for _ in range(30):
            if self.working_day(day):
                return day
            day += dt.timedelta(days=1)
        return day

    def working_time(self, local: dt.datetime) -> bool:
        p = self.policy
        return self.working_day(local.date()) and p.disconnect_from <= local.time() < (
            p.disconnect_until
        )


@transaction.atomic
def run_site(site: Site, now: dt.datetime) -> SiteRun:
    """Reminders, notices, disconnect requests and cancellations on one site."""
    Site.objects.select_for_update().filter(pk=site.pk).first()  # one run per site at a time
    policy = BillingPolicy.for_site(site)
    local = local_now(site, now)
    today = local.date()
    report = SiteRun(site=site.code, local_time=local.isoformat(timespec="minutes"))
    calendar = _Calendar(site, policy, today)

    open_by_customer: dict[int, list[dict]] = defaultdict(list)
    for row in open_invoice_rows([site.pk]):
        row["due"] = due_date(row["due_on"], row["issued_on"])
        open_by_customer[row["customer_id"]].append(row)
    balances = dict(
        PostingLine.objects.filter(account__site=site, account__kind=LedgerAccount.Kind.RECEIVABLE)
        .values_list("account__customer_id")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    open_requests = list(
        SupplyRequest.objects.filter(
            customer__site=site,
            action=SupplyRequest.Action.DISCONNECT,
            reason=SupplyRequest.Reason.ARREARS,
            status=SupplyRequest.Status.REQUESTED,
        )
    )
    customers = Customer.objects.in_bulk(
        set(open_by_customer) | {r.customer_id for r in open_requests}
    )
    open_ids = {row["id"] for rows in open_by_customer.values() for row in rows}
    # Notices about invoices still open, matched in SQL (no list of ids sent over).
    still_open = not_fully_allocated([site.pk]).values("id")
    logged = {
        (invoice_id, kind)
        for invoice_id, kind in CollectionNotice.objects.filter(invoice__in=still_open).values_list(
            "invoice_id", "kind"
        )
    }

    def overdue(cid: int) -> Decimal:
        late = sum((r["open"] for r in open_by_customer.get(cid, ()) if r["due"] < today), ZERO)
        return max(ZERO, min(late, balances.get(cid) or ZERO))

    def in_arrears(cid: int) -> bool:
        owed = overdue(cid)
        return owed > 0 and owed >= policy.notice_min_amount

    # 1. Arrears paid off: the disconnect request is no longer wanted.
    for req in open_requests:
        if not in_arrears(req.customer_id):
            supply.close(
                request=req,
                status=SupplyRequest.Status.CANCELLED,
                outcome=f"Arrears cleared by {_day(today)}",
            )
            report.cancelled += 1

    # 1b. Disconnected for arrears and paid up since: ask for the supply back.
    report.reconnects = _reconnect_paid_up(site, in_arrears)

    messaging = SEND_FROM <= local.time() < SEND_UNTIL
    for cid, rows in open_by_customer.items():
        customer = customers[cid]
        balance = balances.get(cid) or ZERO
        if not messaging or balance <= 0:
            continue
        # 2. Reminders before the due date.
        if policy.reminder_days:
            coming = [
                r
                for r in rows
                if (r["id"], CollectionNotice.Kind.REMINDER) not in logged
                and r["due"] - dt.timedelta(days=policy.reminder_days) <= today <= r["due"]
            ]
            if coming:
                due = min(r["due"] for r in coming)
                amount = min(balance, sum((r["open"] for r in rows if r["due"] <= due), ZERO))
                if _notify(site, customer, REMINDER, coming, amount, today, now, due_date=due):
                    report.reminders += 1
        # 3. Notices of impending disconnection.
        late = [
            r
            for r in rows
            if (r["id"], CollectionNotice.Kind.NOTICE) not in logged
            and today >= r["due"] + dt.timedelta(days=policy.notice_days)
        ]
        if not late or not in_arrears(cid):
            continue
        if customer.critical_load or customer.status != Customer.Status.ACTIVE:
            report.held.append(f"{customer.account_number}: no notice ({_why_not(customer)})")
            continue
        cut = calendar.first_working_day(today + dt.timedelta(days=policy.grace_days))
        if _notify(site, customer, WARNING, late, overdue(cid), today, now, disconnect_from=cut):
            report.notices += 1

    # 4. Grace over: ask for disconnection, in working hours only.
    if calendar.working_time(local):
        due_notices = CollectionNotice.objects.filter(
            customer__site=site,
            kind=CollectionNotice.Kind.NOTICE,
            supply_request__isnull=True,
            disconnect_from__lte=today,
            invoice__in=still_open,
        ).select_related("customer", "invoice")
        by_customer: dict[int, list[CollectionNotice]] = defaultdict(list)
        for notice in due_notices:
            if notice.invoice_id in open_ids:
                by_customer[notice.customer_id].append(notice)
        for cid, notices in by_customer.items():
            customer = notices[0].customer
            if not in_arrears(cid):
                continue
            if customer.critical_load or customer.status != Customer.Status.ACTIVE:
                report.held.append(
                    f"{customer.account_number}: not disconnected ({_why_not(customer)})"
                )
                continue
            numbers = ", ".join(n.invoice.number for n in notices)
            detail = (
                f"{fmt(overdue(cid), site.currency)} {site.currency} overdue on {numbers}; "
                f"notice sent {_day(min(n.sent_on for n in notices))}"
            )
            req = supply.request(
                customer=customer, action="disconnect", reason="arrears", detail=detail
            )
            CollectionNotice.objects.filter(pk__in=[n.pk for n in notices]).update(
                supply_request=req
            )
            report.disconnects += 1
    return report


def _reconnect_paid_up(site: Site, in_arrears) -> int:
    """Reconnect requests for customers cut off for arrears who no longer owe."""
    cut_off = dict(
        SupplyRequest.objects.filter(
            customer__site=site,
            customer__status=Customer.Status.DISCONNECTED,
            action=SupplyRequest.Action.DISCONNECT,
            reason=SupplyRequest.Reason.ARREARS,
            status=SupplyRequest.Status.DONE,
        )
        .values_list("customer_id")
        .annotate(last=Max("closed_at"))
        .order_by()
    )
    if not cut_off:
        return 0
    asked_back = dict(
        SupplyRequest.objects.filter(
            customer_id__in=list(cut_off), action=SupplyRequest.Action.RECONNECT
        )
        .values_list("customer_id")
        .annotate(last=Max("requested_at"))
        .order_by()
    )
    due = [
        cid
        for cid, last_cut in cut_off.items()
        if not in_arrears(cid) and (cid not in asked_back or asked_back[cid] < last_cut)
    ]
    for customer in Customer.objects.filter(pk__in=due):
        supply.request(
            customer=customer,
            action=SupplyRequest.Action.RECONNECT,
            reason=SupplyRequest.Reason.TOP_UP,
            detail="Arrears cleared after a disconnection for arrears",
        )
    return len(due)


def _why_not(customer: Customer) -> str:
    if customer.critical_load:
        return "critical load"
    return f"account {customer.get_status_display().lower()}"


def _notify(
    site: Site,
    customer: Customer,
    template: str,
    rows: list[dict],
    amount: Decimal,
    today: dt.date,
    now: dt.datetime,
    *,
    due_date: dt.date | None = None,
    disconnect_from: dt.date | None = None,
) -> bool:
    """Send one message about ``rows`` and log it against each; False if it could not go."""
    context = {
        "name": customer.first_name,
        "account": customer.account_number,
        "currency": site.currency,
        "amount": fmt(amount, site.currency),
    }
    if template == REMINDER:
        context["due_date"] = f"{due_date.day} {due_date:%b}"
        kind = CollectionNotice.Kind.REMINDER
    else:
        context["date"] = f"{disconnect_from.day} {disconnect_from:%b}"
        kind = CollectionNotice.Kind.NOTICE
    try:
        message = send_message(
            to=customer.phone,
            template=template,
            context=context,
            language=customer.language,
            about=f"customers.customer:{customer.pk}",
            site_id=site.pk,
            now=now,
            timezone=site.timezone,
        )
    except TemplateMissing:
        log.error("No %s template: %s not told about %s", template, customer, rows)
        return False
    CollectionNotice.objects.bulk_create(
        CollectionNotice(
            invoice_id=row["id"],
            customer=customer,
            kind=kind,
            sent_at=now,
            sent_on=today,
            amount=amount,
            message=message,
            disconnect_from=disconnect_from,
        )
        for row in rows
    )
    return True
