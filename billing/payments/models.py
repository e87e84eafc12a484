"""Payments, outgoing payment requests and their allocation to invoices."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from billing.models import Invoice, Posting
from mcoms.core.models import Site


class Method(models.TextChoices):
    CASH = "cash", "Cash (field agent)"
    MTN = "mtn", "MTN Mobile Money"
    AIRTEL = "airtel", "Airtel Money"
    PESAPAL = "pesapal", "Pesapal (card / mobile money)"
    BANK = "bank", "Bank transfer"


class PaymentRequest(models.Model):
    """A request we sent to a provider (request-to-pay, checkout), until it settles.

    ``reference`` is ours and is the provider's idempotency key; ``provider_txn_id``
    is theirs once they report it. A callback that disagrees with what we asked for
    (amount, currency, account) puts the request on hold for review.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for the customer"
        SUCCESSFUL = "successful", "Paid"
        FAILED = "failed", "Failed"
        HELD = "held", "Held for review"
        EXPIRED = "expired", "Expired (no answer)"

    class Channel(models.TextChoices):
        USSD = "ussd", "USSD"
        SMS = "sms", "SMS"
        PORTAL = "portal", "Customer portal"
        STAFF = "staff", "Staff"
        FIELD = "field", "Field agent"

    reference = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    provider = models.CharField(max_length=10, choices=Method.choices)
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="payment_requests"
    )
    amount = models.DecimalField(max_digits=18, decimal_places=2)
    currency = models.CharField(max_length=3, choices=Site.Currency.choices)
    phone = models.CharField(max_length=16, blank=True, help_text="E.164 payer number")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    provider_txn_id = models.CharField(max_length=100, blank=True)
    fee = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    detail = models.CharField(max_length=300, blank=True, help_text="Failure or hold reason")
    redirect_url = models.URLField(max_length=500, blank=True, help_text="Checkout page (cards)")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    polls = models.PositiveIntegerField(default=0)
    last_polled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} request {self.reference} ({self.status})"


class Payment(models.Model):
    """Money received from a customer: receipted, posted to the ledger, allocated.

    Recorded once per ``(method, provider_txn_id)``; cash has no provider id and is
    unique by its receipt number. ``fee`` is what the customer was charged on top
    (shown on the receipt); ``amount`` is what reaches their account.
    """

    class Status(models.TextChoices):
        COMPLETED = "completed", "Completed"
        REVERSED = "reversed", "Reversed"
        REFUNDED = "refunded", "Refunded"

    receipt_number = models.CharField(max_length=40, unique=True)
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="payments"
    )
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="payments")
    method = models.CharField(max_length=10, choices=Method.choices)
    amount = models.DecimalField(max_digits=18, decimal_places=2)
    fee = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    currency = models.CharField(max_length=3, choices=Site.Currency.choices)
    provider_txn_id = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.COMPLETED)
    received_at = models.DateTimeField()
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="cash_payments",
        help_text="The field agent holding the cash",
    )
    request = models.OneToOneField(
        PaymentRequest, null=True, blank=True, on_delete=models.PROTECT, related_name="payment"
    )
    posting = models.OneToOneField(Posting, on_delete=models.PROTECT, related_name="payment")
    note = models.CharField(max_length=300, blank=True)
    refunded = models.DecimalField(
        max_digits=18, decimal_places=2, default=0, help_text="Paid back through approved refunds"
    )
    reversal = models.OneToOneField(
        Posting,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reversed_payment",
        help_text="The ledger posting that reversed this payment",
    )
    reversed_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["customer", "received_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["method", "provider_txn_id"],
                condition=~models.Q(provider_txn_id=""),
                name="one_payment_per_provider_txn",
            ),
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="payment_positive"),
        ]

    def __str__(self) -> str:
        return f"Receipt {self.receipt_number}: {self.amount} {self.currency}"


