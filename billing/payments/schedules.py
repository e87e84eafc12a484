"""Payments' periodic tasks (loaded by ``manage.py sync_schedules``)."""

import datetime

SCHEDULES = (
    dict(
        name="payments.poll_pending_requests",
        task="billing.payments.tasks.poll_pending_requests",
        every=datetime.timedelta(minutes=2),
        description="Ask MTN, Airtel and Pesapal about pending payment requests; expire stale "
        "ones (callbacks can be lost: MTN sends one, once).",
    ),
)
