"""Billing runs per site and period: preview, post, progress, resume. See docs/billing.md.

A run bills one site's postpaid customers for one month of local days:

1. :func:`run_start` creates the run (one per site and month) and queues its preview.
2. :func:`preview` prices every postpaid customer who was active in the period and
   stores the result in a :class:`BillingRunItem` per account: ``ready`` with the bill
   lines, or ``held`` with the reason (no meter, no tariff, too little data, nothing
   to bill). Nothing is posted. A preview may be run again until the run is posted;
   it never touches an account already invoiced.
3. :func:`post` issues, for each ``ready`` item, one :class:`Invoice` with its lines
   and one ledger posting, in chunks. Each chunk is one transaction, so a killed
   worker loses at most the chunk it was in; running :func:`post` again skips what is
   invoiced and carries on. One invoice per account and period is also a database
   constraint, and the posting's reference is the invoice number, which the ledger
   posts once per site.

Consumption is read from the hourly rollups (validated and estimated data only) over
the hours each meter served the customer, so a bill across a meter change uses both
meters. The hours are read for many customers at once, summed by the classes of hours
the tariff prices alike (see :func:`_hour_classes`), and priced by the tariff engine.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Max, Q, Sum

from billing import invoicing
from billing.ledger import (
    DuplicatePostingError,
    LedgerError,
    account,
    check_open,
    minor_unit,
)
from billing.models import (
    BillingPolicy,
    BillingRun,
    BillingRunItem,
    Invoice,
    InvoiceLine,
    LedgerAccount,
    Posting,
    PostingLine,
    ServicePackage,
    Tariff,
)
from billing.payments import allocation
from billing.payments.models import Payment
from billing.tariffs import (
    Calendar,
    DemandInterval,
    Interval,
    TariffError,
    demand_from_register,
    price_period,
    tou_period,
)
from customers.models import Customer, CustomerStatusChange
from mcoms.core import audit, clock, outbox
from mcoms.core.models import AuditEvent, Site, User
from metering.consumption import BILLABLE, ceil_hour, local_midnight, next_month
from metering.models import MeterAssignment, Reading

log = logging.getLogger(__name__)

ZERO = Decimal(0)
KWH = Decimal("0.001")
HOUR = dt.timedelta(hours=1)
# An account is held when more than this share of the hours a meter served it in the
# period have no validated or estimated value in the hourly rollups.
MISSING_LIMIT = Decimal("0.20")
PREVIEW_CHUNK = 20000  # accounts whose usage is read in one query (PostgreSQL)
PREVIEW_STEP = 1000  # accounts priced and stored between two progress updates
POST_CHUNK = 1000  # accounts invoiced in one transaction (setting BILLING_POST_CHUNK)
# A lost database connection (a restart): the chunk rolls back and the task tries again.
DATABASE_LOST = (OperationalError, InterfaceError)
# A previewing or posting run with no progress for this long may be started again.
STALE_AFTER = dt.timedelta(minutes=10)
Kind = LedgerAccount.Kind
# Which ledger account each kind of bill line is credited to.
LEDGER_PART = {
    "fixed": Kind.REVENUE_FIXED,
    "energy": Kind.REVENUE_ENERGY,
    "demand": Kind.REVENUE_ENERGY,
    "levy": Kind.LEVIES_PAYABLE,
    "vat": Kind.VAT_PAYABLE,
}


class RunError(LedgerError):
    """A run that cannot do what was asked (wrong state, period not over, …)."""


# --- Periods and the run itself -----------------------------------------------------------


def month_period(month: dt.date) -> tuple[dt.date, dt.date]:
    """The local days ``[first, first of next month)`` of ``month``."""
    first = month.replace(day=1)
    return first, next_month(first)


def previous_month(day: dt.date) -> dt.date:
    """The first day of the month before ``day``'s."""
    return (day.replace(day=1) - dt.timedelta(days=1)).replace(day=1)


def period_bounds(site: Site, run: BillingRun) -> tuple[dt.datetime, dt.datetime]:
    """The run's period as UTC instants (local midnights of the site)."""
    return local_midnight(run.period_start, site.zone), local_midnight(run.period_end, site.zone)


def run_start(
    *, site: Site, month: dt.date, by: User | None = None, now: dt.datetime | None = None,
    queue: bool = True,
) -> BillingRun:
    """The site's run for ``month`` (created if new), with its preview queued after commit.

    Refused while the month is not over in the site's time. Starting an existing run
    again re-runs its preview unless it is posting or posted.
    """
    at = clock.resolve(now)
    start, end = month_period(month)
    if at.astimezone(site.zone).date() < end:
        raise RunError(f"{start:%B %Y} is not over yet on {site}; bill it from {end:%-d %B}.")
    with transaction.atomic():
        run, created = BillingRun.objects.select_for_update().get_or_create(
            site=site,
            period_start=start,
            defaults={"period_end": end, "started_by": by, "created_at": at, "updated_at": at},
        )
        if created:
            audit.record(AuditEvent.Action.CREATE, run, after=audit.snapshot(run), site=site)
        elif run.status == BillingRun.Status.POSTING:
            return run  # being posted: post_start resumes it when it stalls
        elif run.status == BillingRun.Status.PREVIEWING and not stale(run):
            return run  # already under way
        elif run.status == BillingRun.Status.POSTED and not run.items.filter(
            status=BillingRunItem.Status.HELD
        ).exists():
            return run  # posted, nothing held: nothing left to do
        if queue:
            from billing import tasks

            outbox.enqueue(tasks.preview_run, (run.pk,))
    return run


