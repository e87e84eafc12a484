"""Failure counters with their locks, and the staff's authenticators (TOTP) and recovery codes."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Counter(models.Model):
    """Failures (or sends) counted for one key of one rule in a fixed window.

    Kept in the database so every web process and worker sees the same count and
    the same lock; rows are few (one per username, address, phone or account that
    failed recently) and an admin can see and lift a lock.
    """

    scope = models.CharField(max_length=40)
    key = models.CharField(max_length=200)
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-window_start"]
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="security_counter_once")
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.key}"


class TOTPDevice(models.Model):
    """A person's authenticator app: an RFC 6238 key, confirmed by a first code.

    ``last_step`` is the time step of the last code accepted: a code is used once.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="totp_device"
    )
    key = models.CharField(max_length=64, help_text="Base32 secret shared with the app")
    created_at = models.DateTimeField()
    confirmed_at = models.DateTimeField(null=True, blank=True)
    last_step = models.BigIntegerField(default=0)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "two-factor device"

    def __str__(self) -> str:
        return f"authenticator of {self.user}"


class RecoveryCode(models.Model):
    """A one-use code for when the phone is lost; only its hash is kept."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recovery_codes"
    )
    code_hash = models.CharField(max_length=128)
    created_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"recovery code of {self.user}"
