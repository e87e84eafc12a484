"""Billing's periodic tasks (loaded by ``manage.py sync_schedules``)."""

from __future__ import annotations

import datetime as dt

SCHEDULES = (
    dict(
        name="billing.start_due_runs",
        task="billing.tasks.start_due_runs",
        every=dt.timedelta(minutes=15),
        description=(
            "Start last month's billing run (preview) on each site once its run day and hour "
            "(site policy, default the 1st at 08:00 site time) have passed; an officer posts it."
        ),
    ),
    dict(
        name="billing.post_charge_instalments",
        task="billing.charge_tasks.post_due_instalments",
        every=dt.timedelta(hours=1),
        description="Post charge instalments (connection fees, deposits) that have fallen due.",
    ),
    dict(
        name="billing.sync_supply_outcomes",
        task="billing.supply_tasks.sync_supply_outcomes",
        every=dt.timedelta(minutes=5),
        description="Close disconnect/reconnect requests that the steering rules have finished.",
    ),
)
