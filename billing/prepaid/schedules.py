"""Prepaid's periodic tasks (loaded by ``manage.py sync_schedules``)."""

from __future__ import annotations

import datetime as dt

SCHEDULES = (
    dict(
        name="prepaid.draw_down",
        task="billing.prepaid.tasks.draw_down",
        every=dt.timedelta(minutes=15),
        description=(
            "Draw prepaid-credit customers' newly validated hourly consumption from their "
            "credit (each hour once), message low balances and request disconnection at zero."
        ),
    ),
    dict(
        name="prepaid.vend_waiting",
        task="billing.prepaid.tasks.vend_waiting",
        every=dt.timedelta(minutes=5),
        description="Buy and text the tokens of sales still waiting for one (Calin was down).",
    ),
)
