"""Collections' own record: which reminders and notices went out about which invoice."""

from __future__ import annotations

from django.db import models

from billing.models import Invoice, SupplyRequest


class CollectionNotice(models.Model):
    """A due-date reminder or an impending-disconnection notice about one invoice.

    At most one of each kind per invoice. A notice carries the first local day on
    which a disconnection may be requested (``disconnect_from``: the notice day plus
    the site's grace days) and, once asked for, the supply request it led to.
    """

    class Kind(models.TextChoices):
        REMINDER = "reminder", "Due-date reminder"
        NOTICE = "notice", "Impending-disconnection notice"

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="notices")
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="collection_notices"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    sent_at = models.DateTimeField()
    sent_on = models.DateField(help_text="The site's local day it went out")
    amount = models.DecimalField(
        max_digits=18, decimal_places=2, help_text="What the message asked the customer to pay"
    )
    message = models.ForeignKey(
        "notifications.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    disconnect_from = models.DateField(
        null=True, blank=True, help_text="Notices: first local day disconnection may be asked"
    )
    supply_request = models.ForeignKey(
        SupplyRequest, null=True, blank=True, on_delete=models.PROTECT, related_name="notices"
    )

    class Meta:
        ordering = ["-sent_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "kind"], name="one_notice_per_invoice_kind"),
        ]
        indexes = [models.Index(fields=["customer", "kind"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} about {self.invoice_id} on {self.sent_on}"
