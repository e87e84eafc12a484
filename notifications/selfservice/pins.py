"""USSD PINs: four digits per account, hashed like passwords, locked after wrong tries.

* A PIN is stored only as a hash from Django's password hashers: the one named by
  ``USSD_PIN_HASHER`` (scrypt for interactive checks by default, see
  :mod:`notifications.selfservice.hashers`; paid once per session). The lock after
  ``MAX_TRIES`` wrong PINs is what guards the live channel.
* An account without a PIN gets a one-time PIN by SMS the first time the menu
  needs one (:func:`send_one_time_pin`); it works once, for ``ONE_TIME_VALID``,
  and the customer then chooses their own. Staff can send a new one from the admin.
* From the USSD menu, an account gets at most ``USSD_ONE_TIME_PINS_PER_DAY`` one-time
  PINs a day (``limited=True``; each is an SMS we pay for, and the menu would send one
  on every dial); past that, the last one sent keeps working until it expires.
* ``MAX_TRIES`` wrong PINs in a row lock USSD for the account for ``LOCK_FOR``
  and tell the customer by SMS; a right PIN clears the count.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import transaction

from customers.models import Customer
from mcoms.core import clock
from mcoms.security import limits
from notifications.selfservice import messages
from notifications.selfservice.models import CustomerPin

MAX_TRIES = 3
LOCK_FOR = dt.timedelta(minutes=30)
ONE_TIME_VALID = dt.timedelta(hours=24)
PIN_LENGTH = 4


def well_formed(pin: str) -> bool:
    """Four ASCII digits."""
    return len(pin) == PIN_LENGTH and pin.isascii() and pin.isdigit()


def too_easy(pin: str) -> bool:
    """One digit four times, or a run up or down (1234, 9876): the first guesses anyone tries."""
    steps = {int(b) - int(a) for a, b in zip(pin, pin[1:], strict=False)}
    return len(set(pin)) == 1 or steps in ({1}, {-1})


@dataclass(frozen=True)
class Check:
    ok: bool
    one_time: bool = False  # the PIN was a one-time PIN: a new one must be chosen
    left: int = 0  # tries left after a wrong PIN
    locked_until: dt.datetime | None = None


def pin_of(customer: Customer) -> CustomerPin | None:
    """The customer's PIN record, if they have one."""
    return CustomerPin.objects.filter(customer=customer).first()


def locked_until(customer: Customer, *, now: dt.datetime | None = None) -> dt.datetime | None:
    """When the account's USSD lock ends, or None if it is not locked."""
    row = pin_of(customer)
    at = clock.resolve(now)
    if row and row.locked_until and row.locked_until > at:
        return row.locked_until
    return None


def usable(customer: Customer, *, now: dt.datetime | None = None) -> bool:
    """Whether the customer has a PIN that can still be entered (not an expired one-time PIN)."""
    row = pin_of(customer)
    if row is None:
        return False
    return not (row.one_time and row.expires_at and row.expires_at <= clock.resolve(now))


def verify(customer: Customer, pin: str, *, now: dt.datetime | None = None) -> Check:
    """Check ``pin`` for ``customer``, counting a wrong one and locking after the last try.

    The row is locked while the hash is checked, so tries at once on two phones
    are counted one after the other.
    """
    at = clock.resolve(now)
    with transaction.atomic():
        row = CustomerPin.objects.select_for_update().filter(customer=customer).first()
        if row is None:
            return Check(ok=False)
        if row.locked_until and row.locked_until > at:
            return Check(ok=False, locked_until=row.locked_until)
        expired = row.one_time and row.expires_at and row.expires_at <= at
        if well_formed(pin) and not expired and check_password(pin, row.pin_hash):
            if row.failed or row.locked_until:  # most checks change nothing: no write
                row.failed, row.locked_until = 0, None
                row.save(update_fields=["failed", "locked_until"])
            return Check(ok=True, one_time=row.one_time)
        row.failed += 1
        if row.failed < MAX_TRIES:
            row.save(update_fields=["failed"])
            return Check(ok=False, left=MAX_TRIES - row.failed)
        row.failed, row.locked_until = 0, at + LOCK_FOR
        row.save(update_fields=["failed", "locked_until"])
        messages.send(
            customer,
            messages.PIN_LOCKED,
            {"name": customer.first_name, "time": local_time(customer, row.locked_until)},
            now=at,
        )
        return Check(ok=False, locked_until=row.locked_until)


