"""Metering's figures for operations monitoring (``mcoms.ops``): read-only, no scoping.

Everything is derived from tables ingest already writes — ``EdgeBatch`` (each accepted
upload with its answer), ``QuarantinedReading`` (each rejected reading with its reason),
``Reading.received_at`` and the gateways' heartbeats — so every web and worker process
sees the same figures without counters of its own.
"""

from __future__ import annotations

import datetime as dt
import random

from django.db.models import Count, Sum

from metering import watch
from metering.models import EdgeBatch, MeterComms, QuarantinedReading, Reading

# How many recently heard meters the latency sample takes (index range scans only).
LATENCY_SAMPLE = 500

REJECT_KINDS = (
    ("malformed reading", "malformed"),
    ("no meter assigned", "no_meter"),
    ("no partition", "no_partition"),
)


def batches_since(since: dt.datetime) -> dict[str, int]:
    """Uploads accepted since ``since``: batches, readings sent, stored, duplicates, flagged."""
    rows = EdgeBatch.objects.filter(received_at__gte=since)
    totals = rows.aggregate(batches=Count("pk"), readings=Sum("readings"))
    out = {
        "batches": totals["batches"] or 0,
        "readings": totals["readings"] or 0,
        "accepted": 0,
        "duplicates": 0,
        "flagged": 0,
    }
    for answer in rows.values_list("answer", flat=True).iterator(chunk_size=2000):
        if not isinstance(answer, dict):
            continue
        out["accepted"] += int(answer.get("accepted") or 0)
        out["duplicates"] += int(answer.get("duplicates") or 0)
        out["flagged"] += len(answer.get("flagged") or [])
    return out


def reject_kind(reason: str) -> str:
    for prefix, kind in REJECT_KINDS:
        if reason.startswith(prefix):
            return kind
    return "other"


def rejected_since(since: dt.datetime) -> dict[str, int]:
    """Readings quarantined since ``since``, by kind of reason (every kind listed)."""
    counts = {kind: 0 for _, kind in REJECT_KINDS} | {"other": 0}
    rows = (
        QuarantinedReading.objects.filter(received_at__gte=since)
        .order_by()
        .values_list("reason")
        .annotate(n=Count("pk"))
    )
    for reason, n in rows:
        counts[reject_kind(reason)] += n
    return counts


def quarantine_open() -> int:
    """Quarantined readings nobody has resolved yet."""
    return QuarantinedReading.objects.filter(resolved_at__isnull=True).count()


def ingest_delays(since: dt.datetime, sample: int = LATENCY_SAMPLE) -> list[float]:
    """Seconds from each reading's interval end (``ts``) to its storage (``received_at``).

    For readings since ``since`` of up to ``sample`` meters heard from since then
    (chosen at random), read through the (meter, ts) key: a few index ranges whatever
    the table's size.
    """
    meters = list(
        MeterComms.objects.filter(last_reading_ts__gte=since).values_list("meter_id", flat=True)
    )
    if len(meters) > sample:
        meters = random.sample(meters, sample)
    if not meters:
        return []
    rows = Reading.objects.filter(
        meter_id__in=meters, ts__gte=since, kind=Reading.Kind.REAL
    ).values_list("ts", "received_at")
    return sorted(max(0.0, (received - ts).total_seconds()) for ts, received in rows)


def gateways_by_state(now: dt.datetime) -> dict[str, int]:
    """Gateways online and offline (silent: three heartbeats missed; see metering.watch)."""
    states = watch.gateway_states(now).values()
    offline = sum(1 for s in states if s.silent)
    return {"online": len(states) - offline, "offline": offline}


def offline_gateway_names(now: dt.datetime) -> list[str]:
    return sorted(s.name for s in watch.gateway_states(now).values() if s.silent)
