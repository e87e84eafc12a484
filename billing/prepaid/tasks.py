"""Prepaid's periodic task: draw prepaid-credit customers' new consumption from their credit."""

from __future__ import annotations

import datetime as dt

from celery import shared_task

from billing.prepaid import credit, vending
from mcoms.core import audit
from mcoms.core.models import AuditEvent


@shared_task(acks_late=True)
def draw_down(now: str | None = None) -> dict:
    """Charge every prepaid-credit customer's due hours; returns counts for the log.

    Safe to run again or concurrently: each customer's watermark is locked while drawn
    and each posting's reference names the hours it charges.
    """
    at = dt.datetime.fromisoformat(now) if now else None
    with audit.acting_as(label="prepaid draw-down", channel=AuditEvent.Channel.TASK):
        report = credit.draw_all(now=at)
    return {
        "customers": report.customers,
        "draws": report.draws,
        "charged": {cur: str(total) for cur, total in report.charged.items()},
        "failed": report.failed,
    }


@shared_task(acks_late=True)
def vend_token(purchase_id: int) -> str:
    """Buy and text the token of one sold purchase (started after the sale commits)."""
    with audit.acting_as(label="token vending", channel=AuditEvent.Channel.TASK):
        return vending.vend_purchase(purchase_id).status


@shared_task(acks_late=True)
def vend_waiting() -> dict:
    """Retry every purchase still waiting for its token (Calin down, outcome unknown)."""
    with audit.acting_as(label="token vending", channel=AuditEvent.Channel.TASK):
        return vending.vend_waiting()
