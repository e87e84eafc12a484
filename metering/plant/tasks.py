"""Plant tasks: the daily energy balance and the plant health checks (see ``schedules``)."""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task

from mcoms.core import clock
from mcoms.core.audit import acting_as
from mcoms.core.models import Site
from metering.plant import balance, health
from metering.plant import selectors as q

log = logging.getLogger(__name__)
# Late readings (a Pi that was offline) correct the days before: recompute this many.
RECOMPUTE_DAYS = 3


def balance_sites(*, now: dt.datetime | None = None, days: int = RECOMPUTE_DAYS) -> int:
    """Recompute the last ``days`` complete local days of every site with a plant or a
    supply meter, oldest first (so the losses alert follows the newest day)."""
    at = clock.resolve(now)
    count = 0
    with acting_as(label="plant balance"):
        for site in Site.objects.filter(pk__in=q.plant_sites()):
            today = at.astimezone(site.zone).date()
            for n in range(days, 0, -1):
                balance.run_site(site, today - dt.timedelta(days=n), now=at)
                count += 1
    return count


@shared_task(name="metering.plant.tasks.daily_balance")
def daily_balance() -> int:
    """The sites' energy balances of the last days, their months, and the losses alerts."""
    return balance_sites()


@shared_task(name="metering.plant.tasks.check_health")
def check_health() -> dict:
    """Battery, PV and inverter alerts of every site with a plant."""
    with acting_as(label="plant checks"):
        return {str(k): v for k, v in health.check().items()}
