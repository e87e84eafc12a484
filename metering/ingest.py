"""The ingest path: one batch of interval readings from a gateway into the readings table.

A batch (at most 5,000 readings, see the edge contract) is handled in one
transaction with a fixed number of queries, whatever its size:

1. map each reading's (address, ts) to the meter on that bus slot at that time;
2. quarantine what cannot be a meter's reading (no meter at the address, no
   partition for the month, malformed values) with the reason;
3. validate against the meter's previous billable reading (``metering.vee``);
4. insert in multi-row statements with ``ON CONFLICT (meter_id, ts)``: a real
   reading replaces a server estimate, and an existing real reading makes the
   new one a duplicate (counted, not stored twice);
5. note each meter's latest values and health, commission meters whose first
   valid reading arrived, and refresh the rollups after commit.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.db import connection, transaction
from django.db.models import Max

from mcoms.core import clock
from metering import partitions, vee
from metering.models import (
    BusSlot,
    Gateway,
    MeterAssignment,
    MeterComms,
    QuarantinedReading,
    Reading,
)

CHUNK = 1000
# The readings table keeps 14 digits with 3 decimals.
MAX_REGISTER_KWH = 10**11
# PostgreSQL only: where a batch is copied before it is inserted (see _insert_by_copy).
LOAD_TABLE = "metering_reading_load"
# How far back the previous reading is looked for first (see previous_readings).
LOOKBACK = dt.timedelta(days=1)
COLUMNS = [
    "meter_id",
    "ts",
    "energy_kwh",
    "export_kwh",
    "voltage_l1",
    "voltage_l2",
    "voltage_l3",
    "current_l1",
    "current_l2",
    "current_l3",
    "power_kw",
    "power_factor",
    "frequency_hz",
    "kind",
    "quality",
    "flags",
    "gateway_id",
    "received_at",
]
BILLABLE = (Reading.Quality.VALID, Reading.Quality.ACCEPTED, Reading.Quality.RESET)


class Malformed(ValueError):
    """A reading whose fields cannot be read."""


@dataclass
class Parsed:
    index: int
    address: int
    ts: dt.datetime
    values: dict
    raw: dict


@dataclass
class Outcome:
    """What became of a batch: the contract's answer plus what the platform needs after."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict] = field(default_factory=list)
    flagged: list[dict] = field(default_factory=list)
    meters: set[int] = field(default_factory=set)
    meters_with_valid: set[int] = field(default_factory=set)
    start: dt.datetime | None = None
    end: dt.datetime | None = None

    def answer(self, batch_id: str) -> dict:
        return {
            "batch_id": batch_id,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "flagged": self.flagged,
        }


def parse_ts(value) -> dt.datetime:
    if not isinstance(value, str):
        raise Malformed("ts must be an RFC 3339 string")
    try:
        ts = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise Malformed(f"ts {value!r} is not RFC 3339") from exc
    if ts.tzinfo is None:
        raise Malformed("ts has no time zone (send UTC with Z)")
    return ts.astimezone(dt.UTC)


def _number(raw: dict, key: str) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Malformed(f"{key} must be a number")
    return float(value)


def _energy(raw: dict, key: str) -> Decimal | None:
    value = _number(raw, key)
    if value is None:
        return None
    if not math.isfinite(value):
        raise Malformed(f"{key} is not a finite number")
    if abs(value) >= MAX_REGISTER_KWH:
        raise Malformed(f"{key} {value:g} is beyond any meter register")
    try:
        return Decimal(repr(value)).quantize(Decimal("0.001"))
    except InvalidOperation as exc:
        raise Malformed(f"{key} is out of range") from exc


def _phases(raw: dict, key: str, prefix: str) -> dict:
    value = raw.get(key)
    if value is None:
        return {}
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or len(value) > 3:
        raise Malformed(f"{key} must be a list of up to three numbers")
    out = {}
    for n, item in enumerate(value, start=1):
        if item is not None and (isinstance(item, bool) or not isinstance(item, int | float)):
            raise Malformed(f"{key} must hold numbers")
        out[f"{prefix}{n}"] = None if item is None else float(item)
    return out