def stale(run: BillingRun, now: dt.datetime | None = None) -> bool:
    """A run marked as working that has shown no progress for a while (its worker died)."""
    return clock.resolve(now) - run.updated_at > STALE_AFTER


def _set(run: BillingRun, **fields) -> None:
    fields["updated_at"] = clock.now()
    for name, value in fields.items():
        setattr(run, name, value)
    BillingRun.objects.filter(pk=run.pk).update(**fields)


# --- Who is billed ------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    """A customer to bill, as much as the run needs of them."""

    pk: int
    account_number: str
    package: str
    tariff_id: int | None


def billable_customers(site: Site, start: dt.datetime, end: dt.datetime) -> list[Account]:
    """The site's postpaid customers who were active at some moment in ``[start, end)``.

    Active is read from the status history; a customer without history counts by
    their current status from when it last changed.
    """
    candidates = list(
        Customer.objects.filter(
            site=site,
            package__payment_mode=ServicePackage.PaymentMode.POSTPAID,
            created_at__lt=end,
        )
        .order_by("account_number")
        .values_list(
            "pk", "account_number", "package__name", "package__tariff_id", "status",
            "status_changed_at",
        )
    )
    history: dict[int, list[tuple[dt.datetime, str]]] = defaultdict(list)
    # In the order recorded: a change back-dated before the account's creation entry
    # still comes after it.
    changes = CustomerStatusChange.objects.filter(
        customer__site=site, customer__package__payment_mode=ServicePackage.PaymentMode.POSTPAID,
        at__lt=end,
    ).order_by("id")
    for customer_id, at, status in changes.values_list("customer_id", "at", "to_status"):
        history[customer_id].append((at, status))
    active = Customer.Status.ACTIVE
    out = []
    for pk, number, package, tariff_id, status, changed_at in candidates:
        steps = history.get(pk)
        if not steps:
            billed = status == active and changed_at < end
        else:
            before = [s for at, s in steps if at <= start]
            billed = (bool(before) and before[-1] == active) or any(
                s == active for at, s in steps if start < at
            )
        if billed:
            out.append(Account(pk, number, package, tariff_id))
    return out


# --- Reading consumption in bulk ------------------------------------------------------------


@dataclass
class _Group:
    """Customers billed under one tariff, and how that tariff classes the period's hours."""

    tariff: Tariff
    schedule: list
    hours: dict[dt.datetime, int]  # UTC hour -> class
    representative: list[dt.datetime]  # class -> an hour of it
    demand_minutes: int | None
    customers: list[Account] = field(default_factory=list)


def _calendar(site: Site) -> Calendar:
    return Calendar(site.zone, frozenset(site.holidays.values_list("date", flat=True)))


def _hour_classes(
    schedule: list, start: dt.datetime, end: dt.datetime, calendar: Calendar
) -> tuple[dict[dt.datetime, int], list[dt.datetime]]:
    """Class each UTC hour of the period by what prices it: tariff version and TOU period.

    Hours in one class are priced alike by an energy-only tariff, so their usage can
    be summed before pricing without changing the bill (the engine's property). When
    a time-of-use window starts off the hour, every hour is its own class.
    """
    hours: dict[dt.datetime, int] = {}
    keys: dict[tuple, int] = {}
    representative: list[dt.datetime] = []
    whole_hours = all(cut % 60 == 0 for force in schedule for cut in force.terms.cuts)
    h = start
    while h < end:
        local = h.astimezone(calendar.zone)
        day = local.date()
        version = next(
            (
                i
                for i, f in enumerate(schedule)
                if f.effective_from <= day and (f.effective_to is None or day < f.effective_to)
            ),
            -1,
        )
        terms = schedule[version].terms if version >= 0 else None
        if not whole_hours:
            key: tuple = (h,)
        elif terms is not None and terms.tou_rates:
            key = (version, tou_period(terms, local, calendar))
        else:
            key = (version,)
        if key not in keys:
            keys[key] = len(representative)
            representative.append(h)
        hours[h] = keys[key]
        h += HOUR
    return hours, representative


def served_spans(
    customers: list[Customer], start: dt.datetime, end: dt.datetime
) -> dict[int, list[tuple[int, dt.datetime, dt.datetime]]]:
    """For each customer: ``(meter, from, until)`` whole hours its meters served it.

    As :func:`metering.consumption.served_periods`: clipped to the range, an hour
    belongs to whom the meter served at its start.
    """
    spans: dict[int, list] = defaultdict(list)
    rows = (
        MeterAssignment.objects.filter(customer__in=[c.pk for c in customers], start__lt=end)
        .filter(Q(end__isnull=True) | Q(end__gt=start))
        .values_list("customer_id", "meter_id", "start", "end")
    )
    for customer_id, meter_id, served_from, served_until in rows:
        low = ceil_hour(max(served_from, start))
        high = ceil_hour(min(served_until or end, end))
        if low < high:
            spans[customer_id].append((meter_id, low, high))
    return dict(spans)


