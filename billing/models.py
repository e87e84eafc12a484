"""Service packages: what a customer buys (load limit, how they pay)."""

from __future__ import annotations

from django.db import models


class ServicePackage(models.Model):
    """A product: its load limit and payment mode (its tariff is attached by billing)."""

    class PaymentMode(models.TextChoices):
        POSTPAID = "postpaid", "Postpaid (monthly bill)"
        PREPAID_CREDIT = "prepaid_credit", "Prepaid: account credit"
        PREPAID_TOKEN = "prepaid_token", "Prepaid: meter tokens"

    code = models.SlugField(max_length=30, unique=True)
    name = models.CharField(max_length=100)
    load_limit_w = models.PositiveIntegerField(help_text="Maximum load in watts")
    payment_mode = models.CharField(
        max_length=16, choices=PaymentMode.choices, default=PaymentMode.POSTPAID
    )
    description = models.CharField(max_length=300, blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["load_limit_w", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.load_limit_w} W, {self.get_payment_mode_display()})"

    @property
    def is_prepaid(self) -> bool:
        return self.payment_mode != self.PaymentMode.POSTPAID
