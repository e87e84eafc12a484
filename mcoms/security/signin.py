"""Staff sign-in limits: a username, and an address, locked after repeated failures.

* ``LOGIN_FAILURES_PER_USERNAME`` failures for one username (known or not) within
  ``LOGIN_FAILURE_WINDOW_MINUTES`` lock that username for ``LOGIN_LOCK_MINUTES``;
  a wrong two-factor code counts as a failure too.
* ``LOGIN_FAILURES_PER_ADDRESS`` failures from one address (any usernames) lock the
  address for as long: one machine guessing through many usernames.
* While locked, the password is not even checked. A successful sign-in forgets the
  username's count (not the address's).
* The sign-in page, the second step and HTTP Basic auth on the API all go through
  :func:`refusal` and :func:`failed`; an admin lifts a lock in the admin
  (Security → counters) or with ``manage.py unlock_sign_in``.
"""

from __future__ import annotations

import datetime as dt

from mcoms.security import limits


def username_key(username: str) -> str:
    return (username or "").strip().lower()[:150]


def refusal(username: str, address: str, *, now: dt.datetime | None = None) -> str | None:
    """The message when the username or the address is locked; None when neither is."""
    until = max(
        (
            t
            for t in (
                limits.locked_until(limits.login_username(), username_key(username), now=now),
                limits.locked_until(limits.login_address(), address, now=now),
            )
            if t
        ),
        default=None,
    )
    return too_many(until) if until else None


def too_many(until: dt.datetime) -> str:
    return f"Too many attempts: try again at {limits.local_time(until)}."


def failed(username: str, address: str, *, now: dt.datetime | None = None) -> str | None:
    """Count a failure for both; the lock message when this one locked either."""
    locks = [
        limits.hit(limits.login_username(), username_key(username), now=now),
        limits.hit(limits.login_address(), address, now=now),
    ]
    until = max((t for t in locks if t), default=None)
    return too_many(until) if until else None


def succeeded(username: str) -> None:
    limits.clear(limits.login_username(), username_key(username))
