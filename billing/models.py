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


# --- The ledger: immutable double-entry postings (see docs/ledger.md) ------------------------


class LedgerImmutableError(Exception):
    """Raised on any attempt to change or delete a ledger posting or line."""


class ImmutableQuerySet(models.QuerySet):
    """A queryset that refuses bulk updates and deletes: corrections are new postings."""

    def update(self, **kwargs):
        raise LedgerImmutableError("Ledger records are never updated; post a reversal.")

    def delete(self):
        raise LedgerImmutableError("Ledger records are never deleted; post a reversal.")


class ImmutableModel(models.Model):
    """Written once: saving an existing row or deleting one raises."""

    objects = ImmutableQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise LedgerImmutableError(f"{self._meta.verbose_name} is immutable; post a reversal.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise LedgerImmutableError(f"{self._meta.verbose_name} is never deleted; post a reversal.")


class LedgerAccount(models.Model):
    """One account in a site's chart, in one currency; its balance is the sum of its lines."""

    class Kind(models.TextChoices):
        RECEIVABLE = "receivable", "Customer receivable"
        CASH = "cash", "Cash on hand (field agent)"
        MOBILE_MONEY = "mobile_money", "Mobile-money clearing (provider)"
        BANK = "bank", "Bank"
        REVENUE_ENERGY = "revenue_energy", "Revenue: energy"
        REVENUE_FIXED = "revenue_fixed", "Revenue: fixed charges"
        VAT_PAYABLE = "vat_payable", "VAT payable"
        LEVIES_PAYABLE = "levies_payable", "Levies payable"
        FEES_EXPENSE = "fees_expense", "Fees expense"
        WRITE_OFF_EXPENSE = "write_off_expense", "Write-off expense"

    key = models.CharField(max_length=120, unique=True, help_text="site:currency:kind:party")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="ledger_accounts")
    currency = models.CharField(max_length=3, choices=Site.Currency.choices)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    customer = models.ForeignKey(
        "customers.Customer",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="ledger_accounts",
    )
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="cash_accounts",
    )
    provider = models.CharField(max_length=30, blank=True, help_text="e.g. mtn, airtel")

    class Meta:
        ordering = ["site", "currency", "kind", "key"]

    def __str__(self) -> str:
        party = self.customer_id or self.agent_id or self.provider
        label = self.get_kind_display()
        return f"{label} {party} ({self.currency})" if party else f"{label} ({self.currency})"


class LedgerPeriod(models.Model):
    """A month of a site's books; once closed, nothing more is posted into it."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="ledger_periods")
    month = models.DateField(help_text="First day of the month")
    closed_at = models.DateTimeField()
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["site", "-month"]
        constraints = [
            models.UniqueConstraint(fields=["site", "month"], name="one_close_per_site_month"),
        ]

    def __str__(self) -> str:
        return f"{self.site} {self.month:%Y-%m} (closed)"


class Posting(ImmutableModel):
    """One money movement: a balanced set of lines, never edited; a reversal mirrors it."""

    class Kind(models.TextChoices):
        INVOICE = "invoice", "Invoice"
        PAYMENT = "payment", "Payment"
        FEE = "fee", "Fee"
        REFUND = "refund", "Refund"
        REVERSAL = "reversal", "Reversal"
        ADJUSTMENT = "adjustment", "Adjustment"
        WRITE_OFF = "write_off", "Write-off"

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="postings")
    currency = models.CharField(max_length=3, choices=Site.Currency.choices)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    date = models.DateField(help_text="Accounting date (the period it belongs to)")
    posted_at = models.DateTimeField()
    posted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    memo = models.CharField(max_length=300, blank=True)
    reference = models.CharField(
        max_length=100,
        blank=True,
        help_text="Outside reference (receipt, provider transaction, bill), unique per site",
    )
    reverses = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by"
    )

    class Meta:
        ordering = ["site", "date", "id"]
        indexes = [models.Index(fields=["site", "date"])]
        constraints = [
            models.UniqueConstraint(
                fields=["site", "reference"],
                condition=~models.Q(reference=""),
                name="one_posting_per_site_reference",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} {self.date} ({self.currency})"


class PostingLine(ImmutableModel):
    """One side of a posting: a signed amount, positive = debit, negative = credit."""

    posting = models.ForeignKey(Posting, on_delete=models.PROTECT, related_name="lines")
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="lines")
    amount = models.DecimalField(max_digits=18, decimal_places=2)

    class Meta:
        ordering = ["posting", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(amount=0), name="posting_line_amount_not_zero"
            ),
        ]

    def __str__(self) -> str:
        side = "Dr" if self.amount > 0 else "Cr"
        return f"{side} {abs(self.amount)} {self.account}"


class MoneyRequest(models.Model):
    """A refund or write-off asked for by one person; posted only once another approves."""

    class Kind(models.TextChoices):
        REFUND = "refund", "Refund"
        WRITE_OFF = "write_off", "Write-off"

    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested (awaiting approval)"
        APPROVED = "approved", "Approved and posted"
        REJECTED = "rejected", "Rejected"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.REQUESTED)
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="money_requests"
    )
    amount = models.DecimalField(max_digits=18, decimal_places=2)
    source = models.JSONField(
        default=dict, blank=True, help_text="Where a refund is paid from (channel, agent, provider)"
    )
    reason = models.CharField(max_length=300)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=300, blank=True)
    posting = models.OneToOneField(
        Posting, null=True, blank=True, on_delete=models.PROTECT, related_name="request"
    )

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="money_request_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.amount} for {self.customer_id}"
