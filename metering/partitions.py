"""Monthly partitions of the readings table.

On PostgreSQL ``metering_reading`` is declared ``PARTITION BY RANGE (ts)``, one
partition a month, created ahead of time by a scheduled task. There is no default
partition: a default partition holding rows of a month would block creating that
month's partition later. So the platform keeps a register of the months that
exist (``ReadingPartition``, on every database) and quarantines any reading whose
month is not there. SQLite has no partitions; the register behaves the same so
both backends accept and quarantine alike.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import connection, transaction

from mcoms.core import clock
from metering.models import ReadingPartition

TABLE = "metering_reading"


def month_start(value: dt.datetime | dt.date) -> dt.date:
    """The first day of the (UTC) month containing ``value``."""
    if isinstance(value, dt.datetime):
        value = value.astimezone(dt.UTC).date()
    return value.replace(day=1)


def next_month(month: dt.date) -> dt.date:
    return (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def create_table(schema_editor, model) -> None:
    """Create the readings table: partitioned on PostgreSQL, plain elsewhere (migration)."""
    if schema_editor.connection.vendor != "postgresql":
        schema_editor.create_model(model)
        return
    sql, params = schema_editor.table_sql(model)
    schema_editor.execute(f'{sql} PARTITION BY RANGE ("ts")', params or None)


def _partition_name(month: dt.date) -> str:
    return f"{TABLE}_p{month:%Y%m}"


@transaction.atomic
def ensure_months(months: Iterable[dt.date]) -> list[dt.date]:
    """Make sure a partition exists for each month; returns the months it created."""
    created = []
    known = set(ReadingPartition.objects.values_list("month", flat=True))
    for month in sorted({month_start(m) for m in months}):
        if month in known:
            continue
        if connection.vendor == "postgresql":
            start = dt.datetime.combine(month, dt.time(), tzinfo=dt.UTC)
            end = dt.datetime.combine(next_month(month), dt.time(), tzinfo=dt.UTC)
            with connection.cursor() as cursor:
                cursor.execute(
                    f'CREATE TABLE IF NOT EXISTS "{_partition_name(month)}" PARTITION OF "{TABLE}" '
                    "FOR VALUES FROM (%s) TO (%s)",
                    [start, end],
                )
        ReadingPartition.objects.create(month=month, created_at=clock.now())
        created.append(month)
    return created


def ensure_ahead(*, now: dt.datetime | None = None, back: int = 1, ahead: int = 3) -> list[dt.date]:
    """Partitions from ``back`` months before now to ``ahead`` months after it."""
    current = month_start(clock.resolve(now))
    months = [current]
    earlier = later = current
    for _ in range(back):
        earlier = (earlier - dt.timedelta(days=1)).replace(day=1)
        months.append(earlier)
    for _ in range(ahead):
        later = next_month(later)
        months.append(later)
    return ensure_months(months)


def available_months() -> set[dt.date]:
    """The months readings can be stored in."""
    return set(ReadingPartition.objects.values_list("month", flat=True))
