"""Payments' public queries for field supervisors: what each agent took, in a time window."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Q, Sum

from billing.payments.models import Method, Payment

ZERO = Decimal(0)


@dataclass(frozen=True)
class Takings:
    payments: int  # payments the agent recorded (any method)
    amount: Decimal  # their total
    cash: Decimal  # cash the agent took and holds (or handed over)


def agent_takings(
    agent_ids: Iterable[int], site_ids: Iterable[int], start: dt.datetime, end: dt.datetime
) -> dict[int, Takings]:
    """Per agent: payments recorded and cash taken on ``site_ids`` in ``[start, end)``.

    Reversed payments do not count; refunded ones still do (the sale happened).
    """
    agent_ids = list(agent_ids)
    base = Payment.objects.filter(
        site_id__in=list(site_ids), received_at__gte=start, received_at__lt=end
    ).exclude(status=Payment.Status.REVERSED)
    recorded = {
        row["recorded_by"]: row
        for row in base.filter(recorded_by__in=agent_ids)
        .values("recorded_by")
        .annotate(n=Count("id"), total=Sum("amount"))
        .order_by()
    }
    cash = dict(
        base.filter(agent__in=agent_ids)
        .filter(Q(method=Method.CASH))
        .values("agent")
        .annotate(total=Sum("amount"))
        .order_by()
        .values_list("agent", "total")
    )
    return {
        pk: Takings(
            payments=recorded.get(pk, {}).get("n", 0),
            amount=recorded.get(pk, {}).get("total") or ZERO,
            cash=cash.get(pk) or ZERO,
        )
        for pk in agent_ids
    }
