"""Customer accounts, their status history and service requests."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from mcoms.core.models import Site


class Customer(models.Model):
    """One account: a home or shop supplied by a mini-grid."""

    class Status(models.TextChoices):
        APPLICANT = "applicant", "Applicant"
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        DISCONNECTED = "disconnected", "Disconnected"
        CLOSED = "closed", "Closed"

    class Language(models.TextChoices):
        ENGLISH = "en", "English"
        SWAHILI = "sw", "Swahili"
        LUGANDA = "lg", "Luganda"

    account_number = models.CharField(max_length=20, unique=True)
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    phone = models.CharField(max_length=16, db_index=True, help_text="E.164")
    alt_phone = models.CharField(max_length=16, blank=True, db_index=True, help_text="E.164")
    email = models.EmailField(blank=True)
    id_number = models.CharField("ID document number", max_length=40, blank=True)
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="customers")
    location = models.CharField(max_length=200, blank=True, help_text="Village, plot, building")
    latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    # Packages belong to billing, a higher layer: a string reference, not an import.
    package = models.ForeignKey(
        "billing.ServicePackage",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="customers",
    )
    language = models.CharField(max_length=5, choices=Language.choices, default=Language.ENGLISH)
    critical_load = models.BooleanField(
        default=False, help_text="Clinic, water pump…: never disconnected automatically"
    )
    critical_load_note = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.APPLICANT)
    status_changed_at = models.DateTimeField()
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="customer",
    )
    created_at = models.DateTimeField()
    anonymised_at = models.DateTimeField(
        null=True, blank=True, help_text="When the personal data of this closed account was erased"
    )

    class Meta:
        ordering = ["account_number"]
        indexes = [models.Index(fields=["site", "status"]), models.Index(fields=["last_name"])]

    def __str__(self) -> str:
        return f"{self.account_number} {self.full_name}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class CustomerStatusChange(models.Model):
    """A dated entry in a customer's status history."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="status_history")
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16)
    at = models.DateTimeField()
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    by_label = models.CharField(max_length=150)
    reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d} {self.from_status or 'new'} → {self.to_status}"


class ServiceRequest(models.Model):
    """A customer's request: a new connection, a package change, a fault or a complaint."""

    class Kind(models.TextChoices):
        NEW_CONNECTION = "new_connection", "New connection"
        PACKAGE_CHANGE = "package_change", "Package change"
        FAULT = "fault", "Fault"
        COMPLAINT = "complaint", "Complaint"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        IN_PROGRESS = "in_progress", "In progress"
        RESOLVED = "resolved", "Resolved"
        REJECTED = "rejected", "Rejected"
        CLOSED = "closed", "Closed"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="requests")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    description = models.TextField(blank=True)
    requested_package = models.ForeignKey(
        "billing.ServicePackage", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    channel = models.CharField(max_length=16, default="web")
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_requests",
        help_text="The staff member (usually a field agent of the site) handling it",
    )
    due_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_kind_display()} ({self.get_status_display()})"


class ServiceRequestEvent(models.Model):
    """A step in a service request's life."""

    request = models.ForeignKey(ServiceRequest, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16)
    at = models.DateTimeField()
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    by_label = models.CharField(max_length=150)
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d} {self.from_status or 'new'} → {self.to_status}"


class DataAccess(models.Model):
    """One look at, search of or download of customers' personal data by staff.

    Append-only: rows are written by :mod:`customers.access` and never changed (the
    admin shows them read-only). One row per request; the customers it showed are
    its :class:`DataAccessSubject` rows.
    """

    class Action(models.TextChoices):
        VIEW = "view", "Viewed"
        SEARCH = "search", "Searched or listed"
        EXPORT = "export", "Exported"

    at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="data_accesses",
    )
    actor_label = models.CharField(max_length=150, help_text="Who, as named when it happened")
    channel = models.CharField(max_length=16, help_text="web, api, admin, agent_app…")
    action = models.CharField(max_length=8, choices=Action.choices)
    what = models.CharField(max_length=100, help_text="The page or download")
    query = models.CharField(max_length=300, blank=True, help_text="Search words and filters")
    ip = models.GenericIPAddressField(null=True, blank=True)
    subjects_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "personal data access"
        verbose_name_plural = "personal data accesses"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.what}"


class DataAccessSubject(models.Model):
    """A customer whose data one access showed."""

    access = models.ForeignKey(DataAccess, on_delete=models.CASCADE, related_name="subjects")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")

    class Meta:
        indexes = [models.Index(fields=["customer", "access"])]

    def __str__(self) -> str:
        return f"{self.access_id}: customer {self.customer_id}"
