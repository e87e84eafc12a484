"""Prepaid accounts: the credit draw-down's state and draws, and meter-token purchases.

See docs/prepaid.md.
"""

from __future__ import annotations

from django.db import models

from billing.models import Posting


class CreditAccount(models.Model):
    """Where a prepaid-credit customer's draw-down stands.

    ``charged_to`` is the watermark: every UTC hour before it has been priced and drawn
    (hours from ``charging_from`` on are chargeable). ``alert`` remembers which side of
    the low-balance line the credit was last seen on, so a message goes once per crossing.
    """

    class Alert(models.TextChoices):
        OK = "ok", "Above the low-balance line"
        LOW = "low", "Low balance (message sent)"
        EMPTY = "empty", "No credit left (disconnect requested)"

    customer = models.OneToOneField(
        "customers.Customer", on_delete=models.PROTECT, related_name="credit_account"
    )
    charging_from = models.DateTimeField(help_text="First UTC hour the draw-down charges")
    charged_to = models.DateTimeField(help_text="Hours before this are charged (UTC, exclusive)")
    alert = models.CharField(max_length=5, choices=Alert.choices, default=Alert.OK)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return f"Prepaid credit of customer {self.customer_id} (charged to {self.charged_to})"


class CreditDraw(models.Model):
    """One draw on a customer's credit: the hours it charged and what the month now costs.

    A month's draws add up to the price of the month's consumption so far: each draw
    charges the month-to-date price minus what earlier draws of the month charged, so
    the fixed charge falls on the month's first draw, blocks follow the month-to-date
    kWh, and an estimated hour later replaced by a real one is re-priced by the next draw.
    """

    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="credit_draws"
    )
    month = models.DateField(help_text="First day of the local month priced")
    hours_from = models.DateTimeField(help_text="First new UTC hour charged")
    hours_to = models.DateTimeField(help_text="End of the hours charged (exclusive)")
    new_kwh = models.DecimalField(max_digits=14, decimal_places=3, help_text="kWh in new hours")
    month_kwh = models.DecimalField(
        max_digits=14, decimal_places=3, help_text="kWh of the month to date, priced again"
    )
    energy = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    fixed = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    levies = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    vat = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    total = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    estimated = models.BooleanField(default=False, help_text="Month to date includes estimates")
    lines = models.JSONField(default=list, help_text="The month-to-date bill lines priced")
    posting = models.OneToOneField(
        Posting, null=True, blank=True, on_delete=models.PROTECT, related_name="credit_draw"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-hours_to", "-id"]
        indexes = [models.Index(fields=["customer", "month"])]
        constraints = [
            models.UniqueConstraint(fields=["customer", "hours_from"], name="one_draw_per_start"),
        ]

    def __str__(self) -> str:
        span = f"{self.hours_from:%Y-%m-%d %H}h–{self.hours_to:%Y-%m-%d %H}h"
        return f"Draw {self.total} on customer {self.customer_id} ({span})"


class TokenPurchase(models.Model):
    """Money turned into kWh for a token meter at the moment of sale.

    ``breakdown`` is the receipt's explanation (standing charge, kWh at each block
    rate, levies, VAT, rounding remainder): its amounts add up to ``amount``.
    ``token`` stays blank until the token is vended by the meter vendor's system.
    A purchase that could not be priced is *held*: the money stays on the account as
    credit and nothing is posted.
    """

    class Status(models.TextChoices):
        AWAITING_VEND = "awaiting_vend", "Awaiting token"
        VENDED = "vended", "Token issued"
        HELD = "held", "Held: could not be priced"
        CANCELLED = "cancelled", "Cancelled: payment reversed before the token"

    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="token_purchases"
    )
    payment = models.OneToOneField(
        "payments.Payment", on_delete=models.PROTECT, related_name="token_purchase"
    )
    amount = models.DecimalField(max_digits=18, decimal_places=2)
    currency = models.CharField(max_length=3)
    kwh = models.DecimalField(max_digits=12, decimal_places=3, default=0)
    breakdown = models.JSONField(default=list)
    month = models.DateField(help_text="First day of the local month of the sale")
    first_of_month = models.BooleanField(default=False)
    sold_at = models.DateTimeField()
    token = models.CharField(max_length=40, blank=True)
    status = models.CharField(max_length=14, choices=Status.choices, default=Status.AWAITING_VEND)
    detail = models.CharField(max_length=300, blank=True, help_text="Why it is held")
    posting = models.OneToOneField(
        Posting, null=True, blank=True, on_delete=models.PROTECT, related_name="token_purchase"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-sold_at", "-id"]
        indexes = [models.Index(fields=["customer", "month"])]

    def __str__(self) -> str:
        return f"Token purchase {self.pk}: {self.amount} {self.currency} → {self.kwh} kWh"

    COUNTED = (Status.AWAITING_VEND, Status.VENDED)

    @property
    def counts(self) -> bool:
        """Whether the purchase counts in the month's kWh (priced, posted, not cancelled)."""
        return self.status in self.COUNTED