def _values_sql(rows: list[tuple], kinds: tuple[str, ...]) -> tuple[str, list]:
    """``(VALUES (...), ...)`` and its parameters, as SQLite stores the values."""
    ops = connection.ops
    params: list = []
    for row in rows:
        for value, kind in zip(row, kinds, strict=True):
            params.append(ops.adapt_datetimefield_value(value) if kind == "timestamptz" else value)
    one = ", ".join("%s" for _ in kinds)
    return "(VALUES " + ", ".join(f"({one})" for _ in rows) + ")", params


def _decimal(value) -> Decimal:
    if isinstance(value, Decimal):
        return value
    return Decimal(repr(value)).quantize(KWH)  # SQLite sums decimals as floats


def usage_by_class(
    spans: list[tuple[int, int, dt.datetime, dt.datetime, int]],
    classes: list[tuple[dt.datetime, int, int]],
) -> dict[int, dict[int, list]]:
    """Per customer and hour class: ``[kWh, estimated kWh, hours with a value]``.

    ``spans`` are ``(meter, customer, from, until, group)``: when a meter served a
    customer billed under ``group``; ``classes`` are ``(UTC hour, group, class)``. One
    query over the hourly rollups for every customer given.
    """
    out: dict[int, dict[int, list]] = defaultdict(dict)
    if not spans or not classes:
        return out
    if connection.vendor == "postgresql":
        return _usage_pg(spans, classes)
    spans_sql, spans_params = _values_sql(
        spans, ("bigint", "bigint", "timestamptz", "timestamptz", "bigint")
    )
    hours_sql, hours_params = _values_sql(classes, ("timestamptz", "bigint", "integer"))
    sql = f"""
        SELECT s.column2, k.column3, SUM(h.kwh), SUM(h.estimated_kwh), COUNT(*)
        FROM metering_hourlyusage h
        JOIN {spans_sql} AS s
          ON h.meter_id = s.column1 AND h.hour >= s.column3 AND h.hour < s.column4
        JOIN {hours_sql} AS k ON h.hour = k.column1 AND k.column2 = s.column5
        GROUP BY s.column2, k.column3
    """
    params = spans_params + hours_params
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for customer_id, cls, kwh, est, count in cursor.fetchall():
            out[customer_id][cls] = [_decimal(kwh or 0), _decimal(est or 0), count]
    return out


def _usage_pg(spans, classes) -> dict[int, dict[int, list]]:
    """The same on PostgreSQL, as one plain aggregate so that it runs in parallel.

    The meter assignments are joined as stored: for whole-hour rows, ``start <= hour <
    end`` is the rule that an hour belongs to whom the meter served at its start. A
    tariff that prices hours differently (time of use, a change in the period) looks
    each hour's class up in an array by hour; every other tariff's hours are class 0.
    """
    out: dict[int, dict[int, list]] = defaultdict(dict)
    multi = sorted({grp for _, grp, cls in classes if cls})
    customers = sorted({row[1] for row in spans})
    low = min(row[2] for row in spans)
    high = max(row[3] for row in spans)
    first = min(hour for hour, _, _ in classes)
    width = int((max(hour for hour, _, _ in classes) - first) / HOUR) + 1
    cases, params = [], []
    for grp in multi:
        lookup = [0] * width
        for hour, g, cls in classes:
            if g == grp:
                lookup[int((hour - first) / HOUR)] = cls
        cases.append(
            "WHEN %s THEN (%s::integer[])[(date_part('epoch', h.hour)::bigint - %s) / 3600 + 1]"
        )
        params += [grp, lookup, int(first.timestamp())]
    cls = f"CASE p.tariff_id {' '.join(cases)} ELSE 0 END" if cases else "0"
    sql = f"""
        SELECT a.customer_id, {cls}, SUM(h.kwh), SUM(h.estimated_kwh), COUNT(*)
        FROM metering_hourlyusage h
        JOIN metering_meterassignment a ON a.meter_id = h.meter_id
        JOIN customers_customer c ON c.id = a.customer_id
        JOIN billing_servicepackage p ON p.id = c.package_id
        WHERE c.id = ANY(%s::bigint[]) AND h.hour >= %s AND h.hour < %s
          AND h.hour >= a.start AND (a."end" IS NULL OR h.hour < a."end")
        GROUP BY 1, 2
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '64MB'")  # one big aggregate, kept in memory
        cursor.execute("SET LOCAL jit = off")  # compiling costs more than it saves here
        # The class expression hides how few groups there are: ask for the parallel plan.
        cursor.execute("SET LOCAL parallel_tuple_cost = 0")
        cursor.execute(sql, [*params, customers, max(low, first), high])
        for customer_id, cls_, kwh, est, count in cursor.fetchall():
            out[customer_id][cls_] = [kwh or ZERO, est or ZERO, count]
    return out


def demand_intervals(
    spans: list[tuple[int, dt.datetime, dt.datetime]], minutes: int
) -> list[DemandInterval]:
    """Demand intervals from each serving meter's register while it served the customer."""
    out: list[DemandInterval] = []
    for meter_id, low, high in spans:
        rows = Reading.objects.filter(
            meter_id=meter_id,
            ts__gte=low,
            ts__lte=high,
            quality__in=BILLABLE,
            energy_kwh__isnull=False,
        ).values_list("ts", "energy_kwh", "power_factor")
        readings = [(ts, kwh, Decimal(str(pf)) if pf is not None else None) for ts, kwh, pf in rows]
        out += [d for d in demand_from_register(readings, minutes) if low <= d.start < high]
    return out


