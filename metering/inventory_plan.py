"""Planning a meter sheet import: what each row would do, or every reason it cannot.

Rows come from :func:`metering.inventory_parse.read_table`. Nothing here writes;
:mod:`metering.inventory` applies a plan.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils import timezone

from mcoms.core import clock
from mcoms.core.models import Site, User
from mcoms.core.roles import Cap
from mcoms.core.selectors import sites_visible_to
from metering import inventory_parse as p
from metering import services
from metering.addressing import address_problems
from metering.lifecycle import FORWARD_PATH, HOLDS_ADDRESS, Status, can_move, forward_steps
from metering.models import Gateway, Meter
from metering.selectors import meters_visible_to

CREATE, UPDATE, UNCHANGED, ERROR = "create", "update", "unchanged", "error"
S = Status
_MODELS = p.choice_keys(Meter.Model.choices)
_STATUSES = p.choice_keys(Status.choices)
_CHINT_PHASES = services.PHASES


@dataclass
class Step:
    """One lifecycle step to take, with the date and signer the sheet gives it."""

    status: str
    at: dt.datetime
    by_name: str


@dataclass
class RowPlan:
    """What importing one row would do, or why it cannot be imported."""

    line: int
    serial: str
    action: str = ERROR
    errors: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    meter: Meter | None = None
    model: str = ""
    phases: int | None = None
    site: Site | None = None
    address: int | None = None
    gateway: Gateway | None = None
    updates: dict = field(default_factory=dict)
    ct_ratio: Decimal | None = None
    label: str = ""
    notes: str = ""
    steps: list[Step] = field(default_factory=list)
    created_at: dt.datetime | None = None


@dataclass
class Preview:
    """Every row's plan, plus warnings about the file as a whole."""

    rows: list[RowPlan]
    warnings: list[str] = field(default_factory=list)

    def count(self, action: str) -> int:
        """How many rows would get ``action``."""
        return sum(1 for row in self.rows if row.action == action)

    @property
    def bad_rows(self) -> list[RowPlan]:
        """Rows that will be skipped."""
        return [row for row in self.rows if row.action == ERROR]

    @property
    def summary(self) -> str:
        """One line: how many rows to create, update, leave, and skip."""
        return (
            f"{self.count(CREATE)} to create, {self.count(UPDATE)} to update, "
            f"{self.count(UNCHANGED)} unchanged, {self.count(ERROR)} bad rows will be skipped"
        )


def plan_path(current: str, target: str, dated: set[str]) -> list[str] | None:
    """The lifecycle steps from ``current`` to ``target``, or None when import cannot go there.

    Off the normal path (retest, replaced, decommissioned) the meter first walks
    forward to the furthest step the sheet dates, so its history is kept.
    """
    if current == target:
        return []
    steps = forward_steps(current, target)
    if steps is not None:
        return steps
    bases = [
        s for s in FORWARD_PATH if can_move(s, target) and forward_steps(current, s) is not None
    ]
    chosen = [s for s in bases if s in dated]
    if chosen:
        return [*forward_steps(current, chosen[-1]), target]
    if can_move(current, target):
        return [target]
    if bases:
        return [*forward_steps(current, bases[0]), target]
    return None


class _Context:
    """What every row's check needs, fetched once per import."""

    def __init__(self, rows: list[dict], user: User, now: dt.datetime):
        self.user, self.now = user, now
        sites = list(Site.objects.all())
        # A site is found by its name or, failing that, its short code.
        self.sites = {p.norm_key(s.code): s for s in sites} | {p.norm_key(s.name): s for s in sites}
        allowed = user.can(Cap.METERS_IMPORT)
        self.scope = set(sites_visible_to(user).values_list("pk", flat=True)) if allowed else set()
        serials = {p.parse_serial(r.get(p.SERIAL))[0] for r in rows}
        self.meters = {m.serial: m for m in Meter.objects.filter(serial__in=serials)}
        self.visible = set(
            meters_visible_to(user).filter(serial__in=serials).values_list("pk", flat=True)
        )
        self.gateways: dict[int, list[Gateway]] = defaultdict(list)
        for gateway in Gateway.objects.all():
            self.gateways[gateway.site_id].append(gateway)
        self.bus_load: dict[int, int] = {}

    def on_bus(self, gateway: Gateway) -> int:
        if gateway.pk not in self.bus_load:
            self.bus_load[gateway.pk] = gateway.meters.filter(status__in=HOLDS_ADDRESS).count()
        return self.bus_load[gateway.pk]


