"""A tariff version's terms: the JSON document staff write, checked and read into values.

The document (all money and kWh figures as strings, so they stay exact)::

    {
      "fixed": [{"name": "Fixed charge", "amount": "150"}],
      "energy": {"type": "blocks", "blocks": [
          {"up_to": "50", "rate": "2.50"}, {"up_to": "1500", "rate": "12.75"},
          {"rate": "20.57"}]},
      "demand": {"rate": "800", "unit": "kVA", "interval_minutes": 30},
      "levies": [{"name": "Fuel cost charge", "per_kwh": "2.10"},
                 {"name": "REP levy", "percent": "5", "base": "energy", "vat_exempt": true}],
      "vat_percent": "16"
    }

Energy types: ``none``, ``flat`` (``rate``), ``blocks`` (``blocks``, optional
``lifeline_eligible_up_to``) and ``tou`` (``rates``, ``default``, ``windows``).
``docs/tariffs.md`` has an example of each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY_SELECTORS = frozenset(DAY_NAMES) | {"weekday", "holiday", "everyday"}
DEMAND_UNITS = ("kVA", "kW")
DEMAND_MINUTES = (15, 30, 60)
LEVY_BASES = ("energy", "charges")
_TIME = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")


class TariffError(ValueError):
    """Terms that cannot be read, or a period the tariff does not cover."""


@dataclass(frozen=True)
class FixedCharge:
    name: str
    amount: Decimal


@dataclass(frozen=True)
class Block:
    up_to: Decimal | None  # cumulative kWh in the month; None for the last block
    rate: Decimal
    lifeline: bool = False


@dataclass(frozen=True)
class Window:
    """A time-of-use window: local minutes [start, end) on matching days.

    When ``end`` is not after ``start`` the window runs overnight: from ``start`` on a
    matching day to ``end`` the next morning, whatever that next day is.
    """

    days: frozenset[str]
    start: int
    end: int
    period: str

    @property
    def overnight(self) -> bool:
        return self.end <= self.start


@dataclass(frozen=True)
class Demand:
    rate: Decimal
    unit: str
    interval_minutes: int


@dataclass(frozen=True)
class Levy:
    name: str
    per_kwh: Decimal | None = None
    percent: Decimal | None = None
    base: str = "charges"
    vat_exempt: bool = False


@dataclass(frozen=True)
class Terms:
    """Everything one tariff version charges."""

    fixed: tuple[FixedCharge, ...] = ()
    flat_rate: Decimal | None = None
    blocks: tuple[Block, ...] = ()
    lifeline_eligible_up_to: Decimal | None = None
    tou_rates: dict[str, Decimal] = field(default_factory=dict)
    tou_default: str = ""
    windows: tuple[Window, ...] = ()
    demand: Demand | None = None
    levies: tuple[Levy, ...] = ()
    vat_percent: Decimal = Decimal(0)

    @property
    def cuts(self) -> list[int]:
        """Local minutes of the day where a time-of-use window starts or ends."""
        edges = {w.start for w in self.windows} | {w.end for w in self.windows}
        return sorted(m for m in edges if 0 < m < 1440)


def parse_terms(document: object) -> Terms:
    """Read and check a terms document; raise :class:`TariffError` saying what is wrong."""
    doc = _mapping(document, "terms", {"fixed", "energy", "demand", "levies", "vat_percent"})
    fixed = tuple(_fixed(item) for item in _list(doc.get("fixed", []), "fixed"))
    energy = _energy(doc.get("energy", {"type": "none"}))
    demand = _demand(doc["demand"]) if doc.get("demand") is not None else None
    levies = tuple(_levy(item) for item in _list(doc.get("levies", []), "levies"))
    vat = _amount(doc.get("vat_percent", "0"), "vat_percent")
    if vat > 100:
        raise TariffError("vat_percent must be at most 100.")
    return Terms(fixed=fixed, demand=demand, levies=levies, vat_percent=vat, **energy)


def _mapping(value: object, where: str, allowed: set[str]) -> dict:
    if not isinstance(value, dict):
        raise TariffError(f"{where} must be an object.")
    unknown = set(value) - allowed
    if unknown:
        raise TariffError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}.")
    return value


def _list(value: object, where: str) -> list:
    if not isinstance(value, list):
        raise TariffError(f"{where} must be a list.")
    return value


def _amount(value: object, where: str) -> Decimal:
    """A non-negative exact decimal; floats are refused because they are not exact."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TariffError(f'{where} must be a number written as a string, e.g. "12.75".')
    try:
        number = Decimal(value)
    except InvalidOperation as exc:
        raise TariffError(f"{where}: {value!r} is not a number.") from exc
    if not number.is_finite() or number < 0:
        raise TariffError(f"{where} must be zero or more.")
    return number