# --- Preview --------------------------------------------------------------------------------


@dataclass
class Priced:
    """One account's outcome: a bill's lines, or the reason it is held."""

    status: str
    kwh: Decimal | None = None
    total: Decimal | None = None
    estimated: bool = False
    lines: list = field(default_factory=list)
    reason: str = ""


def _held(reason: str) -> Priced:
    return Priced(status=BillingRunItem.Status.HELD, reason=reason[:300])


def _line_json(line) -> dict:
    return {
        "kind": line.kind,
        "description": line.description,
        "quantity": str(line.quantity),
        "unit": line.unit,
        "rate": str(line.rate),
        "amount": str(line.amount),
        "starts": line.starts.isoformat(),
        "ends": line.ends.isoformat(),
        "estimated": line.estimated,
    }


def _groups(accounts: list[Account], start, end, calendar) -> tuple[dict, dict[int, Priced]]:
    """Accounts by tariff (with the tariff's hour classes), and those held for no tariff."""
    groups: dict[int, _Group] = {}
    held: dict[int, Priced] = {}
    broken: dict[int, str] = {}
    tariffs = Tariff.objects.in_bulk({a.tariff_id for a in accounts if a.tariff_id})
    for account_ in accounts:
        if account_.tariff_id is None:
            held[account_.pk] = _held(f"Package {account_.package} has no tariff.")
            continue
        if account_.tariff_id in broken:
            held[account_.pk] = _held(broken[account_.tariff_id])
            continue
        if account_.tariff_id not in groups:
            tariff = tariffs[account_.tariff_id]
            try:
                schedule = tariff.in_force()
            except TariffError as exc:
                broken[tariff.pk] = f"Tariff {tariff.code}: {exc}"
                held[account_.pk] = _held(broken[tariff.pk])
                continue
            hours, rep = _hour_classes(schedule, start, end, calendar)
            minutes = next(
                (f.terms.demand.interval_minutes for f in schedule if f.terms.demand), None
            )
            groups[tariff.pk] = _Group(tariff, schedule, hours, rep, minutes)
        groups[account_.tariff_id].customers.append(account_)
    return groups, held


def price_customers(site: Site, run: BillingRun, accounts: list[Account]) -> dict[int, Priced]:
    """Price ``accounts`` for the run's period: a bill or a reason to hold, per account."""
    out: dict[int, Priced] = {}
    for _, priced in price_parts(site, run, accounts, step=len(accounts) or 1):
        out.update(priced)
    return out


def price_parts(site: Site, run: BillingRun, accounts: list[Account], *, step: int):
    """Read the accounts' usage in one query, then yield ``(accounts, priced)`` by ``step``."""
    start, end = period_bounds(site, run)
    calendar = _calendar(site)
    groups, held = _groups(accounts, start, end, calendar)
    billed = [c for group in groups.values() for c in group.customers]
    spans = served_spans(billed, start, end)
    group_of = {c.pk: key for key, group in groups.items() for c in group.customers}
    span_rows = [
        (meter, cid, low, high, group_of[cid])
        for cid, items in spans.items()
        for meter, low, high in items
    ]
    classes = [
        (hour, key, cls) for key, group in groups.items() for hour, cls in group.hours.items()
    ]
    usage = usage_by_class(span_rows, classes)
    group_by_pk = {pk: groups[key] for pk, key in group_of.items()}
    for n in range(0, len(accounts), step):
        part = accounts[n : n + step]
        priced = {}
        for a in part:
            if a.pk in held:
                priced[a.pk] = held[a.pk]
                continue
            priced[a.pk] = _price_one(
                a, group_by_pk[a.pk], spans.get(a.pk, []), usage.get(a.pk, {}), run,
                site.currency, calendar,
            )
        yield part, priced


def _price_one(customer, group: _Group, spans, usage, run, currency, calendar) -> Priced:
    served = sum(int((high - low) / HOUR) for _, low, high in spans)
    if not served:
        return _held("No meter served this account in the period.")
    have = sum(cell[2] for cell in usage.values())
    missing = served - have
    if Decimal(missing) > MISSING_LIMIT * served:
        return _held(
            f"{missing} of {served} metered hours have no reading "
            f"(more than {MISSING_LIMIT:.0%}); check the meter and readings."
        )
    intervals = [
        Interval(group.representative[cls], group.representative[cls] + HOUR, kwh, est)
        for cls, (kwh, est, _) in usage.items()
    ]
    demand = demand_intervals(spans, group.demand_minutes) if group.demand_minutes else []
    try:
        bill = price_period(
            starts=run.period_start,
            ends=run.period_end,
            currency=currency,
            schedule=group.schedule,
            calendar=calendar,
            usage=intervals,
            demand=demand,
        )
    except TariffError as exc:
        return _held(f"Tariff {group.tariff.code}: {exc}")
    if bill.total <= 0:
        return _held("Nothing to bill: the bill comes to zero.")
    return Priced(
        status=BillingRunItem.Status.READY,
        kwh=bill.kwh,
        total=bill.total,
        estimated=bill.estimated,
        lines=[_line_json(line) for line in bill.lines],
    )


