"""The figures of one dashboard: a set of sites over a period, read in a fixed number of queries.

:func:`figures` asks each app's public queries once for all the sites of the level
(``customers.kpis``, ``metering.kpis``, ``billing.kpis``, ``fieldops.selectors``) and
adds the answers up per site, then per cluster, region and for the whole level in Python —
over sites, never over meters or customers. Money stays apart per currency.

The dashboards are the top layer, so they also read the metering sub-apps' public
queries, which ``metering`` itself may not import:

- ``metering.plant.selectors``: the technical KPIs of the sites with plant data
  (``site_kpis``), and the supply-side (main/feeder) meters, whose ``DailyUsage`` and
  ``HourlyUsage`` are taken off the site rollups (which sum every meter of the site) for
  *energy delivered* and the load profile;
- ``metering.steering.kpis.calin_health``: Calin meters online, offline or never checked,
  added to the bus meters' counts of ``metering.kpis.meter_health``.

A period is a range of local days chosen by presets (this month, last month, the last 30
days, this year) or by dates; "today" is the day in the level's first site's time zone.
Trends are by day for periods up to 62 days and by month beyond.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from billing import kpis as billing_kpis
from billing.collections.ageing import Buckets
from customers import kpis as customer_kpis
from fieldops.selectors import open_task_counts
from mcoms.core.models import Site
from metering import kpis as meter_kpis
from metering.plant import selectors as plant
from metering.steering.kpis import calin_health

ZERO = Decimal(0)
DAILY_UP_TO = 62
PRESETS = (
    ("this_month", "This month"),
    ("last_month", "Last month"),
    ("last_30", "Last 30 days"),
    ("this_year", "This year"),
)
MAX_DAYS = 3 * 366


@dataclass(frozen=True)
class Period:
    first: dt.date
    last: dt.date
    preset: str = ""

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def by(self) -> str:
        return "day" if self.days <= DAILY_UP_TO else "month"

    def buckets(self) -> list[dt.date]:
        """The trend's x axis: each day, or the first day of each month."""
        if self.by == "day":
            return [self.first + dt.timedelta(days=n) for n in range(self.days)]
        found, month = [], self.first.replace(day=1)
        while month <= self.last:
            found.append(month)
            month = (month + dt.timedelta(days=32)).replace(day=1)
        return found

    def label(self, day: dt.date) -> str:
        return f"{day:%d %b}" if self.by == "day" else f"{day:%b %Y}"

    def query(self) -> str:
        if self.preset:
            return f"preset={self.preset}"
        return f"from={self.first:%Y-%m-%d}&to={self.last:%Y-%m-%d}"


def preset_period(name: str, today: dt.date) -> Period:
    """The period a preset names, as of ``today`` (unknown names: this month)."""
    if name == "last_month":
        last = today.replace(day=1) - dt.timedelta(days=1)
        return Period(last.replace(day=1), last, name)
    if name == "last_30":
        return Period(today - dt.timedelta(days=29), today, name)
    if name == "this_year":
        return Period(today.replace(month=1, day=1), today, name)
    return Period(today.replace(day=1), today, "this_month")


def period_from(params, today: dt.date) -> tuple[Period, str]:
    """The period asked for in ``params`` (``preset`` or ``from``/``to``), and an error to
    show when the dates given could not be used (the default period is used instead)."""
    start, end = params.get("from", "").strip(), params.get("to", "").strip()
    preset = params.get("preset", "")
    if preset and preset != "custom":
        return preset_period(preset, today), ""
    if start or end:
        try:
            first = dt.date.fromisoformat(start) if start else today.replace(day=1)
            last = dt.date.fromisoformat(end) if end else today
        except ValueError:
            return preset_period("this_month", today), "Dates must look like 2026-04-30."
        if last < first:
            return preset_period("this_month", today), "The end date is before the start date."
        if (last - first).days >= MAX_DAYS:
            return preset_period("this_month", today), "Choose at most three years."
        return Period(first, last), ""
    return preset_period("this_month", today), ""


def today_for(sites: list[Site], now: dt.datetime) -> dt.date:
    zone = sites[0].timezone if sites else "Africa/Kampala"
    return now.astimezone(ZoneInfo(zone)).date()


@dataclass
class Money:
    """One currency's money over the period (and arrears today)."""

    currency: str
    billed: Decimal = ZERO
    collected: Decimal = ZERO
    active: int = 0
    arrears: Buckets = field(default_factory=Buckets)

    @property
    def rate(self) -> Decimal | None:
        """Collected ÷ billed, in per cent (None when nothing was billed)."""
        if self.billed <= 0:
            return None
        return (self.collected * 100 / self.billed).quantize(Decimal("0.1"))

    @property
    def arpu(self) -> Decimal | None:
        """Billed ÷ customers active at the period's end (None without active customers)."""
        if not self.active:
            return None
        return (self.billed / self.active).quantize(Decimal("0.01"))

    @property
    def owing(self) -> int:
        """Customers with something overdue today."""
        return self.arrears.owing

    def add(self, other: Money) -> None:
        self.billed += other.billed
        self.collected += other.collected
        self.active += other.active
        self.arrears.merge(other.arrears)