def _name(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TariffError(f"{where} needs a name.")
    return value.strip()


def _fixed(item: object) -> FixedCharge:
    item = _mapping(item, "fixed charge", {"name", "amount"})
    return FixedCharge(
        _name(item.get("name"), "fixed charge"), _amount(item.get("amount"), "fixed")
    )


def _energy(value: object) -> dict:
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "none":
        _mapping(value, "energy", {"type"})
        return {}
    if kind == "flat":
        _mapping(value, "energy", {"type", "rate"})
        return {"flat_rate": _amount(value.get("rate"), "energy rate")}
    if kind == "blocks":
        return _blocks(_mapping(value, "energy", {"type", "blocks", "lifeline_eligible_up_to"}))
    if kind == "tou":
        return _tou(_mapping(value, "energy", {"type", "rates", "default", "windows"}))
    raise TariffError("energy.type must be one of none, flat, blocks, tou.")


def _blocks(value: dict) -> dict:
    blocks = []
    for i, item in enumerate(_list(value.get("blocks"), "energy.blocks")):
        item = _mapping(item, f"block {i + 1}", {"up_to", "rate", "lifeline"})
        up_to = item.get("up_to")
        blocks.append(
            Block(
                up_to=_amount(up_to, f"block {i + 1} up_to") if up_to is not None else None,
                rate=_amount(item.get("rate"), f"block {i + 1} rate"),
                lifeline=item.get("lifeline", False) is True,
            )
        )
    if not blocks or blocks[-1].up_to is not None:
        raise TariffError("The last block has no up_to: it takes every kWh above the others.")
    bounds = [b.up_to for b in blocks[:-1]]
    if any(b is None for b in bounds) or bounds != sorted(set(bounds)) or Decimal(0) in bounds:
        raise TariffError("Block up_to values must rise strictly, each above zero.")
    flags = [b.lifeline for b in blocks]
    if True in flags and flags.index(False) != flags.count(True):
        raise TariffError("Lifeline blocks come first, and at least one block is not lifeline.")
    eligible = value.get("lifeline_eligible_up_to")
    if eligible is not None and True not in flags:
        raise TariffError("lifeline_eligible_up_to needs a lifeline block.")
    return {
        "blocks": tuple(blocks),
        "lifeline_eligible_up_to": (
            _amount(eligible, "lifeline_eligible_up_to") if eligible is not None else None
        ),
    }


def _tou(value: dict) -> dict:
    rates = _mapping(value.get("rates"), "energy.rates", set(value.get("rates") or {}))
    if not rates:
        raise TariffError("A time-of-use tariff needs rates, e.g. peak and off_peak.")
    parsed = {str(name): _amount(rate, f"rate {name}") for name, rate in rates.items()}
    default = value.get("default")
    if default not in parsed:
        raise TariffError("energy.default must name one of the rates.")
    windows = tuple(_window(item, parsed) for item in _list(value.get("windows", []), "windows"))
    return {"tou_rates": parsed, "tou_default": default, "windows": windows}


def _window(item: object, rates: dict) -> Window:
    item = _mapping(item, "window", {"days", "from", "to", "period"})
    days = item.get("days")
    if not isinstance(days, list) or not days or not set(days) <= DAY_SELECTORS:
        raise TariffError(f"window days must be a list from {', '.join(sorted(DAY_SELECTORS))}.")
    if item.get("period") not in rates:
        raise TariffError(f"window period {item.get('period')!r} is not one of the rates.")
    start, end = _minute(item.get("from")), _minute(item.get("to"))
    if start == 1440 or start == end:
        raise TariffError("A window must start before 24:00 and not end where it starts.")
    return Window(frozenset(days), start, end, item["period"])


def _minute(value: object) -> int:
    match = _TIME.match(value) if isinstance(value, str) else None
    if not match or (match[1] == "24" and match[2] != "00"):
        raise TariffError(f"{value!r} is not a time of day like 06:00 or 24:00.")
    return int(match[1]) * 60 + int(match[2])


def _demand(value: object) -> Demand:
    value = _mapping(value, "demand", {"rate", "unit", "interval_minutes"})
    unit = value.get("unit", "kVA")
    minutes = value.get("interval_minutes", 30)
    if unit not in DEMAND_UNITS:
        raise TariffError("demand.unit must be kVA or kW.")
    if minutes not in DEMAND_MINUTES:
        raise TariffError("demand.interval_minutes must be 15, 30 or 60.")
    return Demand(_amount(value.get("rate"), "demand rate"), unit, minutes)


def _levy(item: object) -> Levy:
    item = _mapping(item, "levy", {"name", "per_kwh", "percent", "base", "vat_exempt"})
    name = _name(item.get("name"), "levy")
    if ("per_kwh" in item) == ("percent" in item):
        raise TariffError(f"Levy {name!r} needs exactly one of per_kwh or percent.")
    base = item.get("base", "charges")
    if base not in LEVY_BASES:
        raise TariffError(f"Levy {name!r}: base must be energy or charges.")
    return Levy(
        name=name,
        per_kwh=_amount(item["per_kwh"], name) if "per_kwh" in item else None,
        percent=_amount(item["percent"], name) if "percent" in item else None,
        base=base,
        vat_exempt=item.get("vat_exempt", False) is True,
    )
