"""Importing the operator's logger history: one CSV per meter per day, in site local time.

The legacy logger on the Pi writes ``data/meter_010/meter_010_2026-04-04.csv`` with the
columns ``timestamp,meter_id,V_L1_V,I_L1_A,P_total_kW,E_total_kWh`` and timestamps in
the site's local time. This module reads such files (one, many, a folder of them, or a
.zip of the ``data/`` tree), turns each row into a reading of the edge contract with a
UTC timestamp, and feeds them through :func:`metering.ingest.ingest` in batches of at
most 5,000, so history is validated, quarantined and deduplicated exactly like live
uploads. Importing the same files again stores nothing new: every row is a duplicate.

A row that cannot be read (wrong columns, a number or time that does not parse) is
rejected with its file, line and reason, and the import goes on.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import zipfile
import zoneinfo
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.db import transaction
from django.db.models import Max

from mcoms.core import audit, clock
from mcoms.core.models import AuditEvent, User
from metering import ingest, tasks
from metering.models import Gateway, QuarantinedReading, Reading

BATCH = 5000
MAX_LISTED = 200
QUARANTINE_SOURCE = "import"
TIMESTAMP, METER_ID, ENERGY = "timestamp", "meter_id", "E_total_kWh"
VALUES = {"V_L1_V": "voltage_v", "I_L1_A": "current_a", "P_total_kW": "power_kw"}
REQUIRED = (TIMESTAMP, METER_ID, ENERGY)
EMPTY = {"", "nan", "null", "none", "-", "n/a"}
DAY_FIRST_FORMATS = ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M")
DATE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")
NUMBERS = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2})?)?Z?|-?\d+(?:[.:]\d+)*")


class HistoryFileError(ValueError):
    """An upload that cannot be read at all (a broken or oversized .zip, a wrong file type)."""


@dataclass(frozen=True)
class Source:
    """One CSV file to import, read only when its turn comes."""

    name: str
    read: Callable[[], bytes]

    @property
    def sort_key(self) -> tuple[str, str]:
        # Day by day, so each meter's readings arrive in time order and validation
        # compares each with the one before it.
        match = DATE_IN_NAME.search(Path(self.name).name)
        return (match.group(1) if match else "", self.name)


@dataclass(frozen=True)
class Problem:
    """A rejected or flagged row: where it is and why."""

    file: str
    line: int
    reason: str
    detail: str = ""


@dataclass
class Row:
    file: str
    line: int
    key: tuple[int, dt.datetime]
    reading: dict


@dataclass
class Summary:
    """What an import did, row by row counted; see :meth:`lines` for the printed form."""

    files: int = 0
    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    quarantined: int = 0
    already_quarantined: int = 0
    flagged: int = 0
    rejected_reasons: Counter = field(default_factory=Counter)
    flagged_reasons: Counter = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    flagged_rows: list[Problem] = field(default_factory=list)
    first_ts: dt.datetime | None = None
    last_ts: dt.datetime | None = None

    def reject(self, problem: Problem) -> None:
        """Count one rejected row under its reason; list it while the list is short."""
        self.rejected += 1
        self.rejected_reasons[problem.reason] += 1
        if len(self.problems) < MAX_LISTED:
            self.problems.append(problem)

    def flag(self, problem: Problem) -> None:
        """Count one stored-but-flagged row; reasons are counted without their numbers."""
        self.flagged += 1
        for reason in problem.reason.split("; "):
            self.flagged_reasons[NUMBERS.sub("…", reason)] += 1
        if len(self.flagged_rows) < MAX_LISTED:
            self.flagged_rows.append(problem)

    def saw(self, ts: dt.datetime) -> None:
        self.first_ts = ts if self.first_ts is None else min(self.first_ts, ts)
        self.last_ts = ts if self.last_ts is None else max(self.last_ts, ts)

    @property
    def rejected_by_reason(self) -> list[tuple[str, int]]:
        """(reason, rows), most frequent first."""
        return self.rejected_reasons.most_common()

    @property
    def flagged_by_reason(self) -> list[tuple[str, int]]:
        """(reason, rows), most frequent first."""
        return self.flagged_reasons.most_common()

    @property
    def headline(self) -> str:
        """One sentence: accepted, duplicates, rejected, flagged."""
        text = (
            f"{self.rows} rows in {self.files} file{'s' if self.files != 1 else ''}: "
            f"{self.accepted} accepted, {self.duplicates} duplicates, {self.rejected} rejected"
        )
        if self.quarantined:
            text += f" ({self.quarantined} kept in quarantine)"
        return text + f", {self.flagged} flagged"

    def lines(self) -> list[str]:
        """The summary as plain text lines (for the command line)."""
        out = [self.headline + "."]
        if self.first_ts:
            out.append(
                f"Readings from {self.first_ts:%Y-%m-%d %H:%M}Z to {self.last_ts:%Y-%m-%d %H:%M}Z."
            )
        if self.already_quarantined:
            out.append(
                f"{self.already_quarantined} rejected rows were already in quarantine "
                "from an earlier import and were not added again."
            )
        for title, counts in (
            ("Rejected", self.rejected_reasons),
            ("Flagged", self.flagged_reasons),
        ):
            for reason, count in counts.most_common():
                out.append(f"{title}: {count} × {reason}")
        for p in self.problems:
            detail = f" ({p.detail})" if p.detail else ""
            out.append(f"  {p.file} line {p.line}: {p.reason}{detail}")
        if self.rejected > len(self.problems):
            out.append(f"  … and {self.rejected - len(self.problems)} more rejected rows.")
        return out

    def to_dict(self) -> dict:
        """JSON-ready form (the web result page keeps it on disk)."""
        return {
            "files": self.files,
            "rows": self.rows,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "quarantined": self.quarantined,
            "already_quarantined": self.already_quarantined,
            "flagged": self.flagged,
            "rejected_reasons": self.rejected_reasons.most_common(),
            "flagged_reasons": self.flagged_reasons.most_common(),
            "problems": [asdict(p) for p in self.problems],
            "flagged_rows": [asdict(p) for p in self.flagged_rows],
            "first_ts": self.first_ts.isoformat() if self.first_ts else None,
            "last_ts": self.last_ts.isoformat() if self.last_ts else None,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Summary:
        """The inverse of :meth:`to_dict`."""
        summary = cls(
            **{
                k: data[k]
                for k in (
                    "files",
                    "rows",
                    "accepted",
                    "duplicates",
                    "rejected",
                    "quarantined",
                    "already_quarantined",
                    "flagged",
                )
            }
        )
        summary.rejected_reasons = Counter(dict(data["rejected_reasons"]))
        summary.flagged_reasons = Counter(dict(data["flagged_reasons"]))
        summary.problems = [Problem(**p) for p in data["problems"]]
        summary.flagged_rows = [Problem(**p) for p in data["flagged_rows"]]
        for name in ("first_ts", "last_ts"):
            if data.get(name):
                setattr(summary, name, dt.datetime.fromisoformat(data[name]))
        return summary


# --- Finding the files ---------------------------------------------------------------------


def _is_csv(name: str) -> bool:
    parts = Path(name).parts
    hidden = any(p.startswith(".") or p == "__MACOSX" for p in parts)
    return not hidden and name.lower().endswith(".csv")


def sources_from_zip(name: str, data: bytes, *, max_bytes: int) -> list[Source]:
    """The CSV files inside a .zip (any folder depth); refuses archives that unpack too big."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [m for m in archive.infolist() if not m.is_dir() and _is_csv(m.filename)]
    except (zipfile.BadZipFile, OSError) as exc:
        raise HistoryFileError(f"{name} is not a readable .zip file.") from exc
    if sum(m.file_size for m in members) > max_bytes:
        raise HistoryFileError(
            f"{name} unpacks to more than {max_bytes // (1024 * 1024)} MB; split it."
        )

    def reader(member: zipfile.ZipInfo) -> Callable[[], bytes]:
        return lambda: archive.read(member)

    return [Source(f"{name}/{m.filename}", reader(m)) for m in members]


