"""Time, injectable: the agent never reads the wall clock except through a Clock."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta


class Clock:
    """The real clock."""

    def now(self) -> datetime:
        """Aware UTC now."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """Seconds from an arbitrary start, never going back."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Wait."""
        if seconds > 0:
            time.sleep(seconds)


class FakeClock(Clock):
    """A clock that moves only when told to (or when something sleeps on it)."""

    def __init__(self, start: datetime | None = None):
        self._now = start or datetime(2026, 4, 4, 15, 14, 50, tzinfo=UTC)
        self._mono = 1000.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        """Move both clocks forward."""
        self._now += timedelta(seconds=seconds)
        self._mono += seconds

    def sleep(self, seconds: float) -> None:
        self.advance(max(seconds, 0))


def iso(dt: datetime | None) -> str | None:
    """RFC 3339 UTC with a Z, as the contract wants."""
    if dt is None:
        return None
    return dt.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """An aware datetime from RFC 3339 (``Z`` accepted)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def interval_start(now: datetime, interval_s: int) -> datetime:
    """The latest interval boundary at or before ``now`` (multiples since midnight UTC)."""
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    elapsed = int((now - midnight).total_seconds())
    return midnight + timedelta(seconds=elapsed - elapsed % interval_s)


_STA_UNSYNC = 0x0040


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h>: mode and offset, then the fields up to status, padded.
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long),
                ("status", ctypes.c_int), ("_rest", ctypes.c_byte * 200)]


def clock_synced(method: str = "auto") -> bool:
    """Whether the system clock is synchronised (a Pi has no real-time clock).

    ``method``: ``auto`` (timedatectl, else the kernel's adjtimex status), ``always``
    (trust the clock), ``never``, or ``file:/path`` (synchronised while the file exists,
    for setups where another tool decides).
    """
    if method == "always":
        return True
    if method == "never":
        return False
    if method.startswith("file:"):
        return os.path.exists(method[len("file:"):])
    if shutil.which("timedatectl"):
        try:
            out = subprocess.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
                                 capture_output=True, text=True, timeout=5)
            if out.returncode == 0 and out.stdout.strip() in ("yes", "no"):
                return out.stdout.strip() == "yes"
        except (OSError, subprocess.TimeoutExpired):
            pass
    return _kernel_synced()


def _kernel_synced() -> bool:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    tx = _Timex()
    if libc.adjtimex(ctypes.byref(tx)) < 0:
        return False
    return not tx.status & _STA_UNSYNC