def parse_reading(index: int, raw) -> Parsed:
    """Read one reading of the contract into column values, or raise Malformed."""
    if not isinstance(raw, dict):
        raise Malformed("a reading must be an object")
    address = raw.get("address")
    if isinstance(address, bool) or not isinstance(address, int) or not 1 <= address <= 247:
        raise Malformed("address must be a Modbus address 1–247")
    values = {
        "energy_kwh": _energy(raw, "energy_kwh"),
        "export_kwh": _energy(raw, "export_kwh"),
        "power_kw": _number(raw, "power_kw"),
        "power_factor": _number(raw, "power_factor"),
        "frequency_hz": _number(raw, "frequency_hz"),
        **_phases(raw, "voltage_v", "voltage_l"),
        **_phases(raw, "current_a", "current_l"),
    }
    return Parsed(index=index, address=address, ts=parse_ts(raw.get("ts")), values=values, raw=raw)


@dataclass
class SlotInfo:
    meter_id: int
    start: dt.datetime
    end: dt.datetime | None
    phases: int
    ct_ratio: Decimal
    status: str


class BusMap:
    """Which meter answered at which address of one gateway's bus, over time."""

    def __init__(self, gateway: Gateway) -> None:
        self.by_address: dict[int, list[SlotInfo]] = defaultdict(list)
        slots = BusSlot.objects.filter(gateway=gateway).values_list(
            "address",
            "meter_id",
            "start",
            "end",
            "meter__phases",
            "meter__ct_ratio",
            "meter__status",
        )
        for address, meter_id, start, end, phases, ct_ratio, status in slots:
            self.by_address[address].append(
                SlotInfo(meter_id, start, end, phases, ct_ratio, status)
            )

    def meter_at(self, address: int, ts: dt.datetime) -> tuple[SlotInfo | None, bool]:
        """The slot covering ``ts``; else the address's current slot, marked "before install"."""
        slots = self.by_address.get(address, [])
        for slot in slots:
            if slot.start <= ts and (slot.end is None or ts < slot.end):
                return slot, False
        current = [s for s in slots if s.end is None and ts < s.start]
        return (current[0], True) if current else (None, False)


def previous_readings(meter_ids: set[int], before: dt.datetime) -> dict[int, vee.Previous]:
    """Each meter's last billable reading before ``before``.

    Looks in the last ``LOOKBACK`` first (a few index ranges in the newest
    partitions), and over the whole history only for meters with nothing there:
    the cost stays flat as history grows.
    """
    if not meter_ids:
        return {}
    billable = Reading.objects.filter(
        ts__lt=before, quality__in=BILLABLE, energy_kwh__isnull=False
    ).order_by()
    recent = billable.filter(meter_id__in=meter_ids, ts__gte=before - LOOKBACK)
    pairs = {
        row["meter_id"]: row["last"] for row in recent.values("meter_id").annotate(last=Max("ts"))
    }
    missing = meter_ids - pairs.keys()
    if missing:
        older = billable.filter(meter_id__in=missing).values("meter_id").annotate(last=Max("ts"))
        pairs.update({row["meter_id"]: row["last"] for row in older})
    if not pairs:
        return {}
    rows = Reading.objects.filter(meter_id__in=pairs.keys(), ts__in=set(pairs.values()))
    return {
        meter_id: vee.Previous(ts=ts, energy_kwh=energy)
        for meter_id, ts, energy in rows.values_list("meter_id", "ts", "energy_kwh")
        if pairs.get(meter_id) == ts
    }


def load_limits(meter_ids: set[int]) -> dict[int, int | None]:
    """The load limit (W) of the package of the customer each meter serves now."""
    rows = MeterAssignment.objects.filter(meter_id__in=meter_ids, end__isnull=True).values_list(
        "meter_id", "customer__package__load_limit_w"
    )
    return dict(rows)