def _preview_chunk() -> int:
    # PostgreSQL takes the usage of a chunk as arrays; SQLite as bound values (fewer).
    return PREVIEW_CHUNK if connection.vendor == "postgresql" else 300


def preview(run_id: int, *, limit: int | None = None) -> BillingRun:
    """Price every account of the run and store the items; no ledger postings.

    Accounts already invoiced are left alone; every other item is priced afresh.
    ``limit`` stops after that many accounts, as a killed worker would; the run then
    stays ``previewing`` until it is previewed again.
    """
    with transaction.atomic():
        run = BillingRun.objects.select_for_update().select_related("site").get(pk=run_id)
        if run.status == BillingRun.Status.POSTING and not stale(run):
            raise RunError("The run is being posted; wait for it to finish.")
        _set(run, status=BillingRun.Status.PREVIEWING, error="", previewed_at=None)
    site = run.site
    try:
        start, end = period_bounds(site, run)
        customers = billable_customers(site, start, end)
        invoiced = set(
            run.items.filter(status=BillingRunItem.Status.INVOICED).values_list(
                "customer_id", flat=True
            )
        )
        run.items.exclude(status=BillingRunItem.Status.INVOICED).delete()
        todo = [c for c in customers if c.pk not in invoiced]
        total = len({c.pk for c in customers} | invoiced)
        _set(run, total=total, done=len(invoiced), held=0)
        done, held, priced_count = len(invoiced), 0, 0
        size = _preview_chunk()
        for n in range(0, len(todo), size):
            block = todo[n : n + size]
            if limit is not None:
                block = block[: max(limit - priced_count, 0)]
                if not block:
                    return run
            for part, priced in price_parts(site, run, block, step=PREVIEW_STEP):
                _insert(BillingRunItem, [_item(run, c, priced[c.pk]) for c in part])
                priced_count += len(part)
                done += len(part)
                held += sum(1 for p in priced.values() if p.status == BillingRunItem.Status.HELD)
                _set(run, done=done, held=held)
            if limit is not None and priced_count >= limit and priced_count < len(todo):
                return run  # stopped part-way, as a lost worker would
        _set(run, status=BillingRun.Status.PREVIEWED, previewed_at=clock.now())
    except DATABASE_LOST:
        raise  # the task tries again (billing.tasks); the run is not failed for it
    except Exception as exc:
        _set(run, status=BillingRun.Status.FAILED, error=f"Preview failed: {exc}"[:2000])
        raise
    return run


def _item(run: BillingRun, customer: Customer, p: Priced) -> dict:
    return {
        "run_id": run.pk, "customer_id": customer.pk, "status": p.status, "kwh": p.kwh,
        "total": p.total, "estimated": p.estimated, "reason": p.reason, "lines": p.lines,
        "invoice_id": None,
    }


# --- Posting --------------------------------------------------------------------------------


def post_start(*, run: BillingRun, by: User, queue: bool = True) -> BillingRun:
    """Ask for a previewed run to be posted (by a person: previews are checked first)."""
    with transaction.atomic():
        run = BillingRun.objects.select_for_update().get(pk=run.pk)
        resumable = run.status == BillingRun.Status.POSTING and stale(run)
        if run.status not in (BillingRun.Status.PREVIEWED, BillingRun.Status.FAILED) and not (
            resumable
        ):
            raise RunError(f"Only a previewed run can be posted; this one is {run.status}.")
        if run.previewed_at is None:
            raise RunError("The preview did not finish; preview the run again.")
        if not run.items.filter(status=BillingRunItem.Status.READY).exists():
            raise RunError("Nothing is ready to post.")
        before = audit.snapshot(run, ["status"])
        _set(run, status=BillingRun.Status.POSTING, error="")
        audit.record(
            AuditEvent.Action.TRANSITION, run, before=before,
            after=audit.snapshot(run, ["status"]), site=run.site_id, note=f"posting asked by {by}",
        )
        if queue:
            from billing import tasks

            by_id = by.pk
            outbox.enqueue(tasks.post_run, (run.pk, by_id))
    return run


