"""Retention of raw readings: old months go to compressed files, their partitions are dropped.

Pages, bills and the consumption API read the rollups (``HourlyUsage``, ``DailyUsage``,
``SiteDailyUsage``, ``SiteHourlyUsage``), never raw readings older than a few days, so
raw readings older than ``READINGS_RETENTION_MONTHS`` (default 24; 0 keeps everything)
leave the database. Rollups, invoices and the ledger are not touched.

For each month older than that, :func:`archive_month`:

1. takes the month's rows (on PostgreSQL the month's partition is locked against
   writes first, so nothing can arrive between reading and dropping);
2. writes one gzip CSV per site, ``<archive>/<site code>/<YYYY-MM>.csv.gz``
   (``COLUMNS`` as the header; meters without a site under ``_nosite``), ordered by
   meter and time and byte-for-byte deterministic (no name or time in the gzip header);
3. reads every file back and checks its rows against the database (count and digest)
   and records its SHA-256 and row count in ``<archive>/manifest.json``;
4. only then drops the partition (``DROP TABLE metering_reading_pYYYYMM``; on SQLite
   deletes the month's rows) and removes the month from the partition register
   (``ReadingPartition``), so a reading of that month arriving later is quarantined
   (``no partition for YYYY-MM``) like any month without a partition — audited.

:func:`load_month` brings an archived month back: it checks each file against the
manifest, re-creates the partition through :func:`metering.partitions.ensure_months`,
inserts the rows exactly as they were, and holds the month (``hold_until``, default 30
days) so the daily retention run does not archive it again while someone is using it.
The files stay where they are.

A rollup refresh never reaches into an archived month from a later reading: readings of
an archived month are quarantined, and ``rollups.refresh`` only rewrites the hours
between billable readings it finds.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction

from mcoms.core import audit, clock
from mcoms.core.models import AuditEvent
from metering import ingest, partitions
from metering.models import Meter, Reading, ReadingPartition

COLUMNS = ingest.COLUMNS  # the archive keeps every column of the readings table
_INT = {"meter_id", "gateway_id"}
_DATETIME = {"ts", "received_at"}
_DECIMAL = {"energy_kwh", "export_kwh"}
_TEXT = {"kind", "quality", "flags"}
NO_SITE = "_nosite"
MANIFEST = "manifest.json"
HOLD_DAYS = 30


class ArchiveError(Exception):
    """An archive could not be written, verified or loaded; nothing was dropped or changed."""


@dataclass
class MonthResult:
    month: dt.date
    files: dict[str, int] = field(default_factory=dict)  # relative path -> rows
    rows: int = 0


def archive_dir() -> Path:
    return Path(getattr(settings, "READINGS_ARCHIVE_DIR", settings.VAR_DIR / "archive/readings"))


def retention_months() -> int:
    return int(getattr(settings, "READINGS_RETENTION_MONTHS", 24))


def _month_range(month: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(month, dt.time(), tzinfo=dt.UTC)
    return start, dt.datetime.combine(partitions.next_month(month), dt.time(), tzinfo=dt.UTC)


def _partition_table(month: dt.date) -> str:
    return f"{partitions.TABLE}_p{month:%Y%m}"


# --- The files -------------------------------------------------------------------------


def _text(name: str, value) -> str:
    if value is None:
        return ""
    if name in _DATETIME:
        return value.astimezone(dt.UTC).isoformat()
    if name in _DECIMAL:
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _value(name: str, text: str):
    if name in _TEXT:
        return text
    if text == "":
        return None
    if name in _INT:
        return int(text)
    if name in _DATETIME:
        return dt.datetime.fromisoformat(text)
    if name in _DECIMAL:
        return Decimal(text)
    return float(text)


def _line(row: list[str]) -> bytes:
    return ("\x1f".join(row) + "\n").encode()


def _write(path: Path, rows) -> tuple[int, str]:
    """Write rows (lists of text) as gzip CSV, atomically; returns (rows, digest of rows)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    digest = hashlib.sha256()
    count = 0
    with open(partial, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            text = io.TextIOWrapper(gz, encoding="utf-8", newline="")
            writer = csv.writer(text, lineterminator="\n")
            writer.writerow(COLUMNS)
            for row in rows:
                writer.writerow(row)
                digest.update(_line(row))
                count += 1
            text.flush()
            text.detach()
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(partial, path)
    return count, digest.hexdigest()


def _read(path: Path):
    """The rows of an archive file, as lists of text (header checked)."""
    with gzip.open(path, "rt", encoding="utf-8", newline="") as text:
        reader = csv.reader(text)
        header = next(reader, None)
        if header != COLUMNS:
            raise ArchiveError(f"{path}: not a readings archive (header {header!r})")
        yield from reader


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(root: Path | None = None) -> dict:
    path = (root or archive_dir()) / MANIFEST
    if not path.exists():
        return {"files": {}, "months": {}}
    return json.loads(path.read_text())


def _write_manifest(root: Path, manifest: dict) -> None:
    root.mkdir(parents=True, exist_ok=True)
    partial = root / (MANIFEST + ".partial")
    partial.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    os.replace(partial, root / MANIFEST)


# --- Archive -----------------------------------------------------------------------------


def months_due(*, now: dt.datetime | None = None, keep_months: int | None = None) -> list[dt.date]:
    """Months with a partition that ended more than ``keep_months`` months ago (not held)."""
    keep = retention_months() if keep_months is None else keep_months
    if keep <= 0:
        return []
    now = clock.resolve(now)
    cutoff = partitions.month_start(now)
    for _ in range(keep):
        cutoff = (cutoff - dt.timedelta(days=1)).replace(day=1)
    held = read_manifest()["months"]
    due = []
    for month in sorted(partitions.available_months()):
        if month >= cutoff:
            continue
        hold = held.get(f"{month:%Y-%m}", {}).get("hold_until")
        if hold and dt.datetime.fromisoformat(hold) > now:
            continue
        due.append(month)
    return due


@transaction.atomic
def archive_month(
    month: dt.date, *, root: Path | None = None, now: dt.datetime | None = None
) -> MonthResult:
    """Archive one month's readings to files, verify them, then drop the month (see above)."""
    month = partitions.month_start(month)
    root = root or archive_dir()
    now = clock.resolve(now)
    register = ReadingPartition.objects.select_for_update().filter(month=month).first()
    if register is None:
        raise ArchiveError(f"{month:%Y-%m} has no partition: nothing to archive")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f'LOCK TABLE "{_partition_table(month)}" IN EXCLUSIVE MODE')
    start, end = _month_range(month)
    in_month = Reading.objects.filter(ts__gte=start, ts__lt=end)
    site_of = {
        meter_id: code or NO_SITE
        for meter_id, code in Meter.objects.filter(
            pk__in=in_month.order_by().values("meter_id").distinct()
        ).values_list("pk", "site__code")
    }
    result = MonthResult(month=month)
    manifest = read_manifest(root)
    for code in sorted(set(site_of.values())):
        meters = sorted(m for m, c in site_of.items() if c == code)
        rows = in_month.filter(meter_id__in=meters).order_by("meter_id", "ts")
        expected = rows.count()
        relative = f"{code}/{month:%Y-%m}.csv.gz"
        path = root / relative
        written, digest = _write(
            path,
            (
                [_text(name, value) for name, value in zip(COLUMNS, values, strict=True)]
                for values in rows.values_list(*COLUMNS).iterator(chunk_size=5000)
            ),
        )
        check = hashlib.sha256()
        read_back = 0
        for row in _read(path):
            check.update(_line(row))
            read_back += 1
        if not (written == read_back == expected) or check.hexdigest() != digest:
            raise ArchiveError(
                f"{relative}: {read_back} rows read back, {expected} in the database; "
                "the month is kept"
            )
        manifest["files"][relative] = {
            "month": f"{month:%Y-%m}",
            "site": code,
            "rows": written,
            "sha256": _file_sha256(path),
            "archived_at": now.isoformat(),
        }
        result.files[relative] = written
        result.rows += written
    if result.rows != in_month.count():
        raise ArchiveError(f"{month:%Y-%m}: rows changed while archiving; the month is kept")
    entry = manifest["months"].setdefault(f"{month:%Y-%m}", {})
    entry.update(archived_at=now.isoformat(), rows=result.rows, files=sorted(result.files))
    entry.pop("hold_until", None)
    _write_manifest(root, manifest)

    before = audit.snapshot(register)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f'DROP TABLE "{_partition_table(month)}"')
    else:
        in_month.delete()
    register.delete()
    audit.record(
        AuditEvent.Action.DELETE,
        register,
        before=before,
        after={"archived_rows": result.rows, "files": result.files},
        note=f"readings of {month:%Y-%m} archived to {root} and the month's partition dropped",
    )
    return result


