"""Writes to customer accounts and service requests; every one audited."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction

from customers.models import Customer, CustomerStatusChange, ServiceRequest, ServiceRequestEvent
from customers.phones import normalise_phone
from mcoms.core import audit, clock
from mcoms.core.models import AuditEvent, Site
from mcoms.core.selectors import staff_of_site
from notifications import services as messaging

log = logging.getLogger(__name__)

# Which status may follow which. Closing is final.
CUSTOMER_TRANSITIONS: dict[str, set[str]] = {
    Customer.Status.APPLICANT: {Customer.Status.ACTIVE, Customer.Status.CLOSED},
    Customer.Status.ACTIVE: {
        Customer.Status.SUSPENDED,
        Customer.Status.DISCONNECTED,
        Customer.Status.CLOSED,
    },
    Customer.Status.SUSPENDED: {
        Customer.Status.ACTIVE,
        Customer.Status.DISCONNECTED,
        Customer.Status.CLOSED,
    },
    Customer.Status.DISCONNECTED: {Customer.Status.ACTIVE, Customer.Status.CLOSED},
    Customer.Status.CLOSED: set(),
}

REQUEST_TRANSITIONS: dict[str, set[str]] = {
    ServiceRequest.Status.OPEN: {
        ServiceRequest.Status.IN_PROGRESS,
        ServiceRequest.Status.RESOLVED,
        ServiceRequest.Status.REJECTED,
    },
    ServiceRequest.Status.IN_PROGRESS: {
        ServiceRequest.Status.RESOLVED,
        ServiceRequest.Status.REJECTED,
    },
    ServiceRequest.Status.RESOLVED: {
        ServiceRequest.Status.CLOSED,
        ServiceRequest.Status.IN_PROGRESS,
    },
    ServiceRequest.Status.REJECTED: {ServiceRequest.Status.CLOSED},
    ServiceRequest.Status.CLOSED: set(),
}

EDITABLE_FIELDS = (
    "first_name",
    "last_name",
    "phone",
    "alt_phone",
    "email",
    "id_number",
    "location",
    "latitude",
    "longitude",
    "package",
    "language",
    "critical_load",
    "critical_load_note",
)


@dataclass
class Saved:
    """A saved customer and the warnings a person should see (e.g. a shared phone)."""

    customer: Customer
    warnings: list[str] = field(default_factory=list)


def next_account_number(site: Site) -> str:
    """The next free account number on a site: ``<SITE CODE>-<5 digits>``."""
    prefix = f"{site.code.upper()}-"
    last = (
        Customer.objects.filter(account_number__startswith=prefix)
        .order_by("-account_number")
        .values_list("account_number", flat=True)
        .first()
    )
    number = (
        int(last.removeprefix(prefix)) + 1 if last and last.removeprefix(prefix).isdigit() else 1
    )
    return f"{prefix}{number:05d}"


def duplicate_phone_warnings(phone: str, *, exclude_pk: int | None = None) -> list[str]:
    """Warnings naming the other accounts that use this phone number."""
    others = Customer.objects.filter(phone=phone).exclude(pk=exclude_pk)
    return [
        f"Phone {phone} is also used by account {c.account_number} ({c.full_name})."
        for c in others[:5]
    ]


def _normalise(fields: dict, site: Site) -> dict:
    errors = {}
    for name in ("phone", "alt_phone"):
        value = fields.get(name)
        if value:
            try:
                fields[name] = normalise_phone(value, default_region=site.country)
            except ValidationError as exc:
                errors[name] = exc.messages
    if errors:
        raise ValidationError(errors)
    return fields


@transaction.atomic
def customer_create(*, site: Site, now: datetime | None = None, **fields) -> Saved:
    """Register a customer on ``site`` (status applicant unless given).

    Returns the customer and warnings (a phone number already on another account
    is allowed — families share phones — but a person should know).
    """
    at = clock.resolve(now)
    unknown = set(fields) - set(EDITABLE_FIELDS) - {"status", "account_number", "user"}
    if unknown:
        raise ValueError(f"customer_create does not take {sorted(unknown)}")
    fields = _normalise(dict(fields), site)
    customer = Customer(site=site, status_changed_at=at, created_at=at, **fields)
    if not customer.account_number:
        customer.account_number = next_account_number(site)
    customer.full_clean()
    warnings = duplicate_phone_warnings(customer.phone)
    customer.save()
    CustomerStatusChange.objects.create(
        customer=customer,
        from_status="",
        to_status=customer.status,
        at=at,
        by=audit.current_actor().user,
        by_label=audit.current_actor().label,
        reason="registered",
    )
    audit.record(AuditEvent.Action.CREATE, customer, after=audit.snapshot(customer), site=site)
    _notify(
        customer, "customer_registered", {"customer": customer, "account": customer.account_number}
    )
    return Saved(customer, warnings)


@transaction.atomic
def customer_update(*, customer: Customer, **fields) -> Saved:
    """Change a customer's details; status changes go through :func:`customer_set_status`."""
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"customer_update cannot change {sorted(unknown)}")
    before = audit.snapshot(customer)
    fields = _normalise(dict(fields), customer.site)
    for name, value in fields.items():
        setattr(customer, name, value)
    customer.full_clean()
    warnings = []
    if "phone" in fields and fields["phone"] != before["phone"]:
        warnings = duplicate_phone_warnings(customer.phone, exclude_pk=customer.pk)
    customer.save()
    audit.record_changes(customer, before, site=customer.site_id)
    return Saved(customer, warnings)


