"""Steering's tables: per-site rules, per-meter flags and state, commands, field jobs, vends."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models

from mcoms.core import audit
from mcoms.core.models import Site
from metering.models import Meter

USER = settings.AUTH_USER_MODEL


class SiteSteering(models.Model):
    """How much a site's steering may do alone. A site without a row uses the defaults."""

    class Autonomy(models.IntegerChoices):
        APPROVE = 2, "Level 2: a person approves each command"
        AUTONOMOUS = 3, "Level 3: the policy acts alone, people handle escalations"

    site = models.OneToOneField(Site, on_delete=models.CASCADE, related_name="steering")
    autonomy = models.PositiveSmallIntegerField(choices=Autonomy.choices, default=Autonomy.APPROVE)
    max_disconnections_per_hour = models.PositiveSmallIntegerField(
        default=10,
        validators=[MinValueValidator(1)],
        help_text="Automatic disconnections sent per hour on this site, at most",
    )
    work_from = models.TimeField(default=dt.time(8), help_text="Arrears disconnections from")
    work_until = models.TimeField(default=dt.time(17), help_text="... until (site time)")
    weekdays_only = models.BooleanField(
        default=True, help_text="No arrears disconnection on weekends and public holidays"
    )
    reconnect_on_payment = models.BooleanField(
        default=True,
        help_text="Reconnect without a person when a payment clears arrears or credit",
    )

    class Meta:
        verbose_name_plural = "site steering settings"

    def __str__(self) -> str:
        return f"Steering of {self.site}"

    @classmethod
    def for_site(cls, site: Site | int) -> SiteSteering:
        """The site's settings, or the defaults (unsaved)."""
        site_id = site.pk if isinstance(site, Site) else site
        found = cls.objects.filter(site_id=site_id).first()
        return found if found is not None else cls(site_id=site_id)


class CriticalLoad(models.Model):
    """A meter that supplies a critical load (clinic, water pump): never cut automatically."""

    meter = models.OneToOneField(Meter, on_delete=models.CASCADE, related_name="critical_load")
    note = models.CharField(max_length=200, blank=True)
    set_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    set_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"critical load {self.meter}"


class MeterOverride(models.Model):
    """A person blocked automation on a meter: automatic commands are refused until lifted."""

    meter = models.OneToOneField(Meter, on_delete=models.CASCADE, related_name="override")
    note = models.CharField(max_length=300)
    set_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    set_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"automation blocked on {self.meter}"


