"""Money as people read it: thousands separated, the currency's minor unit and no more."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal

from billing.ledger import minor_unit
from mcoms.core import clock
from mcoms.core.models import Site


def fmt(amount: Decimal | None, currency: str) -> str:
    """``24500`` UGX → ``24,500``; ``1234.5`` KES → ``1,234.50``; negative with a minus."""
    if amount is None:
        return ""
    places = -minor_unit(currency).as_tuple().exponent
    return f"{amount:,.{places}f}"


def plain(amount: Decimal, currency: str) -> str:
    """For CSV: no separators, exactly the minor unit (``24500``, ``1234.50``)."""
    return str(amount.quantize(minor_unit(currency)))


def local_now(site: Site, now: dt.datetime | None = None) -> dt.datetime:
    """``now`` (default: the clock) in the site's own timezone."""
    return clock.resolve(now).astimezone(zoneinfo.ZoneInfo(site.timezone))


def local_today(site: Site, now: dt.datetime | None = None) -> dt.date:
    return local_now(site, now).date()
