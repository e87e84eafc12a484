"""The one place that reads the wall clock.

Code that needs "now" takes an optional ``now`` argument and falls back to
:func:`now`, so tests pass the time they need instead of sleeping or patching.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return timezone.now()


def resolve(value: datetime | None) -> datetime:
    """``value`` if given, else the current time."""
    return value if value is not None else now()
