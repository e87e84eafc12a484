"""Security's periodic tasks, loaded by ``manage.py sync_schedules``."""

import datetime as dt

SCHEDULES = (
    dict(
        name="security.purge_counters",
        task="mcoms.security.tasks.purge_counters",
        every=dt.timedelta(days=1),
        description="Forget failure counters (sign-in, PINs, codes sent) past every window "
        "and holding no lock.",
    ),
)
