"""Importing and exporting the operator's meter spreadsheet.

An import is previewed first: every row is validated against the sheet's rules,
the address plan and the importing person's scope, and the preview says what
would happen to each row and every reason a bad row is bad. Applying re-plans
inside one transaction and writes the good rows through :mod:`metering.services`
(so each lifecycle step keeps the sheet's date and signer and is audited with
channel "import"); bad rows are skipped and reported. Cell parsing lives in
:mod:`metering.inventory_parse`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from mcoms.core.audit import acting_as
from mcoms.core.models import AuditEvent, User
from metering import inventory_parse as p
from metering import services
from metering.inventory_parse import EXTRA_COLUMNS, SHEET_COLUMNS, ImportFileError, read_table
from metering.inventory_plan import (
    CREATE,
    ERROR,
    UNCHANGED,
    UPDATE,
    Preview,
    RowPlan,
    plan_rows,
)
from metering.lifecycle import Status
from metering.models import Meter

__all__ = [
    "CREATE",
    "ERROR",
    "EXTRA_COLUMNS",
    "SHEET_COLUMNS",
    "UNCHANGED",
    "UPDATE",
    "ImportFileError",
    "ImportResult",
    "Preview",
    "RowPlan",
    "apply_file",
    "export_table",
    "plan_rows",
    "preview_file",
    "read_table",
]
S = Status


@dataclass
class ImportResult:
    """What an applied import did."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[tuple[int, str, list[str]]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """One line: how many rows were created, updated, left, and skipped."""
        return (
            f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged, "
            f"{len(self.skipped)} skipped"
        )


def preview_file(
    data: bytes, filename: str, user: User, *, now: dt.datetime | None = None
) -> Preview:
    """Read and plan a sheet without writing anything; ImportFileError if unreadable."""
    table = read_table(data, filename)
    return plan_rows(table, user, now=now, warnings=table.warnings)


def apply_file(
    data: bytes, filename: str, user: User, *, now: dt.datetime | None = None
) -> ImportResult:
    """Re-plan the sheet and write its good rows in one transaction, attributed to ``user``."""
    label = user.get_username()
    with transaction.atomic(), acting_as(user, label=label, channel=AuditEvent.Channel.IMPORT):
        preview = preview_file(data, filename, user, now=now)
        result = ImportResult(warnings=preview.warnings)
        for row in preview.rows:
            if row.action == ERROR:
                result.skipped.append((row.line, row.serial, row.errors))
            elif row.action == UNCHANGED:
                result.unchanged += 1
            else:
                try:
                    # A savepoint per row: one row failing late leaves the others intact.
                    with transaction.atomic():
                        _apply_row(row, filename)
                except ValidationError as exc:
                    result.skipped.append((row.line, row.serial, exc.messages))
                except IntegrityError:
                    reason = "conflicts with a meter already in MCOMS (serial or address taken)"
                    result.skipped.append((row.line, row.serial, [reason]))
                else:
                    if row.action == CREATE:
                        result.created += 1
                    else:
                        result.updated += 1
    return result


def _apply_row(row: RowPlan, filename: str) -> None:
    note = f"imported from {filename}, line {row.line}"
    meter = row.meter
    if meter is None:
        meter = services.meter_create(
            serial=row.serial,
            model=row.model,
            phases=row.phases,
            ct_ratio=row.ct_ratio or 1,
            label=row.label,
            notes=row.notes,
            now=row.created_at,
        )
    elif row.updates:
        meter = services.meter_update(meter=meter, **row.updates)
    for step in row.steps:
        if step.status == S.ASSIGNED:
            meter = services.meter_assign(
                meter=meter, site=row.site, address=row.address, by_name=step.by_name, now=step.at
            )
        else:
            meter = services.meter_move(
                meter=meter,
                status=step.status,
                by_name=step.by_name,
                note=note,
                gateway=row.gateway if step.status == S.INSTALLED else None,
                now=step.at,
            )


def export_table(meters, fmt: str) -> bytes:
    """The meters as the operator's sheet (its columns first, then MCOMS's), CSV or XLSX."""
    if fmt not in ("csv", "xlsx"):
        raise ValueError(f"unknown export format {fmt!r}")
    rows = [
        _export_row(m) for m in meters.select_related("site", "gateway").prefetch_related("events")
    ]
    return p.write_csv(rows) if fmt == "csv" else p.write_xlsx(rows)


def _export_row(meter: Meter) -> dict:
    zone = meter.site.zone if meter.site else timezone.get_default_timezone()
    latest = {event.to_status: event for event in meter.events.all()}
    row = {
        p.SERIAL: meter.serial,
        p.TYPE: meter.model,
        p.SITE: meter.site.name if meter.site else "",
        p.LABEL: meter.label,
        p.ADDRESS: meter.modbus_address,
        p.STATUS: meter.get_status_display(),
        p.NOTES: meter.notes,
        p.GATEWAY: meter.gateway.name if meter.gateway else "",
        p.PHASES: meter.phases,
        p.CT_RATIO: format(meter.ct_ratio.normalize(), "f"),
    }
    for status, (date_col, by_col) in p.STEP_COLUMNS.items():
        event = latest.get(status)
        if event is not None:
            row[date_col] = event.at.astimezone(zone).date()
            row[by_col] = event.by_name
    return row