def post(
    run_id: int,
    *,
    by: User | None = None,
    limit: int | None = None,
    now: dt.datetime | None = None,
) -> BillingRun:
    """Issue an invoice for every ready item of the run, a chunk per transaction.

    Skips items already invoiced, so running it again after a failure (or a killed
    worker) carries on where it stopped. ``limit`` stops after that many invoices.
    """
    run = BillingRun.objects.select_related("site").get(pk=run_id)
    if run.previewed_at is None or run.status == BillingRun.Status.PREVIEWING:
        raise RunError(f"Preview the run before posting it (it is {run.status}).")
    items = run.items
    invoiced = items.filter(status=BillingRunItem.Status.INVOICED).count()
    ready = list(
        items.filter(status=BillingRunItem.Status.READY).order_by("customer__account_number")
        .values_list("pk", flat=True)
    )
    held = items.filter(status=BillingRunItem.Status.HELD).count()
    _set(run, status=BillingRun.Status.POSTING, total=invoiced + len(ready), done=invoiced,
         held=held, error="")
    posted = 0
    chunk = settings.BILLING_POST_CHUNK
    try:
        for n in range(0, len(ready), chunk):
            ids = ready[n : n + chunk]
            if limit is not None:
                ids = ids[: max(limit - posted, 0)]
            made = post_items(run, ids, by=by, now=now)
            posted += made
            _set(run, done=run.done + made)
            if limit is not None and posted >= limit and posted < len(ready):
                return run  # stopped part-way, as a lost worker would
        _set(run, status=BillingRun.Status.POSTED, posted_at=clock.now())
    except DATABASE_LOST:
        raise  # the task tries again (billing.tasks); the run is not failed for it
    except Exception as exc:
        _set(run, status=BillingRun.Status.FAILED, error=f"Posting stopped: {exc}"[:2000])
        raise
    from billing import tasks

    outbox.enqueue(tasks.send_bills, (run.pk,))
    return run


@dataclass
class _Balance:
    before: Decimal = ZERO  # receivable before this invoice
    since: Decimal = ZERO  # movements since the last invoice
    payments: Decimal = ZERO  # payments among them (positive)


@dataclass(frozen=True)
class _Acct:
    """A ledger account as the bulk path needs it."""

    pk: int
    key: str