def plan_rows(
    rows: list[dict], user: User, *, now: dt.datetime | None = None, warnings=()
) -> Preview:
    """Validate every row (read by :func:`read_table`) and say what importing it would do."""
    ctx = _Context(rows, user, clock.resolve(now))
    plans = [_plan_row(row, ctx) for row in rows]
    _flag_duplicates(plans, rows)
    for row in plans:
        if row.errors:
            row.action = ERROR
    return Preview(rows=plans, warnings=list(warnings))


def _flag_duplicates(plans: list[RowPlan], rows: list[dict]) -> None:
    by_serial, by_address = defaultdict(list), defaultdict(list)
    for plan, row in zip(plans, rows, strict=True):
        if plan.serial:
            by_serial[plan.serial].append(plan)
        status = p.lookup(row.get(p.STATUS), _STATUSES)
        if plan.site and plan.address is not None and status in HOLDS_ADDRESS:
            by_address[(plan.site.pk, plan.address)].append(plan)
    for group in by_serial.values():
        for plan in group if len(group) > 1 else []:
            others = ", ".join(str(o.line) for o in group if o is not plan)
            plan.errors.append(f"serial {plan.serial} is also on line {others}")
    for group in by_address.values():
        for plan in group if len(group) > 1 else []:
            others = ", ".join(str(o.line) for o in group if o is not plan)
            plan.errors.append(
                f"address {plan.address} on {plan.site.name} is also used on line {others}"
            )


def _plan_row(row: dict, ctx: _Context) -> RowPlan:
    plan = RowPlan(line=row.get(p.LINE, 0), serial=p.text(row.get(p.SERIAL))[:20])
    errors = plan.errors

    raw_type = p.text(row.get(p.TYPE))
    plan.model = p.lookup(raw_type, _MODELS) or ""
    if not plan.model:
        errors.append(
            f"unknown meter type {raw_type!r} (DDSU666 or DTSU666)"
            if raw_type
            else "Meter Type is blank"
        )
    serial, problem = p.parse_serial(row.get(p.SERIAL), digits=plan.model != Meter.Model.CALIN)
    plan.serial = serial[:20]
    if problem:
        errors.append(problem)

    # A Calin meter's phases come only from the Phases column (blank: as in MCOMS, else 1).
    plan.phases = _CHINT_PHASES.get(plan.model)
    try:
        phases = p.parse_int(row.get(p.PHASES))
    except ValueError:
        phases = None
        errors.append(f"Phases {p.text(row.get(p.PHASES))!r} is not 1 or 3")
    if phases is not None:
        if phases not in (1, 3):
            errors.append(f"Phases {phases} is not 1 or 3")
        elif plan.phases is not None and phases != plan.phases:
            errors.append(f"a {plan.model} has {plan.phases} phase(s), not {phases}")
        else:
            plan.phases = phases

    raw_status = p.text(row.get(p.STATUS))
    status = p.lookup(raw_status, _STATUSES)
    if not status:
        labels = " > ".join(Status(s).label for s in FORWARD_PATH)
        errors.append(
            f"unknown status {raw_status!r} ({labels})" if raw_status else "Status is blank"
        )

    raw_site = p.text(row.get(p.SITE))
    site = ctx.sites.get(p.norm_key(raw_site)) if raw_site else None
    before_site = len(errors)
    if raw_site and site is None:
        errors.append(f"unknown site {raw_site!r}")
    elif site is not None and site.pk not in ctx.scope:
        errors.append(f"site {site.name!r} is not in your scope")
        site = None
    plan.site = site

    try:
        plan.address = p.parse_int(row.get(p.ADDRESS))
    except ValueError:
        errors.append(f"address {p.text(row.get(p.ADDRESS))!r} is not a whole number")
    # A site or address already reported as bad must not also be reported as blank.
    site_or_address_bad = len(errors) > before_site

    plan.label = p.text(row.get(p.LABEL))
    if len(plan.label) > 200:
        errors.append("Building/Customer is longer than 200 characters")
    plan.notes = p.text(row.get(p.NOTES))
    try:
        plan.ct_ratio = p.parse_decimal(row.get(p.CT_RATIO))
    except ValueError:
        errors.append(f"CT Ratio {p.text(row.get(p.CT_RATIO))!r} is not a number")
    if plan.ct_ratio is not None and not (1 <= plan.ct_ratio < 1_000_000):
        errors.append(f"CT Ratio {plan.ct_ratio} must be between 1 and 999999")
    elif plan.ct_ratio is not None and plan.ct_ratio != plan.ct_ratio.quantize(Decimal("0.01")):
        errors.append(f"CT Ratio {plan.ct_ratio} has more than two decimals")

    dates: dict[str, dt.date] = {}
    for step, (date_col, _) in p.STEP_COLUMNS.items():
        try:
            value = p.parse_date(row.get(date_col))
        except ValueError:
            errors.append(f"{date_col} {p.text(row.get(date_col))!r} is not a date ({p.DATE_HELP})")
            continue
        if value is not None:
            dates[step] = value

    raw_gateway = p.text(row.get(p.GATEWAY))
    if raw_gateway and site is not None:
        matches = [g for g in ctx.gateways[site.pk] if g.name.lower() == raw_gateway.lower()]
        plan.gateway = matches[0] if matches else None
        if not matches:
            errors.append(f"gateway {raw_gateway!r} is not on {site.name}")

    # The lifecycle and address checks still run on an otherwise bad row, so the
    # preview lists every reason at once instead of one per attempt.
    if status and plan.model:
        _plan_lifecycle(plan, row, ctx, status, dates, bool(raw_site), site_or_address_bad)
    return plan