def _insert(rows: list[tuple]) -> int:
    """Insert readings; returns how many were stored (new, or replacing an estimate)."""
    if not rows:
        return 0
    table = connection.ops.quote_name(Reading._meta.db_table)
    cols = ", ".join(connection.ops.quote_name(c) for c in COLUMNS)
    upsert = (
        "ON CONFLICT (meter_id, ts) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[2:])
        + f" WHERE {table}.kind = 'estimated' RETURNING meter_id"
    )
    if connection.vendor == "postgresql":
        return _insert_by_copy(rows, table, cols, upsert)
    stored = 0
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        placeholders = ", ".join(["(" + ", ".join(["%s"] * len(COLUMNS)) + ")"] * len(chunk))
        params = []
        for row in chunk:
            params.extend(row)
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {table} ({cols}) VALUES {placeholders} {upsert}", params)
            stored += len(cursor.fetchall())
    return stored


def _insert_by_copy(rows: list[tuple], table: str, cols: str, upsert: str) -> int:
    """PostgreSQL: COPY the batch into a session's temporary table, then one INSERT … SELECT.

    Binding 18 parameters a row into one statement costs several times what COPY
    does; the temporary table is created once per database session and emptied
    after each use (and at commit).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {LOAD_TABLE} "
            f"(LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        with cursor.copy(f"COPY {LOAD_TABLE} ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {LOAD_TABLE} {upsert}")
        stored = len(cursor.fetchall())
        cursor.execute(f"TRUNCATE {LOAD_TABLE}")
    return stored


def _row(
    meter_id: int,
    parsed: Parsed,
    quality: str,
    flags: str,
    gateway_id: int,
    now: dt.datetime,
    ops=None,
) -> tuple:
    ops = ops or connection.ops
    adapt_dt = ops.adapt_datetimefield_value
    adapt_dec = ops.adapt_decimalfield_value
    v = parsed.values
    return (
        meter_id,
        adapt_dt(parsed.ts),
        adapt_dec(v["energy_kwh"], 14, 3),
        adapt_dec(v["export_kwh"], 14, 3),
        v.get("voltage_l1"),
        v.get("voltage_l2"),
        v.get("voltage_l3"),
        v.get("current_l1"),
        v.get("current_l2"),
        v.get("current_l3"),
        v["power_kw"],
        v["power_factor"],
        v["frequency_hz"],
        Reading.Kind.REAL,
        quality,
        flags[:300],
        gateway_id,
        adapt_dt(now),
    )


def _quarantine(
    gateway: Gateway, items: list[tuple[Parsed | None, dict, str, int | None]], now: dt.datetime
) -> None:
    QuarantinedReading.objects.bulk_create(
        [
            QuarantinedReading(
                gateway=gateway,
                meter_id=meter_id,
                payload=raw,
                reason=reason[:300],
                address=parsed.address if parsed else None,
                ts=parsed.ts if parsed else None,
                received_at=now,
            )
            for parsed, raw, reason, meter_id in items
        ]
    )


@transaction.atomic
def ingest(*, gateway: Gateway, readings: list, now: dt.datetime | None = None) -> Outcome:
    """Store one batch of readings from ``gateway``; see the module docstring."""
    now = clock.resolve(now)
    outcome = Outcome()
    quarantine: list[tuple[Parsed | None, dict, str, int | None]] = []
    parsed: list[tuple[Parsed, SlotInfo, bool]] = []
    bus = BusMap(gateway)
    months = partitions.available_months()
    for index, raw in enumerate(readings):
        try:
            item = parse_reading(index, raw)
        except Malformed as exc:
            reason = f"malformed reading: {exc}"
            outcome.rejected.append({"index": index, "reason": reason})
            quarantine.append(
                (None, raw if isinstance(raw, dict) else {"value": raw}, reason, None)
            )
            continue
        slot, before_install = bus.meter_at(item.address, item.ts)
        if slot is None:
            reason = f"no meter assigned at address {item.address}"
            outcome.rejected.append({"index": index, "reason": reason})
            quarantine.append((item, raw, reason, None))
            continue
        if partitions.month_start(item.ts) not in months:
            reason = f"no partition for {item.ts:%Y-%m}: kept in quarantine"
            outcome.rejected.append({"index": index, "reason": reason})
            quarantine.append((item, raw, reason, slot.meter_id))
            continue
        parsed.append((item, slot, before_install))
    rows = _validate(gateway, parsed, outcome, now)
    # The same meter and time twice in one batch is stored once (the first) and the
    # rest count as duplicates; one statement may not touch a row twice.
    unique = list({(row[0], row[1]): row for row in reversed(rows)}.values())
    stored = _insert(unique)
    outcome.accepted = stored
    outcome.duplicates = len(rows) - stored
    _quarantine(gateway, quarantine, now)
    if parsed:
        outcome.meters = {slot.meter_id for _, slot, _ in parsed}
        outcome.start = min(item.ts for item, _, _ in parsed)
        outcome.end = max(item.ts for item, _, _ in parsed)
        note_latest_values(parsed, now)
    return outcome


def _validate(
    gateway: Gateway,
    parsed: list[tuple[Parsed, SlotInfo, bool]],
    outcome: Outcome,
    now: dt.datetime,
) -> list[tuple]:
    if not parsed:
        return []
    meter_ids = {slot.meter_id for _, slot, _ in parsed}
    previous = previous_readings(meter_ids, min(item.ts for item, _, _ in parsed))
    limits = load_limits(meter_ids)
    ops = connection.ops
    rows = []
    for item, slot, before_install in sorted(parsed, key=lambda p: (p[1].meter_id, p[0].ts)):
        limit = vee.load_limit_kw(
            package_limit_w=limits.get(slot.meter_id), phases=slot.phases, ct_ratio=slot.ct_ratio
        )
        reasons = vee.check(
            ts=item.ts,
            values=item.values,
            previous=previous.get(slot.meter_id),
            installed_at=slot.start if before_install else None,
            limit_kw=limit,
            now=now,
        )
        quality = Reading.Quality.FLAGGED if reasons else Reading.Quality.VALID
        if reasons:
            outcome.flagged.append({"index": item.index, "reason": "; ".join(reasons)})
        else:
            outcome.meters_with_valid.add(slot.meter_id)
            if item.values["energy_kwh"] is not None:
                previous[slot.meter_id] = vee.Previous(
                    ts=item.ts, energy_kwh=item.values["energy_kwh"]
                )
        rows.append(_row(slot.meter_id, item, quality, "; ".join(reasons), gateway.pk, now, ops))
    return rows


def note_latest_values(parsed: list[tuple[Parsed, SlotInfo, bool]], now: dt.datetime) -> None:
    """Remember each meter's newest reading (for the gateway page and online status).

    One statement: insert, or update where the stored reading is older.
    """
    latest: dict[int, Parsed] = {}
    for item, slot, _ in parsed:
        if slot.meter_id not in latest or item.ts > latest[slot.meter_id].ts:
            latest[slot.meter_id] = item
    if not latest:
        return
    ops = connection.ops
    table = ops.quote_name(MeterComms._meta.db_table)
    as_json = MeterComms._meta.get_field("last_values").get_db_prep_save
    params: list = []
    for meter_id in sorted(latest):  # one order for every batch: no deadlocks between them
        item = latest[meter_id]
        values = {
            k: (str(v) if isinstance(v, Decimal) else v)
            for k, v in item.values.items()
            if v is not None
        }
        params += [
            meter_id,
            ops.adapt_datetimefield_value(item.ts),
            as_json(values, connection),
            "",
            ops.adapt_datetimefield_value(now),
        ]
    placeholders = ", ".join(["(%s, %s, %s, %s, %s)"] * len(latest))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (meter_id, last_reading_ts, last_values, last_error, updated_at) "
            f"VALUES {placeholders} ON CONFLICT (meter_id) DO UPDATE SET "
            "last_reading_ts = excluded.last_reading_ts, last_values = excluded.last_values, "
            "updated_at = excluded.updated_at "
            f"WHERE {table}.last_reading_ts IS NULL "
            f"OR {table}.last_reading_ts < excluded.last_reading_ts",
            params,
        )