def archive_due(
    *, now: dt.datetime | None = None, keep_months: int | None = None, root: Path | None = None
) -> list[MonthResult]:
    """Archive every month due (oldest first), each in its own transaction."""
    return [
        archive_month(month, root=root, now=now)
        for month in months_due(now=now, keep_months=keep_months)
    ]


# --- Load back -------------------------------------------------------------------------


def load_month(
    month: dt.date,
    *,
    root: Path | None = None,
    now: dt.datetime | None = None,
    hold_days: int = HOLD_DAYS,
) -> int:
    """Bring an archived month back into the readings table; returns the rows loaded."""
    month = partitions.month_start(month)
    root = root or archive_dir()
    now = clock.resolve(now)
    manifest = read_manifest(root)
    key = f"{month:%Y-%m}"
    if key not in manifest["months"]:
        raise ArchiveError(f"{key} is not in the archive at {root}")
    files = manifest["months"][key].get("files", [])
    for relative in files:
        info = manifest["files"][relative]
        path = root / relative
        if not path.exists():
            raise ArchiveError(f"{relative} is missing")
        if _file_sha256(path) != info["sha256"]:
            raise ArchiveError(f"{relative} does not match its checksum in the manifest")
    loaded = 0
    with transaction.atomic():
        if month in partitions.available_months():
            start, end = _month_range(month)
            if Reading.objects.filter(ts__gte=start, ts__lt=end).exists():
                raise ArchiveError(f"{key} already holds readings: load it into an empty month")
        partitions.ensure_months([month])
        for relative in files:
            batch: list[Reading] = []
            for row in _read(root / relative):
                values = {n: _value(n, t) for n, t in zip(COLUMNS, row, strict=True)}
                batch.append(Reading(**values))
                if len(batch) >= 5000:
                    Reading.objects.bulk_create(batch)
                    loaded += len(batch)
                    batch = []
            Reading.objects.bulk_create(batch)
            loaded += len(batch)
            if loaded > sum(manifest["files"][f]["rows"] for f in files):
                raise ArchiveError(f"{relative} holds more rows than its manifest says")
        expected = sum(manifest["files"][f]["rows"] for f in files)
        if loaded != expected:
            raise ArchiveError(f"{key}: {loaded} rows loaded, the manifest says {expected}")
        register = ReadingPartition.objects.get(month=month)
        audit.record(
            AuditEvent.Action.CREATE,
            register,
            after={**audit.snapshot(register), "loaded_rows": loaded, "files": files},
            note=f"readings of {key} loaded back from the archive",
        )
    entry = manifest["months"][key]
    entry["loaded_at"] = now.isoformat()
    entry["hold_until"] = (now + dt.timedelta(days=hold_days)).isoformat()
    _write_manifest(root, manifest)
    return loaded
