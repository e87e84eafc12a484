"""The tariff engine: prices one billing period's consumption under a tariff's terms.

Pure: it takes plain data (the period, the site's calendar, interval consumption and
demand intervals, the tariff versions in force) and returns bill lines. Nothing here
reads the database. ``docs/tariffs.md`` shows how to write each structure.

Conventions (``shared/reference/tariff_examples.md``):

- every line is rounded half-up to the currency's minor unit; the total is the sum of
  the rounded lines;
- a tariff change inside the period splits it by local days; fixed charges, block
  sizes, lifeline thresholds and demand charges are prorated to each part by days;
- an interval is placed in the local day and time-of-use window of its local time;
  an interval that straddles a midnight or a window edge is shared out by time.
"""

from __future__ import annotations

import bisect
import datetime as dt
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from billing.tariff_terms import DAY_NAMES, Block, Demand, Levy, TariffError, Terms, Window

__all__ = [
    "Bill",
    "BillLine",
    "Calendar",
    "DemandInterval",
    "InForce",
    "Interval",
    "TariffError",
    "demand_from_register",
    "intervals_from_hourly",
    "price_period",
    "round_money",
    "tou_period",
]

MINOR_UNITS = {"UGX": 0, "KES": 2, "NGN": 2}
KWH = Decimal("0.001")
DEMAND = Decimal("0.01")
FRACTION = Decimal("0.0001")
ZERO = Decimal(0)
HUNDRED = Decimal(100)


# --- Input ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """Energy used between two aware instants; ``estimated_kwh`` of it was estimated."""

    start: dt.datetime
    end: dt.datetime
    kwh: Decimal
    estimated_kwh: Decimal = ZERO


@dataclass(frozen=True)
class DemandInterval:
    """Energy in one demand interval (from the register) and the power factor measured in it."""

    start: dt.datetime
    end: dt.datetime
    kwh: Decimal
    power_factor: Decimal | None = None

    @property
    def kw(self) -> Decimal:
        hours = Decimal((self.end - self.start).total_seconds()) / Decimal(3600)
        return self.kwh / hours

    @property
    def kva(self) -> Decimal:
        # Without a measured power factor the kW figure is the best (lowest) kVA we know.
        pf = self.power_factor if self.power_factor and self.power_factor > 0 else Decimal(1)
        return self.kw / pf


@dataclass(frozen=True)
class Calendar:
    """The site's clock and public holidays: TOU windows and billing days are local."""

    zone: zoneinfo.ZoneInfo
    holidays: frozenset[dt.date] = frozenset()


@dataclass(frozen=True)
class InForce:
    """One approved tariff version: its terms and the local days it covers (end exclusive)."""

    terms: Terms
    effective_from: dt.date
    effective_to: dt.date | None = None
    label: str = ""


# --- Output --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BillLine:
    """One charge: what it is, how much, at what rate, and the rounded amount."""

    kind: str  # fixed, energy, demand, levy, vat
    description: str
    quantity: Decimal
    unit: str
    rate: Decimal
    amount: Decimal
    starts: dt.date
    ends: dt.date  # exclusive
    estimated: bool = False
    vat_exempt: bool = False


@dataclass(frozen=True)
class Bill:
    """The priced period: its lines and totals (the total is the sum of the rounded lines)."""

    currency: str
    starts: dt.date
    ends: dt.date
    lines: tuple[BillLine, ...]
    kwh: Decimal

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), round_money(ZERO, self.currency))

    @property
    def vat(self) -> Decimal:
        return sum(
            (line.amount for line in self.lines if line.kind == "vat"),
            round_money(ZERO, self.currency),
        )

    @property
    def total_before_vat(self) -> Decimal:
        return self.total - self.vat

    @property
    def estimated(self) -> bool:
        return any(line.estimated for line in self.lines)


def round_money(amount: Decimal, currency: str) -> Decimal:
    """``amount`` rounded half-up to the currency's minor unit (UGX: whole shillings)."""
    try:
        places = MINOR_UNITS[currency]
    except KeyError as exc:
        raise TariffError(f"Unknown currency {currency!r}.") from exc
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


# --- Adapters from meter data --------------------------------------------------------------


def intervals_from_hourly(
    rows: Iterable[tuple[dt.datetime, Decimal, Decimal]],
) -> list[Interval]:
    """Intervals from hourly rows ``(hour start in UTC, kWh, estimated kWh)``."""
    hour = dt.timedelta(hours=1)
    return [Interval(start, start + hour, kwh, est) for start, kwh, est in rows]


