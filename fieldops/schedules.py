"""Field operations' periodic tasks (loaded by ``manage.py sync_schedules``)."""

import datetime as dt

SCHEDULES = (
    dict(
        name="fieldops.sync_field_tasks",
        task="fieldops.tasks.sync_field_tasks",
        every=dt.timedelta(minutes=2),
        description="Field tasks from alerts, missing reads, requests, field jobs, shipped "
        "meters and arrears; cancel those whose source has gone.",
    ),
)
