"""The plant's periodic tasks (loaded by ``manage.py sync_schedules``)."""

import datetime as dt

SCHEDULES = (
    dict(
        name="plant.daily_balance",
        task="metering.plant.tasks.daily_balance",
        every=dt.timedelta(hours=6),
        description="Energy balance of the last three days and their month per site; "
        "losses alerts.",
    ),
    dict(
        name="plant.check_health",
        task="metering.plant.tasks.check_health",
        every=dt.timedelta(minutes=15),
        description="Battery below its floor, no PV in daylight, inverter data silent.",
    ),
)
