"""Operations' periodic tasks, loaded by ``manage.py sync_schedules``."""

import datetime as dt

SCHEDULES = (
    dict(
        name="ops.archive_old_readings",
        task="mcoms.ops.tasks.archive_old_readings",
        every=dt.timedelta(days=1),
        description="Archive raw readings past READINGS_RETENTION_MONTHS to files and drop "
        "their partitions (a no-op except once a month).",
    ),
)
