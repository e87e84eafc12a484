"""Self-service's periodic tasks (loaded by ``manage.py sync_schedules``)."""

from __future__ import annotations

import datetime as dt

SCHEDULES = (
    dict(
        name="selfservice.purge_sessions",
        task="notifications.selfservice.tasks.purge_sessions",
        every=dt.timedelta(hours=6),
        description="Forget USSD sessions and portal sign-in codes older than two days.",
    ),
)
