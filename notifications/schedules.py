"""Notifications' periodic tasks, loaded by ``manage.py sync_schedules``."""

import datetime as dt

SCHEDULES = (
    dict(
        name="notifications.send_due_broadcasts",
        task="notifications.broadcasts.send_due_broadcasts",
        every=dt.timedelta(minutes=1),
        description="Send scheduled staff broadcasts that are due; resume stalled ones.",
    ),
)