def sources_from_upload(name: str, data: bytes, *, max_bytes: int) -> list[Source]:
    """One uploaded file: a CSV as itself, a .zip as the CSV files inside it."""
    lower = name.lower()
    if lower.endswith(".zip"):
        return sources_from_zip(name, data, max_bytes=max_bytes)
    if lower.endswith(".csv"):
        return [Source(name, lambda: data)]
    raise HistoryFileError(f"{name}: only .csv files or a .zip of them can be imported.")


def sources_from_paths(paths: Iterable[Path], *, max_zip_bytes: int) -> list[Source]:
    """Files and folders (searched recursively for .csv and .zip files) on disk."""
    sources: list[Source] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file())
            files = [
                p for p in found if _is_csv(str(p.relative_to(path))) or p.suffix.lower() == ".zip"
            ]
        else:
            files = [path]
        for file in files:
            if file.suffix.lower() == ".zip":
                sources.extend(
                    sources_from_zip(str(file), file.read_bytes(), max_bytes=max_zip_bytes)
                )
            else:
                sources.append(Source(str(file), file.read_bytes))
    return sources


# --- Reading the rows ----------------------------------------------------------------------


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def to_utc(
    value: str, zone: zoneinfo.ZoneInfo, seen: set[dt.datetime]
) -> tuple[dt.datetime | None, str]:
    """A logger timestamp in the site's local time as UTC, or (None, reason).

    A time with an explicit offset is taken as written. A local time that a clock
    change skipped is refused; one that happened twice (the hour repeated when clocks
    go back) is the first occurrence unless the same file already had it, then the
    second.
    """
    text = value.strip()
    local = None
    try:
        local = dt.datetime.fromisoformat(text)
    except ValueError:
        for fmt in DAY_FIRST_FORMATS:
            try:
                local = dt.datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if local is None:
        return None, "timestamp is not a date and time"
    if local.tzinfo is not None:
        return local.astimezone(dt.UTC), ""
    first = local.replace(tzinfo=zone, fold=0)
    second = local.replace(tzinfo=zone, fold=1)
    if first.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None) != local:
        return None, "local time does not exist (clocks went forward)"
    ambiguous = first.utcoffset() != second.utcoffset()
    chosen = second if ambiguous and local in seen else first
    seen.add(local)
    return chosen.astimezone(dt.UTC), ""


