"""Counting failures and locking: one small rule engine for every channel.

A :class:`Rule` says how many events (wrong passwords, wrong PINs, codes sent) one
key (a username, an address, an account) may have within ``window``; the event
that reaches the limit locks the key for ``lock_for`` (or, without ``lock_for``,
until the window ends). The counts live in the database
(:class:`~mcoms.security.models.Counter`), rows locked while they change, so all
gunicorn workers and Celery workers agree. Every lock, and every lock lifted by a
person, is an audit event. Time comes from :mod:`mcoms.core.clock`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from mcoms.core import audit, clock
from mcoms.core.models import AuditEvent
from mcoms.security.models import Counter


@dataclass(frozen=True)
class Rule:
    scope: str
    limit: int
    window: dt.timedelta
    lock_for: dt.timedelta | None = None
    what: str = "failures"  # how an audit note names the events


def _sign_in_rule(scope: str, limit: int, what: str) -> Rule:
    """A lock after ``limit`` failures in the sign-in window, for the sign-in lock time."""
    return Rule(
        scope,
        limit,
        dt.timedelta(minutes=settings.LOGIN_FAILURE_WINDOW_MINUTES),
        dt.timedelta(minutes=settings.LOGIN_LOCK_MINUTES),
        what,
    )


def login_username() -> Rule:
    return _sign_in_rule("login-username", settings.LOGIN_FAILURES_PER_USERNAME, "failed sign-ins")


def login_address() -> Rule:
    return _sign_in_rule("login-address", settings.LOGIN_FAILURES_PER_ADDRESS, "failed sign-ins")


def _now(now: dt.datetime | None) -> dt.datetime:
    return clock.resolve(now)


def locked_until(rule: Rule, key: str, *, now: dt.datetime | None = None) -> dt.datetime | None:
    """When ``key``'s lock under ``rule`` ends, or None when it is not locked."""
    at = _now(now)
    row = Counter.objects.filter(scope=rule.scope, key=key).only("locked_until").first()
    if row and row.locked_until and row.locked_until > at:
        return row.locked_until
    return None


def _row(rule: Rule, key: str, at: dt.datetime) -> Counter:
    try:
        with transaction.atomic():
            Counter.objects.get_or_create(
                scope=rule.scope, key=key, defaults={"window_start": at, "count": 0}
            )
    except IntegrityError:  # made at the same moment by another process
        pass
    return Counter.objects.select_for_update().get(scope=rule.scope, key=key)


def hit(rule: Rule, key: str, *, now: dt.datetime | None = None) -> dt.datetime | None:
    """Count one event for ``key``; returns the end of the lock in force after it, if any.

    While a lock lasts, nothing more is counted (the lock is not extended).
    """
    at = _now(now)
    with transaction.atomic():
        row = _row(rule, key, at)
        if row.locked_until and row.locked_until > at:
            return row.locked_until
        if at - row.window_start >= rule.window or row.locked_until:
            row.window_start, row.count, row.locked_until = at, 0, None
        row.count += 1
        if row.count < rule.limit:
            row.save(update_fields=["window_start", "count", "locked_until"])
            return None
        row.locked_until = at + (rule.lock_for or (row.window_start + rule.window - at))
        row.save(update_fields=["window_start", "count", "locked_until"])
        audit.record(
            AuditEvent.Action.TRANSITION,
            row,
            before={"locked_until": None},
            after={"locked_until": row.locked_until.isoformat(), "count": row.count},
            note=f"locked after {row.count} {rule.what} within {_minutes(rule.window)}",
        )
        return row.locked_until


def allowed(rule: Rule, key: str, *, now: dt.datetime | None = None) -> bool:
    """Count one event (a send) and say whether it is within the rule's limit.

    The event that reaches the limit is still allowed; the ones after it are not,
    until the lock ends.
    """
    at = _now(now)
    before = locked_until(rule, key, now=at)
    if before:
        return False
    hit(rule, key, now=at)
    return True


def clear(rule: Rule, key: str) -> None:
    """Forget ``key``'s count (a right password); a lock in force stays (see :func:`unlock`)."""
    Counter.objects.filter(scope=rule.scope, key=key, locked_until__isnull=True).delete()


def unlock(counter: Counter, *, note: str = "unlocked") -> None:
    """Lift a lock (a person did it: an admin action or a command); audited."""
    before = {"locked_until": counter.locked_until.isoformat() if counter.locked_until else None}
    audit.record(
        AuditEvent.Action.TRANSITION,
        counter,
        before=before,
        after={"locked_until": None},
        note=note,
    )
    counter.delete()


def local_time(moment: dt.datetime) -> str:
    """``14:35`` in the site's time zone (``TIME_ZONE``), for messages on the pages."""
    return f"{timezone.localtime(moment):%H:%M}"


def _minutes(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def portal_address() -> Rule:
    """Wrong PINs and codes on the customer portal from one address, any phone numbers."""
    return _sign_in_rule(
        "portal-address", settings.PORTAL_FAILURES_PER_ADDRESS, "wrong PINs or codes"
    )


def portal_codes_address() -> Rule:
    """Sign-in codes by SMS asked from one address (each costs an SMS), any phone numbers."""
    return Rule(
        "portal-codes-address",
        settings.PORTAL_CODES_PER_ADDRESS_PER_HOUR,
        dt.timedelta(hours=1),
        None,
        "sign-in codes asked",
    )


def ussd_one_time_pins() -> Rule:
    """One-time PINs sent by SMS to one account (from the USSD menu)."""
    return Rule(
        "ussd-one-time-pin",
        settings.USSD_ONE_TIME_PINS_PER_DAY,
        dt.timedelta(days=1),
        None,
        "one-time PINs sent",
    )


# Longer than every rule's window (the longest is a day: one-time PINs): a counter whose
# window started before this and that holds no lock counts nothing any more.
FORGET_AFTER = dt.timedelta(days=2)


def purge(*, now: dt.datetime | None = None) -> int:
    """Delete the counters that no longer count or lock anything; returns how many.

    A key that failed once is otherwise kept for ever (a username, an address, a phone
    number): the daily ``security.purge_counters`` task keeps the table to the keys that
    failed recently, as :class:`~mcoms.security.models.Counter` promises.
    """
    at = _now(now)
    stale = Counter.objects.filter(window_start__lt=at - FORGET_AFTER).exclude(
        locked_until__gt=at
    )
    deleted, _ = stale.delete()
    return deleted