@dataclass
class Tally:
    """The figures of one site, or of a group of sites added up."""

    active: int = 0
    new: int = 0
    customers: int = 0
    kwh: Decimal = ZERO
    kwh_est: Decimal = ZERO
    online: int = 0
    offline: int = 0
    unknown: int = 0
    fleet: int = 0
    supply_meters: int = 0
    alerts: int = 0
    incidents: int = 0
    tasks: int = 0
    money: dict[str, Money] = field(default_factory=dict)

    def add(self, other: Tally) -> None:
        for name in (
            "active", "new", "customers", "kwh", "kwh_est", "online", "offline", "unknown",
            "fleet", "supply_meters", "alerts", "incidents", "tasks",
        ):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for currency, money in other.money.items():
            self.money.setdefault(currency, Money(currency)).add(money)

    @property
    def currencies(self) -> list[Money]:
        return [self.money[c] for c in sorted(self.money)]


@dataclass
class Figures:
    period: Period
    total: Tally
    per_site: dict[int, Tally]
    energy_trend: dict[dt.date, tuple[Decimal, Decimal]]
    money_trend: dict[str, dict[dt.date, tuple[Decimal, Decimal]]]
    profile: dict[tuple[bool, int], tuple[Decimal, int]]
    with_money: bool
    # Technical KPIs (metering.plant.selectors.site_kpis) of the sites that have plant data.
    plant: dict[int, dict] = field(default_factory=dict)

    @property
    def plant_total(self) -> dict:
        return plant.kpi_totals(self.plant)

    def group(self, sites: list[Site], key) -> dict[object, Tally]:
        """Per-site tallies added up by ``key(site)`` (a cluster, a region)."""
        groups: dict[object, Tally] = defaultdict(Tally)
        for site in sites:
            groups[key(site)].add(self.per_site[site.pk])
        return groups


def figures(
    sites: list[Site], period: Period, *, now: dt.datetime, with_money: bool = True
) -> Figures:
    """Everything the dashboard shows for ``sites`` over ``period`` (arrears and meters as of
    ``now``)."""
    ids = [s.pk for s in sites]
    per_site = {s.pk: Tally() for s in sites}
    currency = {s.pk: s.currency for s in sites}
    for site_id, row in customer_kpis.counts(sites, period.first, period.last).items():
        t = per_site[site_id]
        t.active, t.new, t.customers = row["active"], row["new"], row["total"]
    # Supply-side (main/feeder) meters measure what the plant sent out, not what customers
    # used: their energy is taken off "energy delivered" and the load profile.
    supply = plant.supply_meters_by_site(ids)
    for site_id, meters in supply.items():
        per_site[site_id].supply_meters = len(meters)
    energy_trend: dict[dt.date, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    energy_rows = meter_kpis.energy(ids, period.first, period.last, by=period.by, leave_out=supply)
    for site_id, day, kwh, est in energy_rows:
        per_site[site_id].kwh += kwh
        per_site[site_id].kwh_est += est
        energy_trend[day][0] += kwh
        energy_trend[day][1] += est
    for site_id, row in meter_kpis.meter_health(ids, now=now).items():
        t = per_site[site_id]
        t.online, t.offline, t.fleet = row["online"], row["offline"], row.get("fleet", 0)
    for site_id, row in calin_health(ids, now=now).items():
        t = per_site[site_id]
        t.online += row["online"]
        t.offline += row["offline"]
        t.unknown += row["unknown"]
    for site_id, n in meter_kpis.open_alerts(ids).items():
        per_site[site_id].alerts = n
    for site_id, n in meter_kpis.open_incidents(ids).items():
        per_site[site_id].incidents = n
    for site_id, n in open_task_counts(ids).items():
        per_site[site_id].tasks = n
    money_trend: dict[str, dict[dt.date, list[Decimal]]] = defaultdict(
        lambda: defaultdict(lambda: [ZERO, ZERO])
    )
    if with_money:
        for s in sites:
            per_site[s.pk].money[s.currency] = Money(s.currency, active=per_site[s.pk].active)
        rows = billing_kpis.flows(sites, period.first, period.last, by=period.by)
        for site_id, cur, day, billed, collected in rows:
            m = per_site[site_id].money.setdefault(cur, Money(cur))
            m.billed += billed
            m.collected += collected
            money_trend[cur][day][0] += billed
            money_trend[cur][day][1] += collected
        for site_id, buckets in billing_kpis.arrears(ids, today_for(sites, now)).items():
            m = per_site[site_id].money[currency[site_id]]
            m.arrears = buckets
    total = Tally()
    for t in per_site.values():
        total.add(t)
    return Figures(
        period=period,
        total=total,
        per_site=per_site,
        energy_trend={k: (v[0], v[1]) for k, v in energy_trend.items()},
        money_trend={c: {k: (v[0], v[1]) for k, v in d.items()} for c, d in money_trend.items()},
        profile=meter_kpis.load_profile(sites, period.first, period.last, leave_out=supply),
        with_money=with_money,
        plant=plant.site_kpis(plant.plant_sites(ids), period.first, period.last),
    )
