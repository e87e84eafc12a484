"""Service packages: what a customer buys (load limit, how they pay)."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
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
        REVENUE_FEES = "revenue_fees", "Revenue: connection and other fees"
        DEPOSITS_HELD = "deposits_held", "Customer deposits held"

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
        CREDIT_NOTE = "credit_note", "Credit note"
        CHARGE = "charge", "Charge (fees, instalments, prepaid consumption)"
        DEPOSIT = "deposit", "Deposit"
        TOKEN_SALE = "token_sale", "Prepaid token sale"

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


# --- Site billing policy and supply requests --------------------------------------------------


class BillingPolicy(models.Model):
    """How a site bills and collects: run day and hour, due dates, reminders, notices.

    A site without a row uses the defaults (:meth:`for_site`). Times are the site's own.
    """

    site = models.OneToOneField(Site, on_delete=models.CASCADE, related_name="billing_policy")
    run_day = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(28)],
        help_text="Day of the month the monthly billing run starts (site time)",
    )
    run_hour = models.PositiveSmallIntegerField(
        default=8, validators=[MaxValueValidator(23)], help_text="Hour of the run (site time)"
    )
    due_days = models.PositiveSmallIntegerField(default=14, help_text="Days from issue to due date")
    reminder_days = models.PositiveSmallIntegerField(
        default=3, help_text="Days before the due date that a reminder goes out (0: none)"
    )
    notice_days = models.PositiveSmallIntegerField(
        default=7, help_text="Days overdue before the impending-disconnection notice"
    )
    grace_days = models.PositiveSmallIntegerField(
        default=7, help_text="Days after the notice before disconnection is requested"
    )
    notice_min_amount = models.DecimalField(
        max_digits=18, decimal_places=2, default=0,
        help_text="Arrears below this never lead to a notice",
    )
    low_balance = models.DecimalField(
        max_digits=18, decimal_places=2, default=2000,
        help_text="Prepaid credit at or below this gets a low-balance message",
    )
    disconnect_from = models.TimeField(
        default=dt.time(8), help_text="Disconnections only from (working hours)"
    )
    disconnect_until = models.TimeField(default=dt.time(17), help_text="... until")
    disconnect_weekdays_only = models.BooleanField(
        default=True, help_text="No disconnection on weekends and public holidays"
    )

    class Meta:
        verbose_name_plural = "billing policies"

    def __str__(self) -> str:
        return f"Billing policy of {self.site}"

    @classmethod
    def for_site(cls, site: Site) -> BillingPolicy:
        """The site's policy, or the defaults (unsaved) when it has none."""
        found = cls.objects.filter(site=site).first()
        return found if found is not None else cls(site=site)


class SupplyRequest(models.Model):
    """A request to disconnect or reconnect a customer's supply, for the steering rules.

    Billing and collections only *ask* (prepaid credit at zero, arrears after notice
    and grace, a top-up); whatever acts on relays or sends a field visit decides and
    records the outcome here. At most one open request per customer and action.
    """

    class Action(models.TextChoices):
        DISCONNECT = "disconnect", "Disconnect"
        RECONNECT = "reconnect", "Reconnect"

    class Reason(models.TextChoices):
        PREPAID_EMPTY = "prepaid_empty", "Prepaid credit ran out"
        ARREARS = "arrears", "Arrears after notice and grace"
        TOP_UP = "top_up", "Paid or topped up"
        MANUAL = "manual", "Requested by staff"

    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested"
        DONE = "done", "Carried out"
        CANCELLED = "cancelled", "Cancelled"
        REFUSED = "refused", "Refused by policy"

    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="supply_requests"
    )
    action = models.CharField(max_length=10, choices=Action.choices)
    reason = models.CharField(max_length=14, choices=Reason.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.REQUESTED)
    detail = models.CharField(max_length=300, blank=True, help_text="e.g. the balance or notice")
    requested_at = models.DateTimeField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "action"],
                condition=models.Q(status="requested"),
                name="one_open_supply_request_per_action",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.customer_id} ({self.get_status_display()})"


# --- Billing runs and invoices (see billing/runs.py and docs/billing.md) -----------------------


