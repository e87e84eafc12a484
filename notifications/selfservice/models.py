"""Self-service records: customers' USSD PINs, USSD sessions, inbound SMS and interest.

See docs/ussd.md for how the PIN is set, checked and locked.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class CustomerPin(models.Model):
    """A customer's USSD PIN: four digits, stored only as a password hash.

    ``one_time`` marks a PIN we sent by SMS: it opens the account once and must then
    be replaced by one the customer chooses; it is refused after ``expires_at``.
    ``failed`` counts wrong PINs in a row; the third locks USSD until ``locked_until``.
    """

    customer = models.OneToOneField(
        "customers.Customer", on_delete=models.CASCADE, related_name="ussd_pin"
    )
    pin_hash = models.CharField(max_length=256)
    one_time = models.BooleanField(default=False, help_text="Sent by SMS; must be changed")
    expires_at = models.DateTimeField(null=True, blank=True)
    failed = models.PositiveSmallIntegerField(default=0, help_text="Wrong PINs in a row")
    locked_until = models.DateTimeField(null=True, blank=True)
    set_at = models.DateTimeField()

    class Meta:
        verbose_name = "USSD PIN"

    def __str__(self) -> str:
        return f"PIN of customer {self.customer_id}"


class UssdSession(models.Model):
    """One USSD session as Africa's Talking names it, with what it has already done.

    The menu is replayed from the whole ``text`` on every request; ``memo`` keeps
    the outcome of each step that must happen once (a PIN check, an SMS sent, a
    request created), keyed by the step's position in ``text``.
    """

    session_id = models.CharField(max_length=100, unique=True)
    phone = models.CharField(max_length=32)
    service_code = models.CharField(max_length=40, blank=True)
    network_code = models.CharField(max_length=20, blank=True)
    memo = models.JSONField(default=dict)
    started_at = models.DateTimeField()
    updated_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = "USSD session"

    def __str__(self) -> str:
        return f"{self.session_id} ({self.phone})"


class Interest(models.Model):
    """Someone without an account who asked to be connected, by USSD."""

    phone = models.CharField(max_length=16, help_text="E.164")
    name = models.CharField(max_length=60)
    place = models.CharField("village or site", max_length=60)
    site = models.ForeignKey(
        "core.Site",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The site whose name or code matches the place given, if one does",
    )
    language = models.CharField(max_length=5, default="en")
    created_at = models.DateTimeField()
    contacted = models.BooleanField(default=False, help_text="Staff have called back")

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "interest in a connection"

    def __str__(self) -> str:
        return f"{self.name} ({self.place}, {self.phone})"


class InboundSms(models.Model):
    """A text message a customer sent us, and the command it was read as."""

    class Provider(models.TextChoices):
        AFRICASTALKING = "africastalking", "Africa's Talking"
        TWILIO = "twilio", "Twilio"

    provider = models.CharField(max_length=20, choices=Provider.choices)
    provider_id = models.CharField(max_length=100)
    sender = models.CharField(max_length=32)
    to = models.CharField(max_length=32, blank=True)
    text = models.TextField(blank=True)
    command = models.CharField(max_length=12, blank=True)
    language = models.CharField(max_length=5, default="en")
    customers = models.PositiveSmallIntegerField(default=0, help_text="Accounts on this number")
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = "inbound SMS"
        verbose_name_plural = "inbound SMS"
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_id"], name="one_inbound_sms_per_provider_id"
            )
        ]

    def __str__(self) -> str:
        return f"{self.sender}: {self.text[:40]}"


class PortalCode(models.Model):
    """A one-time code to sign in to the customer portal, sent by SMS to a phone.

    Only a keyed hash of the code is kept (``code_hash``). A code works once
    (``used_at``), until ``expires_at``, and for a few wrong tries (``attempts``).
    A request for a phone with no open account is stored too, with ``sent`` false and
    nothing sent, so the answer and the rate limit are the same for every number.
    """

    phone = models.CharField(max_length=32, help_text="E.164")
    code_hash = models.CharField(max_length=128)
    sent = models.BooleanField(default=False, help_text="An SMS went (the phone has an account)")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Wrong codes entered")
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["phone", "created_at"])]
        verbose_name = "portal sign-in code"

    def __str__(self) -> str:
        return f"code for {self.phone} at {self.created_at:%Y-%m-%d %H:%M}"


class PortalSignIn(models.Model):
    """One sign-in to the customer portal: which account, by what proof, from which phone."""

    class Method(models.TextChoices):
        PIN = "pin", "Phone and PIN"
        CODE = "code", "Code by SMS"

    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    method = models.CharField(max_length=4, choices=Method.choices)
    phone = models.CharField(max_length=32)
    at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "portal sign-in"

    def __str__(self) -> str:
        return f"{self.customer_id} by {self.method} at {self.at:%Y-%m-%d %H:%M}"