def _number(text: str, column: str) -> tuple[float | None, str]:
    cleaned = text.strip()
    if cleaned.lower() in EMPTY:
        return None, ""
    try:
        value = float(cleaned)
    except ValueError:
        return None, f"{column} is not a number"
    if value != value or value in (float("inf"), float("-inf")):
        return None, f"{column} is not a finite number"
    return value, ""


def _address(text: str) -> int | None:
    cleaned = text.strip()
    if cleaned.lower().startswith("meter_"):
        cleaned = cleaned[6:]
    try:
        address = int(cleaned)
    except ValueError:
        return None
    return address if 1 <= address <= 247 else None


def read_rows(source: Source, zone: zoneinfo.ZoneInfo, summary: Summary) -> Iterator[Row]:
    """The readable rows of one file as contract readings; the others go to ``summary``."""
    try:
        text = _text(source.read())
    except (OSError, zipfile.BadZipFile, RuntimeError) as exc:
        summary.reject(Problem(source.name, 0, "file cannot be read", str(exc)))
        return
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    missing: list[str] = []
    index: dict[str, int] = {}
    seen: dict[int, set[dt.datetime]] = {}
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue
        line = reader.line_num
        if header is None:
            header = [c.strip() for c in cells]
            lowered = {name.lower(): i for i, name in enumerate(header)}
            index = {
                col: lowered[col.lower()] for col in (*REQUIRED, *VALUES) if col.lower() in lowered
            }
            missing = [col for col in REQUIRED if col not in index]
            continue
        summary.rows += 1
        if missing:
            summary.reject(
                Problem(
                    source.name,
                    line,
                    f"wrong columns: {', '.join(missing)} missing",
                    f"header: {','.join(header)}",
                )
            )
            continue
        row, problem = _row(source.name, line, cells, header, index, zone, seen)
        if problem:
            summary.reject(problem)
        else:
            yield row


def _row(
    name: str,
    line: int,
    cells: list[str],
    header: list[str],
    index: dict[str, int],
    zone: zoneinfo.ZoneInfo,
    seen: dict[int, set[dt.datetime]],
) -> tuple[Row | None, Problem | None]:
    if len(cells) != len(header):
        return None, Problem(
            name,
            line,
            "wrong number of fields",
            f"{len(cells)} fields, the header has {len(header)}",
        )
    raw_address = cells[index[METER_ID]]
    address = _address(raw_address)
    if address is None:
        return None, Problem(name, line, "meter_id is not a Modbus address 1–247", raw_address)
    energy, error = _number(cells[index[ENERGY]], ENERGY)
    if error:
        return None, Problem(name, line, error, cells[index[ENERGY]].strip())
    if energy is None:
        return None, Problem(name, line, f"{ENERGY} is empty")
    reading: dict = {"address": address, "energy_kwh": energy}
    for column, key in VALUES.items():
        if column not in index:
            continue
        value, error = _number(cells[index[column]], column)
        if error:
            return None, Problem(name, line, error, cells[index[column]].strip())
        if value is not None:
            reading[key] = value if key == "power_kw" else [value]
    raw_ts = cells[index[TIMESTAMP]]
    ts, error = to_utc(raw_ts, zone, seen.setdefault(address, set()))
    if error:
        return None, Problem(name, line, error, raw_ts.strip())
    reading["ts"] = ts.isoformat().replace("+00:00", "Z")
    return Row(name, line, (address, ts), reading), None


# --- Feeding the ingest path ---------------------------------------------------------------


