"""Service packages: what a customer buys (load limit, how they pay)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from billing.tariff_terms import TariffError, parse_terms
from billing.tariffs import InForce
from mcoms.core.models import Site


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
    tariff = models.ForeignKey(
        "Tariff", null=True, blank=True, on_delete=models.PROTECT, related_name="packages"
    )

    class Meta:
        ordering = ["load_limit_w", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.load_limit_w} W, {self.get_payment_mode_display()})"

    @property
    def is_prepaid(self) -> bool:
        return self.payment_mode != self.PaymentMode.POSTPAID


class Tariff(models.Model):
    """A named price list; what it charges is in its approved versions, each from a date."""

    code = models.SlugField(max_length=30, unique=True)
    name = models.CharField(max_length=100)
    currency = models.CharField(max_length=3, choices=Site.Currency.choices)
    description = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.currency})"

    def in_force(self) -> list[InForce]:
        """The approved versions as the engine takes them, oldest first."""
        versions = self.versions.filter(status=TariffVersion.Status.APPROVED)
        return [v.as_in_force() for v in versions.order_by("effective_from")]


class TariffVersion(models.Model):
    """The terms of a tariff from a date: proposed by one person, in force once another approves.

    ``effective_to`` (exclusive) is set when the next version is approved. Only
    approved versions are ever priced.
    """

    class Status(models.TextChoices):
        PROPOSED = "proposed", "Proposed (awaiting approval)"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    tariff = models.ForeignKey(Tariff, on_delete=models.PROTECT, related_name="versions")
    effective_from = models.DateField(help_text="First local day the terms apply")
    effective_to = models.DateField(
        null=True, blank=True, help_text="First local day they no longer apply (set on approval)"
    )
    terms = models.JSONField(help_text="Charges, see docs/tariffs.md")
    reason = models.CharField(max_length=300, help_text="Why the change, e.g. the regulator notice")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PROPOSED)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    proposed_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["tariff", "-effective_from", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tariff", "effective_from"],
                condition=models.Q(status="approved"),
                name="one_approved_version_per_day",
            ),
            models.CheckConstraint(
                condition=models.Q(effective_to__isnull=True)
                | models.Q(effective_to__gt=models.F("effective_from")),
                name="tariff_version_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tariff.code} from {self.effective_from} ({self.get_status_display()})"

    def clean(self) -> None:
        try:
            parse_terms(self.terms)
        except TariffError as exc:
            raise ValidationError({"terms": str(exc)}) from exc

    def as_in_force(self) -> InForce:
        """These terms and dates as the engine takes them; only an approved version is priced."""
        if self.status != self.Status.APPROVED:
            raise TariffError(f"{self} is not approved and cannot be priced.")
        return InForce(
            terms=parse_terms(self.terms),
            effective_from=self.effective_from,
            effective_to=self.effective_to,
            label=f"{self.tariff.code} from {self.effective_from}",
        )