def _receivables(site: Site, customer_ids: list[int]) -> dict[int, _Acct]:
    """Each customer's receivable account, created in bulk where missing."""
    keys = {cid: f"{site.pk}:{site.currency}:{Kind.RECEIVABLE}:{cid}" for cid in customer_ids}

    def found() -> dict[str, int]:
        rows = LedgerAccount.objects.filter(key__in=keys.values()).values_list("key", "pk")
        return dict(rows)

    known = found()
    missing = [
        LedgerAccount(
            key=key, site=site, currency=site.currency, kind=Kind.RECEIVABLE, customer_id=cid
        )
        for cid, key in keys.items()
        if key not in known
    ]
    if missing and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO billing_ledgeraccount (key, site_id, currency, kind, customer_id,
                                                   provider)
                SELECT k, %s, %s, %s, c, '' FROM unnest(%s::text[], %s::bigint[]) AS u(k, c)
                ON CONFLICT (key) DO NOTHING
                """,
                [
                    site.pk, site.currency, Kind.RECEIVABLE,
                    [a.key for a in missing], [a.customer_id for a in missing],
                ],
            )
        known = found()
    elif missing:
        LedgerAccount.objects.bulk_create(missing, ignore_conflicts=True, batch_size=2000)
        known = found()
    return {cid: _Acct(known[key], key) for cid, key in keys.items()}


def _balances(accounts: dict[int, _Acct]) -> dict[int, _Balance]:
    """Per customer: receivable balance, movements since their last invoice, payments."""
    by_account = {a.pk: cid for cid, a in accounts.items()}
    out = {cid: _Balance() for cid in accounts}
    totals = (
        PostingLine.objects.filter(account__in=by_account)
        .values("account_id")
        .order_by()
        .annotate(s=Sum("amount"))
    )
    for row in totals:
        out[by_account[row["account_id"]]].before = row["s"]
    last = dict(
        Invoice.objects.filter(customer__in=list(accounts), kind=Invoice.Kind.INVOICE)
        .values("customer_id")
        .order_by()
        .annotate(p=Max("posting_id"))
        .values_list("customer_id", "p")
    )
    fresh = [a.pk for cid, a in accounts.items() if cid not in last]
    if fresh:
        rows = (
            PostingLine.objects.filter(account__in=fresh)
            .values("account_id", "posting__kind")
            .order_by()
            .annotate(s=Sum("amount"))
        )
        for row in rows:
            _since(out[by_account[row["account_id"]]], row["posting__kind"], row["s"])
    if last:
        rows = PostingLine.objects.filter(
            account__in=[accounts[cid].pk for cid in last], posting_id__gt=min(last.values())
        ).values_list("account_id", "posting_id", "posting__kind", "amount")
        for account_id, posting_id, kind, amount in rows:
            cid = by_account[account_id]
            if posting_id > last[cid]:
                _since(out[cid], kind, amount)
    return out


def _since(balance: _Balance, kind: str, amount: Decimal) -> None:
    balance.since += amount
    if kind == Posting.Kind.PAYMENT:
        balance.payments -= amount


def post_items(
    run: BillingRun, item_ids: list[int], *, by: User | None = None, now: dt.datetime | None = None
) -> int:
    """Invoice the given ready items in one transaction; returns how many were invoiced.

    The bulk path of the ledger for a run: the same checks as :func:`billing.ledger.post`
    (every posting balanced, amounts exact in the currency, the month open, each
    reference posted once per site, the site locked while posting), and the same audit.
    """
    with transaction.atomic():
        site = Site.objects.select_for_update().get(pk=run.site_id)
        at = clock.resolve(now)
        issued = at.astimezone(site.zone).date()
        check_open(site, issued)
        items = list(
            BillingRunItem.objects.select_for_update(of=("self",))
            .filter(pk__in=item_ids, status=BillingRunItem.Status.READY, invoice__isnull=True)
            .only("pk", "customer_id", "status", "kwh", "total", "estimated", "lines")
            .order_by("customer__account_number")
        )
        if not items:
            return 0
        ids = [i.customer_id for i in items]
        already = dict(
            Invoice.objects.filter(
                customer__in=ids, period_start=run.period_start, kind=Invoice.Kind.INVOICE
            ).values_list("customer_id", "pk")
        )
        if already:  # invoiced already (e.g. by an earlier attempt)
            _link([(i.pk, already[i.customer_id]) for i in items if i.customer_id in already])
            items = [i for i in items if i.customer_id not in already]
        if not items:
            return 0
        made = _issue(site, run, items, issued, at, by)
        _allocate([i.customer_id for i in items])
    return made


def _issue(site, run, items, issued, at, by) -> int:
    currency = site.currency
    unit = minor_unit(currency)
    policy = BillingPolicy.for_site(site)
    receivables = _receivables(site, [i.customer_id for i in items])
    numbers_of = dict(
        Customer.objects.filter(pk__in=receivables).values_list("pk", "account_number")
    )
    balances = _balances(receivables)
    revenue = {kind: account(site, kind) for kind in set(LEDGER_PART.values())}
    numbers = invoicing.next_numbers(site, run.period_start, len(items))
    taken = set(
        Posting.objects.filter(site=site, reference__in=numbers).values_list("reference", flat=True)
    )
    if taken:
        raise DuplicatePostingError(Posting.objects.filter(site=site, reference__in=taken).first())
    posting_ids = _ids(Posting, len(items))
    invoice_ids = _ids(Invoice, len(items))
    actor = audit.current_actor()
    actor_id = actor.user.pk if actor.user is not None and actor.user.pk else None
    by_id = by.pk if by is not None else None
    due = issued + dt.timedelta(days=policy.due_days)
    postings, posting_lines, invoices, invoice_lines, events, links = [], [], [], [], [], []
    for item, number, posting_id, invoice_id in zip(
        items, numbers, posting_ids, invoice_ids, strict=True
    ):
        parts: dict[str, Decimal] = defaultdict(Decimal)
        for position, data in enumerate(item.lines, start=1):
            amount = Decimal(data["amount"])
            if amount != amount.quantize(unit):
                raise LedgerError(
                    f"Account {numbers_of[item.customer_id]}: {amount} is not a whole amount "
                    f"of {currency}."
                )
            parts[LEDGER_PART[data["kind"]]] += amount
            invoice_lines.append(
                {
                    "invoice_id": invoice_id, "position": position, "kind": data["kind"],
                    "description": data["description"][:200],
                    "quantity": Decimal(data["quantity"]), "unit": data["unit"],
                    "rate": Decimal(data["rate"]), "amount": amount,
                    "starts": dt.date.fromisoformat(data["starts"]),
                    "ends": dt.date.fromisoformat(data["ends"]), "estimated": data["estimated"],
                }
            )
        total = sum(parts.values(), ZERO)
        if total != item.total or total <= 0:
            raise LedgerError(
                f"Account {numbers_of[item.customer_id]}: the lines do not add up to {item.total}."
            )
        ledger_lines = [(receivables[item.customer_id], total)] + [
            (revenue[kind], -amount) for kind, amount in parts.items() if amount
        ]
        if sum((x for _, x in ledger_lines), ZERO) != 0:
            raise LedgerError(f"Account {numbers_of[item.customer_id]}: debits and credits differ.")
        posting = {
            "id": posting_id, "site_id": site.pk, "currency": currency,
            "kind": Posting.Kind.INVOICE, "date": issued, "posted_at": at, "posted_by_id": by_id,
            "memo": f"Bill {number} for {run.period_start:%B %Y}", "reference": number,
            "reverses_id": None,
        }
        postings.append(posting)
        posting_lines += [
            {"posting_id": posting_id, "account_id": acct.pk, "amount": x}
            for acct, x in ledger_lines
        ]
        b = balances[item.customer_id]
        vat = parts.get(Kind.VAT_PAYABLE, ZERO)
        invoice = {
            "id": invoice_id, "number": number, "kind": Invoice.Kind.INVOICE,
            "customer_id": item.customer_id, "site_id": site.pk, "run_id": run.pk,
            "period_start": run.period_start, "period_end": run.period_end,
            "issued_on": issued, "due_on": due, "currency": currency,
            "kwh": item.kwh or ZERO, "estimated": item.estimated,
            "subtotal": item.total - vat, "vat": vat, "total": item.total,
            "previous_balance": (b.before - b.since).quantize(unit),
            "payments_since": b.payments.quantize(unit),
            "amount_due": (b.before + item.total).quantize(unit),
            "corrects_id": None, "reason": "", "posting_id": posting_id, "issued_by_id": by_id,
            "created_at": at,
        }
        invoices.append(invoice)
        links.append((item.pk, invoice_id))
        after = {k.removesuffix("_id"): _json(v) for k, v in posting.items()}
        after["lines"] = [[acct.key, str(x)] for acct, x in ledger_lines]
        label = Posting.Kind.INVOICE.label
        events.append(
            _event(actor, actor_id, at, "billing.posting", posting_id,
                   f"{label} #{posting_id} {issued} ({currency})", site, after, "invoice posted")
        )
        after = {k.removesuffix("_id"): _json(v) for k, v in invoice.items()}
        events.append(
            _event(actor, actor_id, at, "billing.invoice", invoice_id, f"Invoice {number}", site,
                   after, "invoice issued")
        )
    _insert(Posting, postings)
    _insert(PostingLine, posting_lines)
    _insert(Invoice, invoices)
    _insert(InvoiceLine, invoice_lines)
    _insert(AuditEvent, events)
    _link(links)
    return len(invoices)


def _ids(model, count: int) -> list[int]:
    """``count`` new primary keys of ``model`` (the site is locked while posting)."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [table, count],
            )
            return [row[0] for row in cursor.fetchall()]
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")  # noqa: S608
        first = cursor.fetchone()[0] + 1
    return list(range(first, first + count))


