"""Two-factor sign-in: TOTP (RFC 6238) authenticators and one-use recovery codes.

Who: head-office admins, billing officers and superusers (:func:`needs_two_factor`)
— the people who move money and hand out rights. Anyone with a staff role may
enrol; whoever has a confirmed authenticator is always asked for a code.

* Enrolment (:func:`start_enrolment`, :func:`confirm`): a fresh key shown as a QR
  code and as text; the first right code confirms it and yields
  ``RECOVERY_CODES`` recovery codes, shown once and kept only as keyed hashes.
* Sign-in (:func:`verify`): a code of the current 30-second step or one either
  side (clock drift), each step used once; or an unused recovery code.
* With ``MCOMS_REQUIRE_2FA`` on, such a person without an authenticator is sent to
  enrolment before any page (:func:`must_enrol`, the middleware).
* Lost phone: an admin resets the authenticator (:func:`reset`; the admin's
  two-factor devices page, or ``manage.py reset_two_factor``), and the person
  enrols again at their next sign-in.

Enrolment, resets, new recovery codes and every recovery code used are audited.
The sign-in session remembers which authenticator verified it
(``SESSION_VERIFIED``); a session without that mark (a password alone) reaches no
page (:mod:`mcoms.security.middleware`).
"""

from __future__ import annotations

import datetime as dt
import secrets

import pyotp
import segno
from django.conf import settings
from django.db import transaction
from django.utils.crypto import constant_time_compare, salted_hmac

from mcoms.core import audit, clock
from mcoms.core.models import AuditEvent, User
from mcoms.core.roles import TWO_FACTOR
from mcoms.security.models import RecoveryCode, TOTPDevice

ROLES = TWO_FACTOR
ISSUER = "MCOMS"
STEP_SECONDS = 30
DRIFT_STEPS = 1
RECOVERY_CODES = 10
SESSION_VERIFIED = "mcoms_2fa_device"


def needs_two_factor(user) -> bool:
    """Whether ``user``'s role (or superuser flag) calls for a second factor."""
    if not getattr(user, "is_authenticated", False) or not hasattr(user, "role"):
        return False
    return bool(user.is_superuser or user.role in ROLES)


def may_enrol(user) -> bool:
    return needs_two_factor(user) or getattr(user, "is_staff_role", False)


def device_of(user) -> TOTPDevice | None:
    """The user's confirmed authenticator, if any."""
    if not getattr(user, "pk", None):
        return None
    return TOTPDevice.objects.filter(user_id=user.pk, confirmed_at__isnull=False).first()


def must_enrol(user) -> bool:
    """Required and not yet enrolled: only the enrolment page is open to them."""
    return settings.MCOMS_REQUIRE_2FA and needs_two_factor(user) and device_of(user) is None


def start_enrolment(user: User, *, now: dt.datetime | None = None) -> TOTPDevice:
    """The user's unconfirmed authenticator (a new key), or their confirmed one."""
    device = TOTPDevice.objects.filter(user=user).first()
    if device is not None:
        return device
    return TOTPDevice.objects.create(
        user=user, key=pyotp.random_base32(), created_at=clock.resolve(now)
    )


def provisioning_uri(device: TOTPDevice) -> str:
    """The ``otpauth://`` address an authenticator app reads from the QR code."""
    return pyotp.TOTP(device.key).provisioning_uri(
        name=device.user.get_username(), issuer_name=ISSUER
    )


def qr_svg(device: TOTPDevice) -> str:
    """The provisioning address as an inline SVG QR code (drawn here: no outside service)."""
    return segno.make(provisioning_uri(device), error="m").svg_inline(
        scale=4, dark="#000", light="#fff", title="Scan with your authenticator app"
    )


def key_text(device: TOTPDevice) -> str:
    """The key in groups of four, for typing into an app by hand."""
    return " ".join(device.key[i : i + 4] for i in range(0, len(device.key), 4))


def _step(at: dt.datetime) -> int:
    return int(at.timestamp()) // STEP_SECONDS


