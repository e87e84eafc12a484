"""Billing's figures for operations (backups, monitoring): read-only, no scoping.

Used by ``mcoms.ops`` (the operations app, top layer) and nothing else: the restore
drill compares every ledger account's balance before and after, and the operations
page shows the state of billing runs.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db.models import Count, Sum

from billing.models import BillingRun, LedgerAccount, PostingLine


def account_balances() -> dict[str, Decimal]:
    """Every ledger account's balance (sum of its lines, debit positive), by account key."""
    totals = dict(
        PostingLine.objects.order_by().values_list("account").annotate(total=Sum("amount"))
    )
    return {
        key: totals.get(pk) or Decimal(0)
        for pk, key in LedgerAccount.objects.order_by("key").values_list("pk", "key")
    }


def billing_runs_by_status() -> dict[str, int]:
    """How many billing runs are in each status (every status listed, zero included)."""
    counts = dict(BillingRun.objects.order_by().values_list("status").annotate(n=Count("pk")))
    return {value: counts.get(value, 0) for value in BillingRun.Status.values}


WORKING = (BillingRun.Status.PENDING, BillingRun.Status.PREVIEWING, BillingRun.Status.POSTING)


def billing_runs_stuck(*, before: dt.datetime) -> int:
    """Runs still working (waiting, previewing or posting) with no progress since ``before``."""
    return BillingRun.objects.filter(status__in=WORKING, updated_at__lt=before).count()


def billing_runs_failed(*, since: dt.datetime) -> int:
    """Runs that failed and were last touched at or after ``since``."""
    return BillingRun.objects.filter(status=BillingRun.Status.FAILED, updated_at__gte=since).count()