class Concentrator(models.Model):
    """A Calin data concentrator: the head-end says whether it is online."""

    number = models.CharField(max_length=40, unique=True)
    site = models.ForeignKey(
        Site, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    online = models.BooleanField(null=True)
    checked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.number


class MeterState(models.Model):
    """What steering last knew of a meter's relay (or breaker), credit and status code."""

    class Relay(models.TextChoices):
        ON = "on", "On (supplying)"
        OFF = "off", "Off (disconnected)"
        UNKNOWN = "unknown", "Unknown"

    meter = models.OneToOneField(Meter, on_delete=models.CASCADE, related_name="steering_state")
    relay = models.CharField(max_length=8, choices=Relay.choices, default=Relay.UNKNOWN)
    relay_read_at = models.DateTimeField(null=True, blank=True)
    relay_source = models.CharField(max_length=40, blank=True, help_text="How it was learned")
    credit_kwh = models.DecimalField(max_digits=12, decimal_places=3, null=True, blank=True)
    status_code = models.CharField(max_length=8, blank=True, help_text="Last relay status code")
    status_code_at = models.DateTimeField(null=True, blank=True)
    concentrator = models.ForeignKey(
        Concentrator, null=True, blank=True, on_delete=models.SET_NULL, related_name="meters"
    )

    def __str__(self) -> str:
        return f"{self.meter}: relay {self.relay}"


class Command(models.Model):
    """One disconnection or reconnection of one meter, from request to confirmed end state.

    The state machine lives in these rows (see ``metering.steering.engine``): a worker that
    dies mid-step leaves a row the sweeper resumes when ``next_attempt_at`` comes round.
    """

    class Action(models.TextChoices):
        DISCONNECT = "disconnect", "Disconnect"
        RECONNECT = "reconnect", "Reconnect"

    class Reason(models.TextChoices):
        ARREARS = "arrears", "Arrears"
        PREPAID_EMPTY = "prepaid_empty", "Prepaid balance exhausted"
        TAMPER = "tamper", "Tamper"
        CUSTOMER_REQUEST = "customer_request", "Customer request"
        SAFETY = "safety", "Safety"
        PAID = "paid", "Paid or topped up"

    class Status(models.TextChoices):
        PENDING_APPROVAL = "pending_approval", "Waiting for approval"
        WAITING = "waiting", "Waiting for its time"
        SENDING = "sending", "Sending to the head-end"
        SENT = "sent", "Sent: waiting for the head-end"
        CONFIRMING = "confirming", "Reading the relay back"
        FIELD = "field", "Field job open"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        REJECTED = "rejected", "Rejected by a person"
        REFUSED = "refused", "Refused by policy"
        CANCELLED = "cancelled", "Cancelled"
        EXPIRED = "expired", "Expired: the head-end could not be reached in time"

    class Fault(models.TextChoices):
        NONE = "", "None"
        UNREACHABLE = "unreachable", "Head-end unreachable"
        METER_OFFLINE = "meter_offline", "Head-end answers, the meter does not"

    class Read(models.TextChoices):
        CONFIRM = "confirm", "Confirm the end state"
        PRECHECK = "precheck", "Check before sending again"

    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="steering_commands")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(
        "customers.Customer", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=10, choices=Action.choices)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    source = models.CharField(max_length=20, help_text="Who asked: billing, staff, system …")
    source_ref = models.CharField(max_length=80, blank=True, help_text="e.g. supplyrequest:12")
    note = models.CharField(max_length=300, blank=True)
    notice_ends_at = models.DateTimeField(
        null=True, blank=True, help_text="Arrears: the notice period the caller served ends"
    )
    forced = models.BooleanField(default=False, help_text="A person overrode the policy")
    status = models.CharField(max_length=16, choices=Status.choices)
    decided_by = models.CharField(max_length=150, blank=True, help_text="Person or policy")
    decision = models.CharField(max_length=300, blank=True, help_text="Why")
    requested_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    # The machine: when the next step is due (a lease while a worker holds it).
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Sends tried")
    send_started_at = models.DateTimeField(null=True, blank=True)
    task_no = models.CharField(max_length=40, blank=True, help_text="Control task")
    read_task_no = models.CharField(max_length=40, blank=True, help_text="Read-back task")
    read_purpose = models.CharField(max_length=10, choices=Read.choices, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    poll_until = models.DateTimeField(null=True, blank=True)
    polls = models.PositiveIntegerField(default=0)
    confirmed_relay = models.CharField(max_length=8, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    fault = models.CharField(
        max_length=16, choices=Fault.choices, blank=True, default="", help_text="Why it waits"
    )
    expires_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Not handed to the head-end by then: a disconnection expires, "
        "a reconnection is escalated to staff",
    )
    escalated_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    IN_FLIGHT = ("sending", "sent", "confirming", "field")
    OPEN = ("pending_approval", "waiting", *IN_FLIGHT)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["site", "action", "sent_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["meter"],
                condition=models.Q(status__in=["sending", "sent", "confirming", "field"]),
                name="one_command_in_flight_per_meter",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.meter.serial} ({self.get_status_display()})"

    @property
    def target_on(self) -> bool:
        return self.action == self.Action.RECONNECT

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN


def field_photo_path(job: FieldJob, filename: str) -> str:
    return f"steering/fieldjobs/{job.pk}/{filename}"


class FieldJob(models.Model):
    """A disconnection or reconnection done by hand where the meter has no relay (CHINT)."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"

    class Breaker(models.TextChoices):
        OPENED = "opened", "Breaker opened (supply cut)"
        CLOSED = "closed", "Breaker closed (supply restored)"

    command = models.OneToOneField(Command, on_delete=models.PROTECT, related_name="field_job")
    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="+")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    breaker = models.CharField(max_length=8, choices=Breaker.choices, help_text="What to do")
    seal_number = models.CharField(max_length=40, blank=True)
    photo = models.FileField(upload_to=field_photo_path, blank=True)
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["status", "-created_at"]

    def __str__(self) -> str:
        return f"Field job {self.pk}: {self.get_breaker_display()} at {self.meter.serial}"

    def snapshot(self) -> dict:
        """The audit snapshot: the photo by its stored name."""
        fields = [
            "command",
            "meter",
            "status",
            "breaker",
            "seal_number",
            "note",
            "completed_at",
            "completed_by",
        ]
        return {**audit.snapshot(self, fields), "photo": self.photo.name or ""}


class Vend(models.Model):
    """One prepaid token bought from Calin for one purchase reference, and its push.

    The row is written before the POS call: a purchase reference buys one token however
    often it is asked for, even when a call timed out (see ``metering.steering.vending``).
    """

    class Status(models.TextChoices):
        CALLING = "calling", "Buying (answer not yet recorded)"
        UNKNOWN = "unknown", "Outcome unknown: check the history before buying again"
        VENDED = "vended", "Token bought"
        FAILED = "failed", "Failed"
        REJECTED = "rejected", "Rejected by Calin"

    class Push(models.TextChoices):
        NONE = "", "Not pushed"
        SENT = "sent", "Sent to the meter"
        DONE = "done", "Accepted by the meter"
        FAILED = "failed", "Failed"
        REJECTED = "rejected", "Rejected (token already used)"

    purchase_ref = models.CharField(max_length=80, unique=True)
    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="+")
    kwh = models.DecimalField(max_digits=12, decimal_places=3)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CALLING)
    token = models.CharField(max_length=40, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField(help_text="Before the first call: history from here")
    called_at = models.DateTimeField(null=True, blank=True, help_text="The latest call began")
    vended_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    push_status = models.CharField(max_length=10, choices=Push.choices, blank=True, default="")
    push_task_no = models.CharField(max_length=40, blank=True)
    push_sent_at = models.DateTimeField(null=True, blank=True)
    push_next_at = models.DateTimeField(null=True, blank=True)
    push_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"Vend {self.purchase_ref}: {self.kwh} kWh ({self.get_status_display()})"


class RemoteRead(models.Model):
    """One value asked of a meter through the head-end (an asynchronous reading task)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for the meter"
        DONE = "done", "Read"
        FAILED = "failed", "Failed"

    meter = models.ForeignKey(Meter, on_delete=models.CASCADE, related_name="+")
    data_item = models.CharField(max_length=60)
    task_no = models.CharField(max_length=40, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    value = models.CharField(max_length=200, blank=True)
    error = models.CharField(max_length=300, blank=True)
    requested_by = models.ForeignKey(
        USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_at = models.DateTimeField()
    next_poll_at = models.DateTimeField(null=True, blank=True, db_index=True)
    poll_until = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"{self.data_item} of {self.meter_id}: {self.value or self.status}"
