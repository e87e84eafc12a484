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
    dict(
        name="ops.watch_operations",
        task="mcoms.ops.tasks.watch_operations",
        every=dt.timedelta(minutes=5),
        description="Check the operations figures against their thresholds; tell admins "
        "once when one fails (again every few hours) and when it is fixed.",
    ),
    dict(
        name="ops.check_sms_balance",
        task="mcoms.ops.tasks.check_sms_balance",
        every=dt.timedelta(minutes=30),
        description="Read the SMS provider's credit (Africa's Talking) for the checks.",
    ),
)
