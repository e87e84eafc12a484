"""Steering's figures for the management dashboards: whether Calin meters are online.

Calin smart meters talk to Calin's cloud (the head-end) through data concentrators, not
to our gateways, so metering's missing-reads rule (:func:`metering.kpis.meter_health`,
meters on a bus) cannot judge them. Steering records what the head-end says:

- each concentrator's online state and when it was last asked
  (``Concentrator.online``, ``checked_at``; ``steering.refresh_online``, every 15
  minutes), the meter's concentrator being ``MeterState.concentrator``;
- each remote read of a meter (``RemoteRead``): *done* means the meter answered through
  the head-end at ``finished_at``; *failed* means it was asked and did not.

A Calin meter Installed or Commissioned and on no bus is counted by
:func:`calin_health` as

- **online** when steering saw it online within :data:`ONLINE_WINDOW` of now: its
  concentrator was reported online at a check that recent, or the meter answered a
  remote read that recent;
- **unknown** when steering never checked it: no concentrator check and no finished
  remote read (e.g. a meter whose concentrator is not recorded yet);
- **offline** otherwise: checked, but not seen online recently (its concentrator
  reported offline, the last check is older than the window, or only failed reads).

One query whatever the number of meters.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db.models import Count, Exists, OuterRef, Q

from metering.lifecycle import ON_BUS
from metering.models import BusSlot, Meter
from metering.steering.models import RemoteRead

# Four of the 15-minute online checks: a meter whose concentrator was last reported online
# longer ago than this has not been seen online lately.
ONLINE_WINDOW = dt.timedelta(hours=1)


def calin_health(site_ids: Iterable[int], *, now: dt.datetime) -> dict[int, dict[str, int]]:
    """Per site id: Calin meters in service and on no bus, ``online``, ``offline`` and
    ``unknown`` (never checked) at ``now``."""
    since = now - ONLINE_WINDOW
    reads = RemoteRead.objects.filter(meter=OuterRef("pk"))
    answered = Exists(reads.filter(status=RemoteRead.Status.DONE, finished_at__gte=since))
    asked = Exists(reads.filter(finished_at__isnull=False))
    concentrator = "steering_state__concentrator__"
    online = Q(**{f"{concentrator}online": True, f"{concentrator}checked_at__gte": since}) | Q(
        answered
    )
    known = Q(**{f"{concentrator}checked_at__isnull": False}) | Q(asked)
    on_bus = BusSlot.objects.filter(meter=OuterRef("pk"), end__isnull=True)
    rows = (
        Meter.objects.filter(site_id__in=list(site_ids), model=Meter.Model.CALIN, status__in=ON_BUS)
        .exclude(Exists(on_bus))
        .values("site_id")
        .order_by()
        .annotate(
            n=Count("id"),
            online=Count("id", filter=online),
            known=Count("id", filter=known),
        )
    )
    return {
        r["site_id"]: {
            "online": r["online"],
            "offline": r["known"] - r["online"],
            "unknown": r["n"] - r["known"],
        }
        for r in rows
    }


def calin_states(meter_ids: Iterable[int], *, now: dt.datetime) -> dict[int, str]:
    """Per Calin meter id among ``meter_ids``: ``online``, ``offline`` or ``never checked``,
    by the same rule as :func:`calin_health` (one query)."""
    since = now - ONLINE_WINDOW
    reads = RemoteRead.objects.filter(meter=OuterRef("pk"))
    rows = (
        Meter.objects.filter(pk__in=list(meter_ids), model=Meter.Model.CALIN)
        .annotate(
            answered=Exists(reads.filter(status=RemoteRead.Status.DONE, finished_at__gte=since)),
            asked=Exists(reads.filter(finished_at__isnull=False)),
        )
        .values_list(
            "pk",
            "steering_state__concentrator__online",
            "steering_state__concentrator__checked_at",
            "answered",
            "asked",
        )
    )
    found = {}
    for pk, online, checked_at, answered, asked in rows:
        if answered or (online and checked_at and checked_at >= since):
            found[pk] = "online"
        elif checked_at or asked:
            found[pk] = "offline"
        else:
            found[pk] = "never checked"
    return found
