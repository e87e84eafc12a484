"""Demo data for collections, loaded once by ``seed_demo`` after billing's own demos.

Block B ("kla-b") gets a stricter collections policy than the defaults, so the two
sites' arrears pages read differently; then the collections policy runs once at the
demo's "now", so overdue bills from the billing demo get their reminders and notices.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from billing.collections import policy
from billing.models import BillingPolicy
from mcoms.core.models import Site


def load(*, now: dt.datetime, rng: random.Random) -> None:
    site = Site.objects.filter(code="kla-b").first()
    if site is not None and not BillingPolicy.objects.filter(site=site).exists():
        BillingPolicy.objects.create(
            site=site,
            reminder_days=5,
            notice_days=5,
            grace_days=5,
            notice_min_amount=Decimal("5000"),
        )
    policy.run(now=now)
