"""Recipients' opt-outs and quiet hours: when non-essential messages may go.

Essential messages (receipts, disconnection notices) ignore both; see
:func:`notifications.services.send_message`.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from django.conf import settings

from notifications.models import OptOut, QuietHours, normalise_address


def opted_out(address: str) -> bool:
    """True when the phone number or email address has opted out."""
    return OptOut.objects.filter(address=normalise_address(address)).exists()


def opt_out(address: str, *, reason: str = "") -> OptOut:
    """Record that ``address`` wants no non-essential messages (again is harmless)."""
    row, _ = OptOut.objects.get_or_create(
        address=normalise_address(address), defaults={"reason": reason}
    )
    return row


def opt_in(address: str) -> bool:
    """Remove ``address``'s opt-out; True when there was one."""
    deleted, _ = OptOut.objects.filter(address=normalise_address(address)).delete()
    return bool(deleted)


def quiet_hours_for(site_id: int | None) -> QuietHours | None:
    """The site's own quiet hours, else the global ones, else None."""
    rows = QuietHours.objects.all()
    if site_id is not None:
        own = rows.filter(site_id=site_id).first()
        if own is not None:
            return own
    return rows.filter(site_id__isnull=True).first()


def _zone(name: str | None) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name or settings.TIME_ZONE)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def window_end(local: dt.datetime, start: dt.time, end: dt.time) -> dt.datetime | None:
    """When the quiet window ``start``-``end`` holding ``local`` ends; None when outside it.

    ``local`` is an aware local time. A window whose end is before its start runs
    past midnight; one whose start equals its end is never quiet.
    """
    if start == end:
        return None
    t = local.timetz().replace(tzinfo=None)
    inside = start <= t < end if start < end else (t >= start or t < end)
    if not inside:
        return None
    ends = dt.datetime.combine(local.date(), end)
    if ends <= local.replace(tzinfo=None):
        ends += dt.timedelta(days=1)
    return ends.replace(tzinfo=local.tzinfo)


def quiet_until(
    now: dt.datetime, *, site_id: int | None = None, timezone: str | None = None
) -> dt.datetime | None:
    """The UTC time quiet hours end when ``now`` falls in them, else None.

    ``timezone`` overrides the time zone stored with the quiet hours.
    """
    hours = quiet_hours_for(site_id)
    if hours is None:
        return None
    zone = _zone(timezone or hours.timezone)
    ends = window_end(now.astimezone(zone), hours.start, hours.end)
    return ends.astimezone(dt.UTC) if ends is not None else None
