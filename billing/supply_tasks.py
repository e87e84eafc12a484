"""Periodic task: close supply requests that the steering rules have finished with."""

from __future__ import annotations

from celery import shared_task

from billing import supply
from mcoms.core.audit import acting_as


@shared_task(name="billing.supply_tasks.sync_supply_outcomes")
def sync_supply_outcomes() -> dict:
    with acting_as(label="supply request sync"):
        return {str(k): v for k, v in supply.sync_outcomes().items()}