def _hash(pin: str) -> str:
    return make_password(pin, hasher=settings.USSD_PIN_HASHER)


def set_pin(customer: Customer, pin: str, *, now: dt.datetime | None = None) -> CustomerPin:
    """Make ``pin`` the customer's own PIN (it must be well formed and not too easy)."""
    if not well_formed(pin) or too_easy(pin):
        raise ValueError("A PIN is four digits that are not too easy to guess.")
    at = clock.resolve(now)
    row, _ = CustomerPin.objects.update_or_create(
        customer=customer,
        defaults={
            "pin_hash": _hash(pin),
            "one_time": False,
            "expires_at": None,
            "failed": 0,
            "locked_until": None,
            "set_at": at,
        },
    )
    return row


def send_one_time_pin(
    customer: Customer, *, now: dt.datetime | None = None, limited: bool = False
) -> CustomerPin | None:
    """Replace the customer's PIN with a fresh one-time PIN and send it to their phone by SMS.

    A lock in force stays in force. ``limited`` (the USSD menu): nothing is sent, and None
    returned, once the account has had its one-time PINs for the day.
    """
    at = clock.resolve(now)
    if limited and not limits.allowed(
        limits.ussd_one_time_pins(), f"customer:{customer.pk}", now=at
    ):
        return None
    pin = f"{secrets.randbelow(10**PIN_LENGTH):0{PIN_LENGTH}d}"
    while too_easy(pin):
        pin = f"{secrets.randbelow(10**PIN_LENGTH):0{PIN_LENGTH}d}"
    with transaction.atomic():
        row, _ = CustomerPin.objects.update_or_create(
            customer=customer,
            defaults={
                "pin_hash": _hash(pin),
                "one_time": True,
                "expires_at": at + ONE_TIME_VALID,
                "failed": 0,
                "set_at": at,
            },
        )
        messages.send(customer, messages.ONE_TIME_PIN, {"pin": pin}, now=at)
    return row


def local_time(customer: Customer, moment: dt.datetime) -> str:
    """``14:35`` in the customer's site's time zone."""
    return f"{moment.astimezone(customer.site.zone):%H:%M}"


def verify_any(
    customers: list[Customer], pin: str, *, now: dt.datetime | None = None
) -> tuple[list[Customer], list[Check]]:
    """Check one PIN against the accounts that share a phone (the customer portal's sign-in).

    Returns the accounts the PIN opens and each account's :class:`Check`. Accounts
    on one phone may have different PINs: when the PIN is one of theirs, only those
    accounts are checked with :func:`verify` (clearing their count) and the others
    are left alone; when it is none of theirs, every account counts a wrong try and
    locks as on USSD. Accounts without a usable PIN are skipped.
    """
    at = clock.resolve(now)
    candidates = [c for c in customers if usable(c, now=at)]
    if len(candidates) > 1 and well_formed(pin):
        rows = {r.customer_id: r for r in CustomerPin.objects.filter(customer__in=candidates)}
        matching = [
            c
            for c in candidates
            if not (rows[c.pk].locked_until and rows[c.pk].locked_until > at)
            and check_password(pin, rows[c.pk].pin_hash)
        ]
        candidates = matching or candidates
    checks = [verify(c, pin, now=at) for c in candidates]
    opened = [c for c, check in zip(candidates, checks, strict=True) if check.ok]
    return opened, checks