class Allocation(models.Model):
    """Part of a payment (or of a credit note) set against one invoice, oldest first."""

    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="allocations"
    )
    credit_note = models.ForeignKey(
        Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="allocated_from"
    )
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="allocations")
    amount = models.DecimalField(max_digits=18, decimal_places=2)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["invoice", "created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="allocation_positive"),
            models.CheckConstraint(
                condition=models.Q(payment__isnull=False, credit_note__isnull=True)
                | models.Q(payment__isnull=True, credit_note__isnull=False),
                name="allocation_from_one_source",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.amount} to {self.invoice_id}"


class ReceiptSequence(models.Model):
    """The last receipt number given on a site (``R-KLA-A-000123``)."""

    site = models.OneToOneField(Site, on_delete=models.PROTECT, related_name="+")
    last = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.site} receipts up to {self.last}"


class Refund(models.Model):
    """Money paid back out of a payment: a ledger refund request, posted on approval."""

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    money_request = models.OneToOneField(
        "billing.MoneyRequest", on_delete=models.PROTECT, related_name="payment_refund"
    )
    amount = models.DecimalField(max_digits=18, decimal_places=2)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Refund of {self.amount} from {self.payment}"


class CashHandover(models.Model):
    """A field agent hands cash to the office: counted, compared and posted.

    ``expected`` is the agent's cash on hand (their ledger cash account) at the moment
    of hand-over; ``counted`` is what the receiver counted and is what moves to the
    bank (or the receiver's office cash); ``difference`` = counted − expected (negative:
    short) and stays on the agent's cash account until explained.
    """

    class Destination(models.TextChoices):
        BANK = "bank", "Bank deposit"
        OFFICE = "office", "Office cash (the receiver's cash account)"

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="cash_handovers")
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="cash_handovers"
    )
    received_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    currency = models.CharField(max_length=3, choices=Site.Currency.choices)
    expected = models.DecimalField(max_digits=18, decimal_places=2)
    counted = models.DecimalField(max_digits=18, decimal_places=2)
    difference = models.DecimalField(max_digits=18, decimal_places=2)
    destination = models.CharField(max_length=8, choices=Destination.choices)
    posting = models.OneToOneField(
        Posting, null=True, blank=True, on_delete=models.PROTECT, related_name="cash_handover"
    )
    received_at = models.DateTimeField()
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"Hand-over by {self.agent_id}: {self.counted} {self.currency}"


class Settlement(models.Model):
    """A provider's settlement file for one site and day, matched against our payments."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="settlements")
    provider = models.CharField(max_length=10, choices=Method.choices)
    day = models.DateField(help_text="The site's local day the file settles")
    filename = models.CharField(max_length=200, blank=True)
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    imported_at = models.DateTimeField()
    total = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    fees = models.DecimalField(max_digits=18, decimal_places=2, default=0)

    class Meta:
        ordering = ["-day", "provider"]
        constraints = [
            models.UniqueConstraint(
                fields=["site", "provider", "day"], name="one_settlement_per_site_provider_day"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} settlement {self.day} ({self.site})"


class SettlementLine(models.Model):
    """One transaction in a settlement, or one of our payments the file lacks."""

    class Result(models.TextChoices):
        MATCHED = "matched", "Matched"
        MISSING_OURS = "missing_ours", "Missing in our records"
        MISSING_SETTLEMENT = "missing_settlement", "Missing in the settlement"
        AMOUNT_DIFFERS = "amount_differs", "Amount differs"

    settlement = models.ForeignKey(Settlement, on_delete=models.CASCADE, related_name="lines")
    provider_txn_id = models.CharField(max_length=100)
    amount = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    fee = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    date = models.DateField(null=True, blank=True)
    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="settlement_lines"
    )
    result = models.CharField(max_length=20, choices=Result.choices)
    row = models.PositiveIntegerField(null=True, blank=True, help_text="Line in the file")

    class Meta:
        ordering = ["settlement", "result", "row", "id"]

    def __str__(self) -> str:
        return f"{self.provider_txn_id}: {self.get_result_display()}"