@transaction.atomic
def customer_set_status(
    *, customer: Customer, status: str, reason: str = "", now: datetime | None = None
) -> Customer:
    """Move a customer to ``status`` if the flow allows it, with a dated history entry."""
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if status == customer.status:
        return customer
    if status not in CUSTOMER_TRANSITIONS.get(customer.status, set()):
        raise ValidationError(
            f"An account that is {customer.get_status_display().lower()} cannot become {status}."
        )
    at = clock.resolve(now)
    before = audit.snapshot(customer, ["status", "status_changed_at"])
    old = customer.status
    customer.status = status
    customer.status_changed_at = at
    customer.save(update_fields=["status", "status_changed_at"])
    actor = audit.current_actor()
    CustomerStatusChange.objects.create(
        customer=customer,
        from_status=old,
        to_status=status,
        at=at,
        by=actor.user,
        by_label=actor.label,
        reason=reason,
    )
    audit.record(
        AuditEvent.Action.TRANSITION,
        customer,
        before=before,
        after=audit.snapshot(customer, ["status", "status_changed_at"]),
        site=customer.site_id,
        note=reason,
    )
    return customer


@transaction.atomic
def customer_link_user(*, customer: Customer, user) -> Customer:
    """Give a customer's account a portal login (one login per account)."""
    before = audit.snapshot(customer, ["user"])
    customer.user = user
    customer.save(update_fields=["user"])
    audit.record_changes(customer, before, site=customer.site_id)
    return customer


@transaction.atomic
def service_request_create(
    *,
    customer: Customer,
    kind: str,
    description: str = "",
    requested_package=None,
    channel: str = "web",
    now: datetime | None = None,
) -> ServiceRequest:
    """Open a service request for a customer."""
    at = clock.resolve(now)
    if kind == ServiceRequest.Kind.PACKAGE_CHANGE and requested_package is None:
        raise ValidationError({"requested_package": "Choose the package the customer wants."})
    request = ServiceRequest(
        customer=customer,
        kind=kind,
        description=description,
        requested_package=requested_package,
        channel=channel,
        created_at=at,
        updated_at=at,
    )
    request.full_clean()
    request.save()
    actor = audit.current_actor()
    ServiceRequestEvent.objects.create(
        request=request,
        from_status="",
        to_status=request.status,
        at=at,
        by=actor.user,
        by_label=actor.label,
        note=description[:500],
    )
    audit.record(
        AuditEvent.Action.CREATE, request, after=audit.snapshot(request), site=customer.site_id
    )
    return request