def demand_from_register(
    readings: Iterable[tuple[dt.datetime, Decimal, Decimal | None]], minutes: int
) -> list[DemandInterval]:
    """Demand intervals from cumulative register readings ``(ts, kWh register, power factor)``.

    An interval runs between two readings on the ``minutes`` grid that are one interval
    apart; its energy is the register's advance, its power factor the mean of the
    factors read inside it (start exclusive, end inclusive). A register that went
    backwards (a reset or a meter change) gives no interval.
    """
    step = dt.timedelta(minutes=minutes)
    rows = sorted(readings, key=lambda r: r[0])
    times = [ts for ts, _, _ in rows]
    on_grid = {ts: kwh for ts, kwh, _ in rows if _on_grid(ts, minutes) and kwh is not None}
    out = []
    for start in sorted(on_grid):
        end = start + step
        if end not in on_grid or on_grid[end] < on_grid[start]:
            continue
        inside = rows[bisect.bisect_right(times, start) : bisect.bisect_right(times, end)]
        factors = [pf for _, _, pf in inside if pf is not None]
        pf = sum(factors, ZERO) / len(factors) if factors else None
        out.append(DemandInterval(start, end, on_grid[end] - on_grid[start], pf))
    return out


def _on_grid(ts: dt.datetime, minutes: int) -> bool:
    seconds = int(ts.timestamp())
    return seconds % (minutes * 60) == 0


# --- Splitting time ------------------------------------------------------------------------


def _pieces(
    start: dt.datetime, end: dt.datetime, kwh: Decimal, zone: zoneinfo.ZoneInfo, cuts: list[int]
) -> Iterable[tuple[dt.datetime, Decimal]]:
    """(local start, kWh) for each part of the interval between local cut minutes.

    The share is by time; the last piece takes the remainder, so the pieces sum to
    ``kwh`` exactly.
    """
    whole = end - start
    t = start
    given = ZERO
    while t < end:
        local = t.astimezone(zone)
        piece_end = min(end, _next_cut(local, cuts))
        if piece_end <= t:  # a clock change swallowed the cut; take the rest at once
            piece_end = end
        if piece_end >= end:
            yield local, kwh - given
            return
        share = kwh * Decimal((piece_end - t) / dt.timedelta(microseconds=1))
        share /= Decimal(whole / dt.timedelta(microseconds=1))
        given += share
        yield local, share
        t = piece_end


def _next_cut(local: dt.datetime, cuts: list[int]) -> dt.datetime:
    minute = local.hour * 60 + local.minute
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    for cut in cuts:
        if cut > minute:
            return (midnight + dt.timedelta(minutes=cut)).astimezone(dt.UTC)
    return (midnight + dt.timedelta(days=1)).astimezone(dt.UTC)


def _day_matches(days: frozenset[str], day: dt.date, calendar: Calendar) -> bool:
    if "everyday" in days or DAY_NAMES[day.weekday()] in days:
        return True
    if "weekday" in days and day.weekday() < 5:
        return True
    return "holiday" in days and day in calendar.holidays


def _window_covers(window: Window, local: dt.datetime, calendar: Calendar) -> bool:
    day = local.date()
    minute = local.hour * 60 + local.minute
    if not window.overnight:
        return window.start <= minute < window.end and _day_matches(window.days, day, calendar)
    if minute >= window.start and _day_matches(window.days, day, calendar):
        return True
    previous = day - dt.timedelta(days=1)
    return minute < window.end and _day_matches(window.days, previous, calendar)


def tou_period(terms: Terms, local: dt.datetime, calendar: Calendar) -> str:
    """The time-of-use period of a local instant: the first window covering it, else default."""
    for window in terms.windows:
        if _window_covers(window, local, calendar):
            return window.period
    return terms.tou_default


# --- Pricing -------------------------------------------------------------------------------


@dataclass
class _Part:
    """One stretch of the period under one tariff version, with what was used in it."""

    force: InForce
    starts: dt.date
    ends: dt.date
    share: Decimal  # days in this part / days in the period
    kwh: Decimal = ZERO
    estimated: bool = False
    by_period: dict[str, list] = field(default_factory=dict)  # TOU period: [kWh, estimated]
    demand: list[DemandInterval] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.by_period = {name: [ZERO, False] for name in self.terms.tou_rates}

    @property
    def terms(self) -> Terms:
        return self.force.terms