class BillingRun(models.Model):
    """One site's monthly run: previewed first, then posted; one per site and month.

    ``total``/``done``/``held`` are the progress the run's page shows (N of M accounts).
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to start"
        PREVIEWING = "previewing", "Previewing"
        PREVIEWED = "previewed", "Preview ready"
        POSTING = "posting", "Posting"
        POSTED = "posted", "Posted"
        FAILED = "failed", "Failed"

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="billing_runs")
    period_start = models.DateField(help_text="First local day billed")
    period_end = models.DateField(help_text="First local day not billed")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    held = models.PositiveIntegerField(default=0)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    previewed_at = models.DateTimeField(null=True, blank=True)
    posted_at = models.DateTimeField(null=True, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-period_start", "site"]
        constraints = [
            models.UniqueConstraint(
                fields=["site", "period_start"], name="one_run_per_site_period"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.site} {self.period_start:%Y-%m} ({self.get_status_display()})"


class BillingRunItem(models.Model):
    """One account in a run: its previewed bill, or why it is held, then its invoice."""

    class Status(models.TextChoices):
        PENDING = "pending", "Not yet priced"
        READY = "ready", "Priced (preview)"
        HELD = "held", "Held for review"
        INVOICED = "invoiced", "Invoiced"

    run = models.ForeignKey(BillingRun, on_delete=models.CASCADE, related_name="items")
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="billing_run_items"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    kwh = models.DecimalField(max_digits=14, decimal_places=3, null=True, blank=True)
    total = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    estimated = models.BooleanField(default=False)
    reason = models.CharField(max_length=300, blank=True, help_text="Why held for review")
    lines = models.JSONField(default=list, blank=True, help_text="The previewed bill lines")
    invoice = models.OneToOneField(
        "Invoice", null=True, blank=True, on_delete=models.PROTECT, related_name="run_item"
    )

    class Meta:
        ordering = ["run", "customer"]
        constraints = [
            models.UniqueConstraint(fields=["run", "customer"], name="one_item_per_run_customer"),
        ]

    def __str__(self) -> str:
        return f"{self.run} {self.customer_id} ({self.get_status_display()})"


class Invoice(ImmutableModel):
    """A posted bill or credit note: never edited; corrections are credit notes.

    Money fields are exact in the currency. ``amount_due`` = previous balance −
    payments since + this total (what the customer owes once it is issued). A credit
    note (``kind=credit_note``) names the invoice it corrects and carries positive
    amounts that reduce what is owed.
    """

    class Kind(models.TextChoices):
        INVOICE = "invoice", "Invoice"
        CREDIT_NOTE = "credit_note", "Credit note"

    number = models.CharField(max_length=40, unique=True)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.INVOICE)
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="invoices"
    )
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="invoices")
    run = models.ForeignKey(
        BillingRun, null=True, blank=True, on_delete=models.PROTECT, related_name="invoices"
    )
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True, help_text="Exclusive")
    issued_on = models.DateField()
    due_on = models.DateField(null=True, blank=True)
    currency = models.CharField(max_length=3, choices=Site.Currency.choices)
    kwh = models.DecimalField(max_digits=14, decimal_places=3, default=0)
    estimated = models.BooleanField(default=False, help_text="Some usage was estimated")
    subtotal = models.DecimalField(max_digits=18, decimal_places=2)
    vat = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    total = models.DecimalField(max_digits=18, decimal_places=2)
    previous_balance = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    payments_since = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    amount_due = models.DecimalField(max_digits=18, decimal_places=2)
    corrects = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="credit_notes"
    )
    reason = models.CharField(max_length=300, blank=True, help_text="Why (credit notes)")
    posting = models.OneToOneField(Posting, on_delete=models.PROTECT, related_name="invoice")
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-issued_on", "-id"]
        indexes = [models.Index(fields=["customer", "issued_on"])]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "period_start"],
                condition=models.Q(kind="invoice"),
                name="one_invoice_per_customer_period",
            ),
            models.CheckConstraint(
                condition=models.Q(kind="invoice") | models.Q(corrects__isnull=False),
                name="credit_note_names_invoice",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.number}"


class InvoiceLine(ImmutableModel):
    """One line of an invoice or credit note, as the tariff engine priced it."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="lines")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=12, help_text="fixed, energy, demand, levy, vat, credit")
    description = models.CharField(max_length=200)
    quantity = models.DecimalField(max_digits=16, decimal_places=4, default=0)
    unit = models.CharField(max_length=12, blank=True)
    rate = models.DecimalField(max_digits=16, decimal_places=4, default=0)
    amount = models.DecimalField(max_digits=18, decimal_places=2)
    starts = models.DateField(null=True, blank=True)
    ends = models.DateField(null=True, blank=True)
    estimated = models.BooleanField(default=False)

    class Meta:
        ordering = ["invoice", "position"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "position"], name="one_line_per_position"),
        ]

    def __str__(self) -> str:
        return f"{self.description}: {self.amount}"


# --- Charges: connection fees, deposits, instalment plans (see billing/charges.py) ---------


class Charge(models.Model):
    """An amount a customer owes besides energy, at once or in monthly instalments.

    A connection fee is revenue; a deposit is held for the customer (a liability) and
    returned or set against arrears when the account closes.
    """

    class Kind(models.TextChoices):
        CONNECTION_FEE = "connection_fee", "Connection fee"
        DEPOSIT = "deposit", "Deposit"
        OTHER = "other", "Other charge"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        COMPLETED = "completed", "Fully charged"
        CANCELLED = "cancelled", "Cancelled"

    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="charges"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    description = models.CharField(max_length=200)
    total = models.DecimalField(max_digits=18, decimal_places=2)
    instalments = models.PositiveSmallIntegerField(default=1)
    first_due = models.DateField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["customer", "first_due", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(total__gt=0), name="charge_positive"),
            models.CheckConstraint(
                condition=models.Q(instalments__gte=1), name="charge_at_least_one_instalment"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.total} for {self.customer_id}"


class ChargeInstalment(models.Model):
    """One instalment of a charge: due on a date, posted to the ledger once due."""

    charge = models.ForeignKey(Charge, on_delete=models.PROTECT, related_name="schedule")
    number = models.PositiveSmallIntegerField()
    due_on = models.DateField()
    amount = models.DecimalField(max_digits=18, decimal_places=2)
    posting = models.OneToOneField(
        Posting, null=True, blank=True, on_delete=models.PROTECT, related_name="instalment"
    )

    class Meta:
        ordering = ["charge", "number"]
        constraints = [
            models.UniqueConstraint(fields=["charge", "number"], name="one_instalment_per_number"),
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="instalment_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.charge} #{self.number} due {self.due_on}"