class _Batches:
    """Collects rows into batches of at most ``size`` with no (meter, ts) twice in one batch.

    A row repeating one already in the batch waits for the next batch, where it
    meets the stored one and counts as a duplicate (one statement must not touch a
    row twice).
    """

    def __init__(self, flush: Callable[[list[Row]], None], size: int) -> None:
        self.flush_batch, self.size = flush, size
        self.rows: list[Row] = []
        self.keys: set[tuple[int, dt.datetime]] = set()
        self.waiting: list[Row] = []

    def add(self, row: Row) -> None:
        if row.key in self.keys:
            self.waiting.append(row)
            return
        self.rows.append(row)
        self.keys.add(row.key)
        if len(self.rows) >= self.size:
            self.flush()

    def flush(self) -> None:
        while self.rows:
            rows, self.rows, self.keys = self.rows, [], set()
            self.flush_batch(rows)
            waiting, self.waiting = self.waiting, []
            for row in waiting:
                self.add(row)


def _keep_quarantine_once(gateway: Gateway, after_id: int, now: dt.datetime) -> tuple[int, int]:
    """Mark this batch's quarantined rows as imported and drop any an earlier import kept.

    Returns (kept, dropped).
    """
    new = list(QuarantinedReading.objects.filter(pk__gt=after_id, gateway=gateway, received_at=now))
    if not new:
        return 0, 0

    def key(q: QuarantinedReading) -> tuple:
        return (q.address, q.ts, q.reason, json.dumps(q.payload, sort_keys=True))

    earlier = QuarantinedReading.objects.filter(
        pk__lte=after_id,
        gateway=gateway,
        resolved_at__isnull=True,
        address__in={q.address for q in new},
        ts__in={q.ts for q in new if q.ts is not None},
    )
    known = {key(q) for q in earlier}
    repeated = [q.pk for q in new if key(q) in known]
    QuarantinedReading.objects.filter(pk__in=repeated).delete()
    kept = [q.pk for q in new if q.pk not in set(repeated)]
    QuarantinedReading.objects.filter(pk__in=kept).update(source=QUARANTINE_SOURCE)
    return len(kept), len(repeated)


def _already_stored(gateway: Gateway, rows: list[Row]) -> set[tuple[int, dt.datetime]]:
    """The rows whose meter already has a measured reading at that time (two queries)."""
    bus = ingest.BusMap(gateway)
    meter_of = {}
    for row in rows:
        slot, _ = bus.meter_at(*row.key)
        if slot is not None:
            meter_of[row.key] = slot.meter_id
    if not meter_of:
        return set()
    times = [key[1] for key in meter_of]
    stored = set(
        Reading.objects.filter(
            meter_id__in=set(meter_of.values()),
            ts__gte=min(times),
            ts__lte=max(times),
            kind=Reading.Kind.REAL,
        ).values_list("meter_id", "ts")
    )
    return {key for key, meter_id in meter_of.items() if (meter_id, key[1]) in stored}


def _ingest_batch(gateway: Gateway, rows: list[Row], summary: Summary, now: dt.datetime) -> None:
    last_id = QuarantinedReading.objects.aggregate(last=Max("pk"))["last"] or 0
    with transaction.atomic():
        stored = _already_stored(gateway, rows)
        outcome = ingest.ingest(gateway=gateway, readings=[r.reading for r in rows], now=now)
        _, dropped = _keep_quarantine_once(gateway, last_id, now)
        tasks.after_ingest(outcome, now=now)
    summary.accepted += outcome.accepted
    summary.duplicates += outcome.duplicates
    summary.already_quarantined += dropped
    for item in outcome.rejected:
        row = rows[item["index"]]
        summary.quarantined += 1
        summary.reject(Problem(row.file, row.line, item["reason"]))
    for item in outcome.flagged:
        row = rows[item["index"]]
        if row.key in stored:
            continue  # a duplicate: nothing was stored, so nothing new to look at
        summary.flag(Problem(row.file, row.line, item["reason"]))
    for row in rows:
        summary.saw(row.key[1])


def import_sources(
    *,
    gateway: Gateway,
    sources: Iterable[Source],
    user: User | None = None,
    label: str | None = None,
    now: dt.datetime | None = None,
    batch_size: int = BATCH,
) -> Summary:
    """Import logger CSV files for ``gateway``; see the module docstring.

    Each batch is stored in its own transaction, so a large import keeps what it
    stored if it stops half way; running it again completes it (the rest are
    duplicates).
    """
    at = clock.resolve(now)
    size = max(1, min(batch_size, BATCH))
    zone = gateway.site.zone
    summary = Summary()
    who = label or (f"history import by {user.get_username()}" if user else "history import")
    with audit.acting_as(user, label=who, channel=AuditEvent.Channel.IMPORT):
        batches = _Batches(lambda rows: _ingest_batch(gateway, rows, summary, at), size)
        for source in sorted(sources, key=lambda s: s.sort_key):
            summary.files += 1
            for row in read_rows(source, zone, summary):
                batches.add(row)
        batches.flush()
    return summary