def price_period(
    *,
    starts: dt.date,
    ends: dt.date,
    currency: str,
    schedule: Sequence[InForce],
    calendar: Calendar,
    usage: Iterable[Interval],
    demand: Iterable[DemandInterval] = (),
) -> Bill:
    """Price the local days ``[starts, ends)`` under the tariff versions in ``schedule``.

    ``usage`` may be split into intervals any way (hourly rows, meter intervals, a
    single total): an energy-only bill depends only on how much was used when.
    Consumption outside the period is ignored.
    """
    if ends <= starts:
        raise TariffError("A billing period must end after it starts.")
    round_money(ZERO, currency)
    parts = _parts(starts, ends, schedule)
    for interval in usage:
        _take(interval, parts, calendar)
    for item in demand:
        part = _part_on(parts, item.start.astimezone(calendar.zone).date())
        if part is not None:
            part.demand.append(item)
    lines: list[BillLine] = []
    for part in parts:
        lines.extend(_price_part(part, currency, calendar, split=len(parts) > 1))
    kwh = sum((p.kwh for p in parts), ZERO).quantize(KWH, rounding=ROUND_HALF_UP)
    return Bill(currency=currency, starts=starts, ends=ends, lines=tuple(lines), kwh=kwh)


def _parts(starts: dt.date, ends: dt.date, schedule: Sequence[InForce]) -> list[_Part]:
    days = Decimal((ends - starts).days)
    parts = []
    for force in sorted(schedule, key=lambda f: f.effective_from):
        a = max(starts, force.effective_from)
        b = min(ends, force.effective_to or ends)
        if a < b:
            parts.append(_Part(force, a, b, Decimal((b - a).days) / days))
    covered = starts
    for part in parts:
        if part.starts != covered:
            raise TariffError(f"No tariff version is in force on {covered:%Y-%m-%d}.")
        covered = part.ends
    if covered != ends:
        raise TariffError(f"No tariff version is in force on {covered:%Y-%m-%d}.")
    return parts


def _part_on(parts: list[_Part], day: dt.date) -> _Part | None:
    for part in parts:
        if part.starts <= day < part.ends:
            return part
    return None


def _take(interval: Interval, parts: list[_Part], calendar: Calendar) -> None:
    if interval.start.tzinfo is None or interval.end.tzinfo is None:
        raise TariffError("Interval times must be timezone-aware.")
    if interval.end <= interval.start or interval.kwh < 0 or interval.estimated_kwh < 0:
        raise TariffError(f"The interval from {interval.start} is empty or negative.")
    estimated = interval.estimated_kwh > 0
    zone = calendar.zone
    for local, kwh in _pieces(interval.start, interval.end, interval.kwh, zone, [0]):
        part = _part_on(parts, local.date())
        if part is None:
            continue
        part.kwh += kwh
        part.estimated |= estimated
        if not part.terms.tou_rates:
            continue
        end = min(interval.end, _next_cut(local, [0]))
        start = local.astimezone(dt.UTC)
        for piece_local, piece_kwh in _pieces(start, end, kwh, zone, part.terms.cuts):
            bucket = part.by_period[tou_period(part.terms, piece_local, calendar)]
            bucket[0] += piece_kwh
            bucket[1] |= estimated


def _price_part(part: _Part, currency: str, calendar: Calendar, *, split: bool) -> list[BillLine]:
    """The part's lines in bill order: fixed, energy, demand, levies, VAT."""
    terms = part.terms
    note = f" ({_days(part)})" if split else ""

    def line(kind, description, quantity, unit, rate, amount, **flags) -> BillLine:
        amount = round_money(amount, currency)
        dates = (part.starts, part.ends)
        return BillLine(kind, description + note, quantity, unit, rate, amount, *dates, **flags)

    share = part.share.quantize(FRACTION)
    lines = [
        line("fixed", f.name, share, "month", f.amount, f.amount * part.share) for f in terms.fixed
    ]
    lines += [line("energy", *args, estimated=estimated) for args, estimated in _energy(part)]
    if terms.demand is not None and part.demand:
        lines.append(line("demand", *_demand(terms.demand, part, calendar.zone)))
    kwh = part.kwh.quantize(KWH, rounding=ROUND_HALF_UP)
    for levy in terms.levies:
        flags = {"estimated": part.estimated, "vat_exempt": levy.vat_exempt}
        if levy.per_kwh is not None:
            lines.append(
                line("levy", levy.name, kwh, "kWh", levy.per_kwh, kwh * levy.per_kwh, **flags)
            )
        else:
            base = _levy_base(levy, lines)
            amount = base * levy.percent / HUNDRED
            lines.append(line("levy", levy.name, base, currency, levy.percent, amount, **flags))
    if terms.vat_percent > 0:
        base = sum((item.amount for item in lines if not item.vat_exempt), ZERO)
        vat = base * terms.vat_percent / HUNDRED
        lines.append(
            line("vat", f"VAT {terms.vat_percent}%", base, currency, terms.vat_percent, vat)
        )
    return lines


