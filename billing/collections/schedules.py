"""Collections' periodic tasks (loaded by ``manage.py sync_schedules``)."""

import datetime as dt

SCHEDULES = (
    dict(
        name="collections.run",
        task="billing.collections.tasks.run_collections",
        every=dt.timedelta(hours=1),
        description=(
            "Due-date reminders, impending-disconnection notices and, after the grace "
            "period and inside working hours, arrears disconnect requests; cancels them "
            "when arrears are paid. Hourly so each site's own hours are honoured."
        ),
    ),
)
