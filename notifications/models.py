"""Message templates and the message log."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Channel(models.TextChoices):
    SMS = "sms", "SMS"
    EMAIL = "email", "Email"


class Language(models.TextChoices):
    ENGLISH = "en", "English"
    SWAHILI = "sw", "Swahili"
    LUGANDA = "lg", "Luganda"


class MessageTemplate(models.Model):
    """The wording of one event's message in one language and channel.

    ``body`` uses Django template syntax over the context the caller passes.
    """

    key = models.SlugField(max_length=64, help_text="Event, e.g. customer_registered")
    language = models.CharField(max_length=5, choices=Language.choices, default=Language.ENGLISH)
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.SMS)
    subject = models.CharField(max_length=200, blank=True, help_text="Email only")
    body = models.TextField()
    essential = models.BooleanField(
        default=False,
        help_text="Essential messages (receipts, disconnection notices) ignore opt-out",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key", "language", "channel"]
        constraints = [
            models.UniqueConstraint(
                fields=["key", "language", "channel"], name="one_template_per_event_language"
            )
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.language}, {self.channel})"


class Message(models.Model):
    """One outgoing message and what became of it."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Not sent (recipient opted out)"
        UNKNOWN = "unknown", "Outcome unknown (the provider may have it): not sent again"

    channel = models.CharField(max_length=8, choices=Channel.choices)
    to = models.CharField(max_length=254, help_text="E.164 phone number or email address")
    template_key = models.CharField(max_length=64, blank=True)
    language = models.CharField(max_length=5, default=Language.ENGLISH)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField()
    about = models.CharField(
        max_length=100,
        blank=True,
        db_index=True,
        help_text="The record this message concerns, as app_label.model:id",
    )
    site_id = models.IntegerField(null=True, blank=True, db_index=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    backend = models.CharField(max_length=200, blank=True)
    provider_message_id = models.CharField(max_length=100, blank=True, db_index=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    segments = models.PositiveSmallIntegerField(
        default=0, help_text="SMS segments the body takes (GSM-7 or Unicode)"
    )
    cost = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True, help_text="As the provider charged"
    )
    currency = models.CharField(max_length=3, blank=True)
    provider_status = models.CharField(
        max_length=40, blank=True, help_text="The provider's last word on the message"
    )
    delivered_at = models.DateTimeField(null=True, blank=True)
    not_before = models.DateTimeField(
        null=True, blank=True, help_text="Held back until then (quiet hours)"
    )
    retry_at = models.DateTimeField(
        null=True, blank=True, help_text="The provider failed: the next attempt is due then"
    )
    retry_until = models.DateTimeField(
        null=True, blank=True, help_text="Retries stop then (set at the first failure)"
    )
    claimed_at = models.DateTimeField(
        null=True, blank=True, help_text="The latest attempt began (status sending)"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The sweep's questions: what is due, what is stuck, what waits for staff.
            models.Index(fields=["status", "retry_at"], name="message_status_retry"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} to {self.to}: {self.body[:40]}"


class SMSBackendChoice(models.TextChoices):
    """The SMS backends a site may choose (dotted paths, as ``SMS_BACKEND`` takes)."""

    CONSOLE = "notifications.backends.console.ConsoleSMSBackend", "Console (development)"
    AFRICASTALKING = (
        "notifications.backends.africastalking.AfricasTalkingSMSBackend",
        "Africa's Talking",
    )
    TWILIO = "notifications.backends.twilio.TwilioSMSBackend", "Twilio"


class SiteSMSBackend(models.Model):
    """One site's SMS provider, overriding the ``SMS_BACKEND`` setting.

    Keyed by the site's id (an integer, not a foreign key: the messaging core
    depends on no other app).
    """

    site_id = models.IntegerField(unique=True)
    backend = models.CharField(max_length=200, choices=SMSBackendChoice.choices)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["site_id"]
        verbose_name = "site SMS provider"

    def __str__(self) -> str:
        return f"site {self.site_id}: {self.get_backend_display()}"


def normalise_address(address: str) -> str:
    """An address as opt-outs store it: emails lower-cased, phone numbers without spaces."""
    address = address.strip()
    if "@" in address:
        return address.lower()
    return "".join(ch for ch in address if ch.isdigit() or ch == "+")


class OptOut(models.Model):
    """A recipient (phone number or email address) who wants no non-essential messages."""

    address = models.CharField(max_length=254, unique=True, help_text="Phone (E.164) or email")
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["address"]
        verbose_name = "opt-out"

    def __str__(self) -> str:
        return self.address

    def save(self, *args, **kwargs):
        self.address = normalise_address(self.address)
        super().save(*args, **kwargs)


def validate_timezone(value: str) -> None:
    """Refuse a name the IANA time zone database does not know."""
    import zoneinfo

    from django.core.exceptions import ValidationError

    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"Unknown time zone {value!r}") from exc


class QuietHours(models.Model):
    """Local hours in which non-essential messages wait; one row per site or one global row.

    ``site_id`` is the site's id (not a foreign key: the messaging core depends on
    no other app); empty means every site without its own row.
    """

    site_id = models.IntegerField(null=True, blank=True, unique=True)
    start = models.TimeField(help_text="Local time quiet hours begin, e.g. 21:00")
    end = models.TimeField(help_text="Local time they end, e.g. 07:00 (may be the next day)")
    timezone = models.CharField(
        max_length=64, default="Africa/Kampala", validators=[validate_timezone]
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["site_id"]
        verbose_name_plural = "quiet hours"

    def __str__(self) -> str:
        where = f"site {self.site_id}" if self.site_id is not None else "all sites"
        return f"{where}: {self.start:%H:%M}-{self.end:%H:%M} {self.timezone}"


class Broadcast(models.Model):
    """A message staff send to a group (one customer, a site, an arrears group, field staff).

    The audience is stored as a kind and its parameters (``site_id`` and, per kind, a
    customer or a minimum amount owed) and resolved when sending starts; each recipient
    gets one ``staff_broadcast`` message. Ids are plain integers: the messaging core
    depends on no other app (the audience queries live in ``notifications.broadcasts``).
    """

    class Audience(models.TextChoices):
        CUSTOMER = "customer", "One customer"
        SITE = "site", "All customers of a site"
        ARREARS = "arrears", "Customers of a site owing more than an amount"
        AGENTS = "agents", "Field agents of a site"

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        SENDING = "sending", "Sending"
        DONE = "done", "Sent"
        CANCELLED = "cancelled", "Cancelled"

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    site_id = models.IntegerField(db_index=True)
    audience = models.CharField(max_length=10, choices=Audience.choices)
    params = models.JSONField(default=dict, blank=True, help_text="customer_id, min_amount")
    description = models.CharField(max_length=300, help_text="Who it goes to, in words")
    body = models.TextField()
    scheduled_for = models.DateTimeField(null=True, blank=True, help_text="Empty: at once")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SCHEDULED)
    total = models.PositiveIntegerField(default=0, help_text="Recipients when sending started")
    processed = models.PositiveIntegerField(default=0, help_text="Recipients handled so far")
    queued = models.PositiveIntegerField(default=0, help_text="Messages queued")
    skipped = models.PositiveIntegerField(default=0, help_text="Opted out or no phone")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last progress while sending (a stalled send resumes)"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Broadcast {self.pk} to {self.description}"

    @property
    def about(self) -> str:
        """The ``about`` of each message this broadcast sends."""
        return f"notifications.broadcast:{self.pk}"