def _insert(model, rows: list[dict]) -> None:
    """Write ``rows`` (field attnames to values) as new rows: COPY on PostgreSQL."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create([model(**row) for row in rows], batch_size=500)
        return
    fields = [model._meta.get_field(name) for name in rows[0]]
    json_fields = {f.attname for f in fields if f.get_internal_type() == "JSONField"}
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    with connection.cursor() as cursor:
        sql = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({columns}) FROM STDIN"
        with cursor.cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(
                    [
                        json.dumps(v, cls=DjangoJSONEncoder) if k in json_fields and v is not None
                        else v
                        for k, v in row.items()
                    ]
                )


def _link(links: list[tuple[int, int]]) -> None:
    """Mark the items invoiced, each with its invoice."""
    if connection.vendor != "postgresql":
        objs = [
            BillingRunItem(pk=item_id, invoice_id=invoice_id, status=BillingRunItem.Status.INVOICED)
            for item_id, invoice_id in links
        ]
        BillingRunItem.objects.bulk_update(objs, ["status", "invoice"], batch_size=500)
        return
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE billing_billingrunitem AS i SET status = %s, invoice_id = v.invoice
            FROM unnest(%s::bigint[], %s::bigint[]) AS v(item, invoice) WHERE i.id = v.item
            """,
            [BillingRunItem.Status.INVOICED, [a for a, _ in links], [b for _, b in links]],
        )


def _json(value: object) -> object:
    """A field value as an audit snapshot holds it."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):  # dates and datetimes
        return value.isoformat()
    return value


def _event(actor, actor_id, at, object_type, object_id, text, site, after, note) -> dict:
    return {
        "at": at, "actor_id": actor_id, "actor_label": actor.label[:150],
        "channel": actor.channel, "action": AuditEvent.Action.CREATE,
        "object_type": object_type, "object_id": str(object_id), "object_repr": text[:200],
        "site_id": site.pk, "before": None, "after": after, "note": note,
    }


def _allocate(customer_ids: list[int]) -> None:
    """Set existing credit (payments, credit notes not yet used) against the new invoices."""
    with_money = set(
        Payment.objects.filter(
            customer__in=customer_ids, status=Payment.Status.COMPLETED
        ).values_list("customer_id", flat=True)
    ) | set(
        Invoice.objects.filter(
            customer__in=customer_ids, kind=Invoice.Kind.CREDIT_NOTE
        ).values_list("customer_id", flat=True)
    )
    for customer in Customer.objects.filter(pk__in=with_money):
        allocation.allocate(customer)


# --- The monthly schedule ---------------------------------------------------------------------


def due_runs(*, now: dt.datetime | None = None) -> list[BillingRun]:
    """Start the previous month's run of every site whose run moment has passed.

    The moment is the site policy's ``run_day`` at ``run_hour``, site time. A site
    that already has a run for that month is left alone. The runs stop at the
    preview: a billing officer checks it and posts it from the run's page.
    """
    at = clock.resolve(now)
    started = []
    policies = {p.site_id: p for p in BillingPolicy.objects.all()}
    for site in Site.objects.all():
        policy = policies.get(site.pk) or BillingPolicy(site=site)
        local = at.astimezone(site.zone)
        month = previous_month(local.date())
        moment = dt.datetime.combine(
            local.date().replace(day=policy.run_day), dt.time(policy.run_hour), tzinfo=site.zone
        )
        if local < moment:
            continue
        if BillingRun.objects.filter(site=site, period_start=month).exists():
            continue
        with audit.acting_as(label="monthly billing run", channel=AuditEvent.Channel.TASK):
            started.append(run_start(site=site, month=month, now=at))
    return started
