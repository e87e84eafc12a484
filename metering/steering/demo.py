"""Demo data of steering: per-site rules, a critical load, a command waiting for approval,
an open field job and a refused request (called by ``seed_demo``)."""

from __future__ import annotations

import datetime as dt
import random

from mcoms.core.models import Site
from metering.models import MeterAssignment
from metering.steering import engine, services
from metering.steering.models import CriticalLoad, SiteSteering


def _served(site: Site) -> list[MeterAssignment]:
    return list(
        MeterAssignment.objects.filter(meter__site=site, end__isnull=True)
        .select_related("meter", "customer")
        .order_by("meter__modbus_address")[:6]
    )


def load(*, now: dt.datetime, rng: random.Random) -> None:
    block_a = Site.objects.filter(code="kla-a").first()
    block_b = Site.objects.filter(code="kla-b").first()
    if block_a is None or block_b is None:
        return
    SiteSteering.objects.update_or_create(site=block_a, defaults={"autonomy": 2})
    SiteSteering.objects.update_or_create(
        site=block_b, defaults={"autonomy": 3, "max_disconnections_per_hour": 5}
    )
    a, b = _served(block_a), _served(block_b)
    if len(a) < 2 or len(b) < 2:
        return
    CriticalLoad.objects.get_or_create(
        meter=a[0].meter, defaults={"note": "Health centre: vaccine fridge", "set_at": now}
    )
    services.submit(
        customer_id=a[1].customer_id,
        meter=a[1].meter,
        action="disconnect",
        reason="arrears",
        source="collections",
        note="Demo: arrears after notice and grace",
        notice_ends_at=now - dt.timedelta(days=2),
        now=now,
    )
    field = services.submit(
        customer_id=b[0].customer_id,
        meter=b[0].meter,
        action="disconnect",
        reason="prepaid_empty",
        source="prepaid",
        note="Demo: credit ran out",
        now=now,
    )
    engine.step(field.pk, now=now)  # a CHINT meter: becomes a field job, nothing is called
    services.submit(
        customer_id=b[1].customer_id,
        meter=b[1].meter,
        action="disconnect",
        reason="arrears",
        source="collections",
        note="Demo: no notice was served",
        now=now,
    )
