"""The dashboards' tables: each row one child of the level, linking one level down.

A :class:`Table` holds typed cells: the page shows each cell's text (and link), and the
CSV/Excel download (``?export=csv|xlsx&table=<name>``, :mod:`mcoms.core.exports`) takes
each cell's value, so numbers stay numbers in a spreadsheet.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.urls import reverse

from billing.collections.money import fmt
from mcoms.dashboard.kpis import Tally


@dataclass
class Cell:
    value: object
    text: str = ""
    url: str = ""
    num: bool = False

    def __post_init__(self) -> None:
        if not self.text:
            self.text = "" if self.value is None else str(self.value)


@dataclass
class Table:
    name: str
    title: str
    head: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    note: str = ""

    def values(self) -> list[list[object]]:
        return [[c.value for c in row] for row in self.rows]


def num(value: int | Decimal | None, places: int = 0) -> Cell:
    if value is None:
        return Cell(None, "–", num=True)
    return Cell(value, f"{value:,.{places}f}", num=True)


def kwh(value: Decimal) -> Cell:
    return Cell(value.quantize(Decimal("0.1")), f"{value:,.0f}", num=True)


def money_cells(tally: Tally, with_money: bool) -> list[Cell]:
    """Billed, collected, collection rate and overdue arrears (one currency per line)."""
    if not with_money:
        return []
    ms = tally.currencies

    def joined(get, as_money=True) -> Cell:
        if len(ms) == 1:
            v = get(ms[0])
            if v is None:
                return Cell(None, "–", num=True)
            text = f"{ms[0].currency} {fmt(v, ms[0].currency)}" if as_money else f"{v} %"
            return Cell(v, text, num=True)
        parts = []
        for m in ms:
            v = get(m)
            parts.append(
                "–"
                if v is None
                else (f"{m.currency} {fmt(v, m.currency)}" if as_money else f"{v} %")
            )
        return Cell(" · ".join(parts), num=True)

    return [
        joined(lambda m: m.billed),
        joined(lambda m: m.collected),
        joined(lambda m: m.rate, as_money=False),
        joined(lambda m: m.arrears.overdue),
    ]


MONEY_HEAD = ["Billed", "Collected", "Collection rate", "Arrears overdue"]
TALLY_HEAD = [
    "Active customers",
    "New",
    "Energy kWh",
    "Meters online",
    "Meters offline",
    "Meters never checked",
]
TALLY_TAIL = ["Open alerts", "Open incidents", "Open field tasks"]


def tally_row(name: Cell, extra: list[Cell], t: Tally, with_money: bool) -> list[Cell]:
    return [
        name,
        *extra,
        num(t.active),
        num(t.new),
        kwh(t.kwh),
        num(t.online),
        num(t.offline),
        num(t.unknown),
        *money_cells(t, with_money),
        num(t.alerts),
        num(t.incidents),
        num(t.tasks),
    ]


def tally_head(first: str, extra: list[str], with_money: bool) -> list[str]:
    return [first, *extra, *TALLY_HEAD, *(MONEY_HEAD if with_money else []), *TALLY_TAIL]


def when(value: dt.datetime | None, zone) -> str:
    return f"{value.astimezone(zone):%Y-%m-%d %H:%M}" if value else "never"


def energy_table(period, trend: dict) -> Table:
    """kWh and estimated kWh per day (or month) of ``period``."""
    table = Table("energy", "Energy", ["Period", "Energy kWh", "Estimated kWh"])
    for day in period.buckets():
        kwh_, est = trend.get(day, (Decimal(0), Decimal(0)))
        table.rows.append([Cell(day), Cell(kwh_), Cell(est)])
    return table


def figure_tables(figs) -> list[Table]:
    """The numbers behind the charts and the ageing, as downloadable tables."""
    from billing.collections.ageing import BUCKETS
    from mcoms.dashboard.charts import averages

    period = figs.period
    energy = energy_table(period, figs.energy_trend)
    money = Table("money", "Billed and collected", ["Period", "Currency", "Billed", "Collected"])
    for currency in sorted(figs.money_trend):
        for day in period.buckets():
            billed, collected = figs.money_trend[currency].get(day, (Decimal(0), Decimal(0)))
            money.rows.append([Cell(day), Cell(currency), Cell(billed), Cell(collected)])
    found = averages(figs)
    profile = Table("profile", "Load profile", ["Hour", "Weekdays kWh", "Weekend days kWh"])
    for h in range(24):
        profile.rows.append(
            [Cell(f"{h:02d}:00"), Cell(found.get((False, h))), Cell(found.get((True, h)))]
        )
    ms = figs.total.currencies
    arrears = Table("arrears", "Arrears by age", ["Days past due", *(m.currency for m in ms)])
    for key, label, _low, _high in BUCKETS:
        arrears.rows.append([Cell(label), *(Cell(m.arrears.amounts[key]) for m in ms)])
    tables = [energy, profile]
    if figs.with_money:
        tables += [money, arrears]
    return tables


PLANT_HEAD = [
    "Site",
    "Supplied kWh",
    "Consumed by customers kWh",
    "Losses kWh",
    "Losses %",
    "Days with a balance",
    "PV kWh",
    "PV kWp",
    "Specific yield kWh/kWp",
    "Battery SoC now %",
    "Battery SoC lowest %",
    "Generator hours",
    "Open plant alerts",
]


def _plant_cells(k: dict, *, with_days: bool = True) -> list[Cell]:
    soc_now = k.get("soc_now_pct")
    return [
        num(k["supplied_kwh"], 1),
        num(k["consumed_kwh"], 1),
        num(k["losses_kwh"], 1),
        num(k["losses_pct"], 1),
        num(k.get("days_with_balance")) if with_days else Cell(None, "", num=True),
        num(k["pv_kwh"], 1),
        num(k.get("kwp"), 1) if k.get("kwp") else Cell(None, "–", num=True),
        num(k["specific_yield"], 2),
        num(soc_now, 1),
        num(k["min_soc_pct"], 1),
        num(k["generator_hours"], 1),
        num(k["open_plant_alerts"]),
    ]


def plant_table(sites, figs) -> Table:
    """The technical KPIs of the level's sites that have plant data, each row linking to the
    site's technical page; a total row when there are several."""
    table = Table(
        "plant",
        "Plant: supply, losses, PV, battery, generator",
        PLANT_HEAD,
        note="Supplied and consumed over the days whose supply is known "
        "(the plant's daily energy balance). SoC now is the newest reading, whatever the period.",
    )
    for s in sites:
        k = figs.plant.get(s.pk)
        if k is None:
            continue
        name = Cell(s.name, url=reverse("plant:site", args=[s.pk]))
        table.rows.append([name, *_plant_cells(k)])
    if len(table.rows) > 1:
        table.rows.append(
            [Cell("All these sites"), *_plant_cells(figs.plant_total, with_days=False)]
        )
    return table