def _days(part: _Part) -> str:
    last = part.ends - dt.timedelta(days=1)
    first = f"{part.starts.day} {part.starts:%b}"
    return f"{first}–{last.day} {last:%b %Y}, {part.share * 100:.1f}% of the period"


def _levy_base(levy: Levy, lines: list[BillLine]) -> Decimal:
    kinds = {"energy": {"energy"}, "charges": {"fixed", "energy", "demand"}}[levy.base]
    return sum((item.amount for item in lines if item.kind in kinds), ZERO)


def _energy(part: _Part) -> list[tuple[tuple, bool]]:
    """(line fields, estimated) for each energy line of the part."""
    terms = part.terms
    kwh = part.kwh.quantize(KWH, rounding=ROUND_HALF_UP)
    if terms.tou_rates:
        out = []
        for name, rate in terms.tou_rates.items():
            used, estimated = part.by_period[name]
            q = used.quantize(KWH, rounding=ROUND_HALF_UP)
            if q > 0:
                out.append(
                    ((f"Energy, {name.replace('_', '-')}", q, "kWh", rate, q * rate), estimated)
                )
        return out
    if terms.flat_rate is not None:
        fields = ("Energy", kwh, "kWh", terms.flat_rate, kwh * terms.flat_rate)
        return [(fields, part.estimated)] if kwh else []
    return [(fields, part.estimated) for fields in _blocks(terms, kwh, part.share)]


def _blocks(terms: Terms, kwh: Decimal, share: Decimal) -> list[tuple]:
    """One line per block the consumption reaches; block sizes are prorated by ``share``."""
    eligible = terms.lifeline_eligible_up_to
    lose_lifeline = eligible is not None and kwh > _prorate(eligible, share)
    normal = next((b.rate for b in terms.blocks if not b.lifeline), None)
    out, floor = [], ZERO
    for block in terms.blocks:
        ceiling = _prorate(block.up_to, share) if block.up_to is not None else None
        q = (min(kwh, ceiling) if ceiling is not None else kwh) - floor
        if q > 0:
            rate = normal if block.lifeline and lose_lifeline else block.rate
            out.append(
                (_block_name(block, floor, ceiling, lose_lifeline), q, "kWh", rate, q * rate)
            )
        if ceiling is None or kwh <= ceiling:
            break
        floor = ceiling
    return out


def _prorate(size: Decimal, share: Decimal) -> Decimal:
    return (size * share).quantize(KWH, rounding=ROUND_HALF_UP)


def _block_name(block: Block, floor: Decimal, ceiling: Decimal | None, lost: bool) -> str:
    if ceiling is None:
        name = f"Energy, above {_kwh(floor)} kWh"
    elif floor == 0:
        name = f"Energy, first {_kwh(ceiling)} kWh"
    else:
        name = f"Energy, {_kwh(floor)}–{_kwh(ceiling)} kWh"
    if block.lifeline:
        name += " (lifeline not applicable: usage above threshold)" if lost else " (lifeline)"
    return name


def _kwh(value: Decimal) -> str:
    return f"{value.normalize():,f}"


def _demand(demand: Demand, part: _Part, zone: zoneinfo.ZoneInfo) -> tuple:
    """The month's maximum demand: the interval with the largest average kW, in kW or kVA."""
    peak = max(part.demand, key=lambda d: (d.kw, d.kva))
    measure = peak.kva if demand.unit == "kVA" else peak.kw
    q = measure.quantize(DEMAND, rounding=ROUND_HALF_UP)
    local = peak.start.astimezone(zone)
    when = f"{local.day} {local:%b %H:%M}"
    name = f"Demand charge, maximum demand {q} {demand.unit} (interval from {when})"
    return (name, q, demand.unit, demand.rate, q * demand.rate * part.share)
