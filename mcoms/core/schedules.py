"""The core's periodic tasks, loaded by ``manage.py sync_schedules``."""

import datetime as dt

SCHEDULES = (
    dict(
        name="core.outbox_sweep",
        task="mcoms.core.tasks.outbox_sweep",
        every=dt.timedelta(minutes=1),
        description="Publish the tasks still in the outbox (the broker was down when they "
        "were asked for); forget task delivery counts older than a day.",
    ),
)