def _plan_lifecycle(plan, row, ctx, status, dates, given_site, site_or_address_bad) -> None:
    errors, meter = plan.errors, ctx.meters.get(plan.serial)
    plan.meter = meter
    if meter is not None and meter.pk not in ctx.visible:
        errors.append(f"meter {plan.serial} is already in MCOMS but not in your scope")
        return
    if status == S.UNASSIGNED and (given_site or plan.address is not None):
        errors.append("an Unassigned meter has no site or address; set Status to Assigned")
        return
    dated = set(dates) | ({S.ASSIGNED} if given_site or plan.address is not None else set())
    current = meter.status if meter else S.UNASSIGNED
    path = plan_path(current, status, dated)
    if path is None:
        errors.append(
            f"MCOMS has this meter as {Status(current).label}; import cannot make it "
            f"{Status(status).label} (do that on the meter's page)"
        )
        return
    if meter is not None:
        contradictions = len(errors)
        _compare_existing(plan, meter, path)
        if len(errors) > contradictions:
            return
    needs_site = S.ASSIGNED in path or status in HOLDS_ADDRESS
    if needs_site and not site_or_address_bad:
        if plan.site is None:
            errors.append("Site Name is blank")
        if plan.address is None:
            errors.append(f"Assigned Modbus Address is blank (needed when {Status(status).label})")
    if needs_site and (plan.site is None or plan.address is None):
        return
    if S.INSTALLED in path:
        _choose_gateway(plan, ctx)
    if S.ASSIGNED in path or S.INSTALLED in path:
        errors.extend(
            address_problems(
                site=plan.site,
                phases=plan.phases or 1,
                address=plan.address,
                gateway=plan.gateway if S.INSTALLED in path else None,
                meter_pk=meter.pk if meter else None,
            )
        )
    if path or meter is None:
        _plan_steps(plan, row, ctx, path, dates, status)
    if not errors:
        if meter is None:
            plan.action = CREATE
            plan.changes.insert(0, "new meter")
        else:
            plan.action = UPDATE if plan.changes else UNCHANGED
        if plan.gateway is not None and S.INSTALLED in path:
            ctx.bus_load[plan.gateway.pk] = ctx.on_bus(plan.gateway) + 1


