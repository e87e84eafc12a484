"""Steering's periodic tasks (loaded by ``manage.py sync_schedules``)."""

import datetime as dt

SCHEDULES = (
    dict(
        name="steering.sweep",
        task="metering.steering.tasks.sweep",
        every=dt.timedelta(minutes=1),
        description="Resume relay commands, token vends and pushes, and remote reads due now.",
    ),
    dict(
        name="steering.import_daily",
        task="metering.steering.tasks.import_daily",
        every=dt.timedelta(hours=6),
        description="Store yesterday's cumulative kWh of Calin meters as readings.",
    ),
    dict(
        name="steering.refresh_online",
        task="metering.steering.tasks.refresh_online",
        every=dt.timedelta(minutes=15),
        description="Record which Calin concentrators the head-end sees online.",
    ),
)