def _matching_step(device: TOTPDevice, code: str, at: dt.datetime) -> int | None:
    code = "".join(code.split())
    if not (code.isascii() and code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(device.key)
    now_step = _step(at)
    for step in range(now_step - DRIFT_STEPS, now_step + DRIFT_STEPS + 1):
        if step > device.last_step and constant_time_compare(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def _recovery_hash(code: str) -> str:
    normal = "".join(code.split()).replace("-", "").lower()
    return salted_hmac("mcoms.security.recovery", normal, algorithm="sha256").hexdigest()


def new_recovery_codes(user: User, *, now: dt.datetime | None = None) -> list[str]:
    """Replace the user's recovery codes with ``RECOVERY_CODES`` fresh ones (shown once)."""
    at = clock.resolve(now)
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    codes = [
        "-".join("".join(secrets.choice(alphabet) for _ in range(5)) for _ in range(2))
        for _ in range(RECOVERY_CODES)
    ]
    with transaction.atomic():
        RecoveryCode.objects.filter(user=user).delete()
        RecoveryCode.objects.bulk_create(
            RecoveryCode(user=user, code_hash=_recovery_hash(c), created_at=at) for c in codes
        )
        audit.record(
            AuditEvent.Action.UPDATE,
            user,
            note=f"{RECOVERY_CODES} new two-factor recovery codes",
        )
    return codes


def confirm(device: TOTPDevice, code: str, *, now: dt.datetime | None = None) -> list[str] | None:
    """Confirm an enrolment with the first code; returns the recovery codes, or None."""
    at = clock.resolve(now)
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        if device.confirmed_at is not None:
            return None
        step = _matching_step(device, code, at)
        if step is None:
            return None
        device.confirmed_at, device.last_step, device.last_used_at = at, step, at
        device.save(update_fields=["confirmed_at", "last_step", "last_used_at"])
        audit.record(
            AuditEvent.Action.CREATE,
            device,
            after={"user": device.user_id, "confirmed_at": at.isoformat()},
            note="two-factor authenticator enrolled",
        )
        return new_recovery_codes(device.user, now=at)


def verify(user: User, code: str, *, now: dt.datetime | None = None) -> str | None:
    """Check a sign-in code: ``"totp"``, ``"recovery"`` (that code is now used) or None."""
    at = clock.resolve(now)
    with transaction.atomic():
        device = (
            TOTPDevice.objects.select_for_update()
            .filter(user=user, confirmed_at__isnull=False)
            .first()
        )
        if device is None:
            return None
        step = _matching_step(device, code, at)
        if step is not None:
            device.last_step, device.last_used_at = step, at
            device.save(update_fields=["last_step", "last_used_at"])
            return "totp"
        recovery = (
            RecoveryCode.objects.select_for_update()
            .filter(user=user, used_at__isnull=True, code_hash=_recovery_hash(code))
            .first()
        )
        if recovery is None:
            return None
        recovery.used_at = at
        recovery.save(update_fields=["used_at"])
        left = RecoveryCode.objects.filter(user=user, used_at__isnull=True).count()
        with audit.acting_as(user, channel=audit.current_actor().channel):
            audit.record(
                AuditEvent.Action.UPDATE,
                user,
                note=f"signed in with a two-factor recovery code ({left} left)",
            )
        return "recovery"


def recovery_codes_left(user: User) -> int:
    return RecoveryCode.objects.filter(user=user, used_at__isnull=True).count()


def reset(user: User, *, note: str = "two-factor authenticator reset") -> bool:
    """Remove the user's authenticator and recovery codes (a lost phone); audited."""
    with transaction.atomic():
        device = TOTPDevice.objects.filter(user=user).first()
        RecoveryCode.objects.filter(user=user).delete()
        if device is None:
            return False
        audit.record(
            AuditEvent.Action.DELETE,
            device,
            before={
                "user": user.pk,
                "confirmed_at": device.confirmed_at.isoformat() if device.confirmed_at else None,
            },
            note=note,
        )
        device.delete()
    return True
