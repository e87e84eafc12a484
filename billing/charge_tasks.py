"""Celery task that posts charge instalments as they fall due (see :mod:`billing.charges`)."""

from __future__ import annotations

from dataclasses import asdict

from celery import shared_task

from billing import charges


@shared_task(acks_late=True, ignore_result=True)
def post_due_instalments() -> dict:
    """Post every instalment due by today (run hourly); one already posted is left alone."""
    return asdict(charges.post_due())