@transaction.atomic
def service_request_transition(
    *, request: ServiceRequest, status: str, note: str = "", now: datetime | None = None
) -> ServiceRequest:
    """Move a service request along its flow; resolving a package change applies it."""
    request = (
        ServiceRequest.objects.select_for_update().select_related("customer").get(pk=request.pk)
    )
    if status not in REQUEST_TRANSITIONS.get(request.status, set()):
        raise ValidationError(
            f"A request that is {request.get_status_display().lower()} cannot become {status}."
        )
    at = clock.resolve(now)
    before = audit.snapshot(request, ["status"])
    old, request.status, request.updated_at = request.status, status, at
    request.save(update_fields=["status", "updated_at"])
    actor = audit.current_actor()
    ServiceRequestEvent.objects.create(
        request=request,
        from_status=old,
        to_status=status,
        at=at,
        by=actor.user,
        by_label=actor.label,
        note=note[:500],
    )
    audit.record(
        AuditEvent.Action.TRANSITION,
        request,
        before=before,
        after={"status": status},
        site=request.customer.site_id,
        note=note,
    )
    if (
        status == ServiceRequest.Status.RESOLVED
        and request.kind == ServiceRequest.Kind.PACKAGE_CHANGE
    ):
        customer_update(customer=request.customer, package=request.requested_package)
    _notify(
        request.customer,
        "service_request_update",
        {
            "name": request.customer.first_name,
            "account": request.customer.account_number,
            "reference": request_reference(request),
            "status": request.get_status_display().lower(),
            "note": note.strip(),
        },
        about=f"customers.servicerequest:{request.pk}",
    )
    return request


@transaction.atomic
def service_request_assign(
    *, request: ServiceRequest, to, due_on=None, now: datetime | None = None
) -> ServiceRequest:
    """Give a request to a staff member of its site (audited); they get a ``staff_assignment``.

    ``to`` must be staff who may act on the request's site; ``None`` takes it back.
    """
    request = (
        ServiceRequest.objects.select_for_update()
        .select_related("customer__site")
        .get(pk=request.pk)
    )
    site = request.customer.site
    if to is not None and not staff_of_site(site).filter(pk=to.pk).exists():
        raise ValidationError(f"{to.get_full_name() or to.get_username()} does not work on {site}.")
    before = audit.snapshot(request, ["assigned_to", "due_on"])
    request.assigned_to, request.due_on = to, due_on
    request.updated_at = clock.resolve(now)
    request.save(update_fields=["assigned_to", "due_on", "updated_at"])
    audit.record(
        AuditEvent.Action.UPDATE,
        request,
        before=before,
        after=audit.snapshot(request, ["assigned_to", "due_on"]),
        site=site.pk,
        note=f"assigned to {to.get_username()}" if to else "assignment taken back",
    )
    if to is not None:
        _tell_assignee(request, to)
    return request


def _tell_assignee(request: ServiceRequest, to) -> None:
    """The ``staff_assignment`` message, by SMS when they have a phone; never blocks."""
    if not to.phone:
        log.info("assignee %s has no phone; request %s not messaged", to.pk, request.pk)
        return
    customer = request.customer
    try:
        messaging.send_message(
            to=to.phone,
            template="staff_assignment",
            context={
                "name": to.first_name or to.get_username(),
                "task": f"{request.get_kind_display().lower()} {request_reference(request)}",
                "customer_name": f"{customer.first_name} {customer.last_name[:1]}.".strip(),
                "site": customer.site.name,
                "due": f"{request.due_on:%d %b}" if request.due_on else "soon",
            },
            about=f"customers.servicerequest:{request.pk}",
            site_id=customer.site_id,
            timezone=customer.site.timezone,
        )
    except messaging.TemplateMissing:
        log.info("no staff_assignment template; request %s assignee not messaged", request.pk)


def request_reference(request: ServiceRequest) -> str:
    """How a customer is told of their request: ``SR-<number>``."""
    return f"SR-{request.pk}"


def _notify(customer: Customer, template: str, context: dict, about: str = "") -> None:
    """Message the customer; a missing template or backend never blocks the change.

    Delivery starts after the change commits (a rolled-back change sends nothing).
    """
    if not customer.phone:
        return
    try:
        messaging.send_message(
            to=customer.phone,
            template=template,
            context=context,
            language=customer.language,
            about=about or f"customers.customer:{customer.pk}",
            site_id=customer.site_id,
            timezone=customer.site.timezone,
        )
    except messaging.TemplateMissing:
        log.info("no %s template; customer %s not messaged", template, customer.pk)