def _compare_existing(plan: RowPlan, meter: Meter, path: list[str]) -> None:
    errors = plan.errors
    if plan.model != meter.model:
        errors.append(f"MCOMS has this meter as a {meter.model}, not a {plan.model}")
    if plan.phases is not None and plan.phases != meter.phases:
        errors.append(f"MCOMS has this meter with {meter.phases} phase(s)")
    plan.phases = meter.phases
    if S.ASSIGNED not in path and meter.site_id is not None:
        if plan.site is not None and plan.site.pk != meter.site_id:
            errors.append(f"MCOMS has this meter on {meter.site.name}, not {plan.site.name}")
        if plan.address is not None and plan.address != meter.modbus_address:
            errors.append(
                f"MCOMS has this meter at address {meter.modbus_address}, not {plan.address}"
            )
        plan.site, plan.address = meter.site, meter.modbus_address
    if S.INSTALLED not in path and meter.gateway_id is not None:
        if plan.gateway is not None and plan.gateway.pk != meter.gateway_id:
            errors.append(f"MCOMS has this meter on gateway {meter.gateway.name}")
        plan.gateway = meter.gateway
    # A blank cell keeps what MCOMS has, so a partial sheet never erases data.
    for name, value in (("label", plan.label), ("notes", plan.notes)):
        if value and value != getattr(meter, name):
            plan.updates[name] = value
            plan.changes.append(f"{name} changed")
    if plan.ct_ratio is not None and plan.ct_ratio != meter.ct_ratio:
        plan.updates["ct_ratio"] = plan.ct_ratio
        plan.changes.append(f"CT ratio {meter.ct_ratio.normalize()} → {plan.ct_ratio}")


def _choose_gateway(plan: RowPlan, ctx: _Context) -> None:
    if plan.gateway is None:
        choices = ctx.gateways[plan.site.pk]
        if len(choices) == 1:
            plan.gateway = choices[0]
        elif not choices:
            plan.errors.append(f"{plan.site.name} has no gateway for an installed meter's bus")
            return
        else:
            plan.errors.append(f"{plan.site.name} has several gateways; fill the Gateway column")
            return
    if ctx.on_bus(plan.gateway) >= plan.gateway.meter_limit:
        plan.errors.append(
            f"bus {plan.gateway.name} already carries its limit of {plan.gateway.meter_limit} "
            "meters (counting earlier rows of this file)"
        )


def _plan_steps(plan, row, ctx, path, dates, status) -> None:
    zone = plan.site.zone if plan.site else timezone.get_default_timezone()
    today = ctx.now.astimezone(zone).date()
    # For a meter already in MCOMS, dates of steps it has done are its history, not news.
    full = plan_path(S.UNASSIGNED, status, set(dates)) or []
    ignored = []
    for step in dates:
        column = p.STEP_COLUMNS[step][0]
        history = plan.meter is not None and (step in full or step == S.RETEST_NEEDED)
        if step in path and dates[step] > today:
            plan.errors.append(f"{column} {dates[step]} is in the future")
        elif step not in path and not history:
            ignored.append(column)
    if ignored:
        plan.warnings.append(f"{', '.join(ignored)} ignored: the status is {Status(status).label}")
    given = [(s, dates[s]) for s in path if s in dates]
    for (a, first), (b, second) in zip(given, given[1:], strict=False):
        if second < first:
            plan.errors.append(
                f"dates out of order: {p.STEP_COLUMNS[b][0]} {second} is before "
                f"{p.STEP_COLUMNS[a][0]} {first}"
            )
    if plan.meter is not None and given:
        last = plan.meter.status_changed_at.astimezone(zone).date()
        if given[0][1] < last:
            plan.errors.append(
                f"{p.STEP_COLUMNS[given[0][0]][0]} {given[0][1]} is before the meter's "
                f"last recorded step ({last})"
            )
    if plan.errors:
        return
    # A step the sheet does not date happened no earlier than the one before it.
    resolved, previous = [], None
    for step in path:
        day = dates.get(step) or previous or (given[0][1] if given else None)
        previous = day
        at = ctx.now if day is None else dt.datetime.combine(day, dt.time(12), tzinfo=zone)
        by_name = p.text(row.get(p.STEP_COLUMNS.get(step, ("", ""))[1]))[:150]
        resolved.append(Step(step, min(at, ctx.now), by_name))
    plan.steps = resolved
    if plan.meter is None and resolved:
        plan.created_at = resolved[0].at
    if path:
        start = Status(plan.meter.status if plan.meter else S.UNASSIGNED).label
        plan.changes.append(" → ".join([start, *(Status(s).label for s in path)]))
