"""Customers' public face for personal data: what we hold about a person, and erasing it.

:func:`identity` lists the strings that identify a customer (names, numbers, email, ID,
address) so every app can find them in its free text; :func:`customer_data` is this app's
part of a subject access archive; :func:`anonymise_customer` erases this app's part once
the account is closed. See docs/personal-data.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import transaction

from customers.models import (
    Customer,
    CustomerStatusChange,
    DataAccess,
    ServiceRequest,
    ServiceRequestEvent,
)
from mcoms.core import audit, clock, privacy
from mcoms.core.models import AuditEvent, User

# Fields of the account that identify the person; everything else (status, site,
# package, dates) is kept for the books and the grid's statistics.
PERSONAL_FIELDS = (
    "first_name",
    "last_name",
    "phone",
    "alt_phone",
    "email",
    "id_number",
    "location",
    "latitude",
    "longitude",
    "critical_load_note",
)


@dataclass(frozen=True)
class Identity:
    """What identifies one customer, as text to look for elsewhere."""

    customer_id: int
    about: str  # how messages name the account: ``customers.customer:<id>``
    phones: tuple[str, ...]  # the account's own numbers (E.164)
    email: str
    shared_phones: tuple[str, ...]  # those also used by another account still identifiable
    strings: tuple[str, ...]  # names, email, ID, address and the numbers in all their forms
    distinctive: tuple[str, ...]  # full name, email, ID, login: safe to look for anywhere

    @property
    def addresses(self) -> tuple[str, ...]:
        """Where messages to this person went, if no other account uses the number."""
        return self.own_phones + ((self.email,) if self.email else ())

    @property
    def own_phones(self) -> tuple[str, ...]:
        """Numbers used by no other identifiable account: safe to erase wherever they appear."""
        return tuple(p for p in self.phones if p not in self.shared_phones)

    def _unshared(self, strings: tuple[str, ...]) -> tuple[str, ...]:
        shared = {form for p in self.shared_phones for form in privacy.phone_forms(p)}
        return tuple(s for s in strings if s not in shared)

    @property
    def erasable(self) -> tuple[str, ...]:
        """What to replace in the records of this account (shared numbers left alone)."""
        return self._unshared(self.strings)

    @property
    def everywhere(self) -> tuple[str, ...]:
        """What to replace in any record: never a first or last name alone, which a
        neighbour or relative may share, nor a shared number."""
        return self._unshared(self.distinctive)


def anonymous_label(customer: Customer | int) -> str:
    """What an anonymised account is called from then on."""
    pk = customer if isinstance(customer, int) else customer.pk
    return f"Anonymised customer #{pk}"


def identity(customer: Customer) -> Identity:
    """The strings that identify ``customer``, looked up before anything is erased."""
    phones = tuple(p for p in (customer.phone, customer.alt_phone) if p)
    others = Customer.objects.exclude(pk=customer.pk).filter(anonymised_at__isnull=True)
    shared = tuple(p for p in phones if others.filter(phone=p).exists())
    shared += tuple(p for p in phones if p not in shared and others.filter(alt_phone=p).exists())
    distinctive = [customer.full_name, f"{customer.last_name} {customer.first_name}"]
    distinctive += [customer.email, customer.id_number]
    distinctive += [form for p in phones for form in privacy.phone_forms(p)]
    if customer.user_id:
        distinctive.append(customer.user.get_username())
    strings = [*distinctive, customer.first_name, customer.last_name, customer.location]
    return Identity(
        customer_id=customer.pk,
        about=f"customers.customer:{customer.pk}",
        phones=phones,
        email=customer.email,
        shared_phones=shared,
        strings=_useful(strings),
        distinctive=_useful(distinctive),
    )


def _useful(strings: list[str]) -> tuple[str, ...]:
    return tuple(s.strip() for s in dict.fromkeys(strings) if s and len(s.strip()) >= 3)


def customer_data(customer: Customer) -> dict[str, list[dict]]:
    """This app's part of the customer's archive: the account, its history and requests,
    and who has looked at it."""
    requests = ServiceRequest.objects.filter(customer=customer)
    accesses = DataAccess.objects.filter(subjects__customer=customer)
    return {
        "account": privacy.rows(Customer.objects.filter(pk=customer.pk)),
        "status_history": privacy.rows(CustomerStatusChange.objects.filter(customer=customer)),
        "service_requests": privacy.rows(requests),
        "service_request_events": privacy.rows(
            ServiceRequestEvent.objects.filter(request__in=requests)
        ),
        "data_access_log": privacy.rows(accesses, exclude=("actor",)),
    }


def _lock_closed(customer: Customer) -> Customer:
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if customer.status != Customer.Status.CLOSED:
        raise ValidationError(
            f"Account {customer.account_number} is {customer.get_status_display().lower()}: "
            "only a closed account can be anonymised. Close it first."
        )
    if customer.anonymised_at is not None:
        raise ValidationError(f"Account {customer.account_number} is already anonymised.")
    return customer


def check_anonymisable(customer: Customer) -> None:
    """Raise ValidationError unless the account is closed and not yet anonymised."""
    _lock_closed(customer)


@transaction.atomic
def anonymise_customer(*, customer: Customer, who: Identity) -> Customer:
    """Erase the account's personal fields, free texts, portal login, and every mention of
    the person in the audit trail, the admin's history and the access log.

    Only a closed account; status, site, package, dates and the account number stay (the
    invoices, payments and ledger point at them). The change itself is audited with the
    fields that were erased, not their values.
    """
    customer = _lock_closed(customer)
    label = anonymous_label(customer)
    before = audit.snapshot(customer, PERSONAL_FIELDS)
    customer.first_name, customer.last_name = label, ""
    customer.phone = customer.alt_phone = customer.email = customer.id_number = ""
    customer.location = customer.critical_load_note = ""
    customer.latitude = customer.longitude = None
    customer.anonymised_at = clock.now()
    customer.save(update_fields=[*PERSONAL_FIELDS, "anonymised_at"])
    if customer.user_id:
        privacy.scrub_audit_of(User.objects.filter(pk=customer.user_id), who.erasable, label)
        privacy.user_anonymise(user=customer.user, label=label)
    _erase_free_text(customer, who, label)
    privacy.forget_audit_fields(customer, PERSONAL_FIELDS, privacy.REMOVED)
    privacy.scrub_audit(who.erasable, label, of=customer)
    privacy.scrub_audit(who.everywhere, label)
    _forget_admin_history(customer, who, label)
    accesses = DataAccess.objects.filter(subjects__customer=customer)
    privacy.scrub(accesses, ["query"], who.erasable, privacy.REMOVED)
    privacy.scrub(DataAccess.objects.all(), ["query"], who.everywhere, privacy.REMOVED)
    audit.record(
        AuditEvent.Action.UPDATE,
        customer,
        before={k: privacy.REMOVED for k, v in before.items() if v not in (None, "")},
        after={k: audit.snapshot(customer, [k])[k] for k, v in before.items() if v},
        site=customer.site_id,
        note="personal data anonymised (account closed)",
    )
    return customer


def _erase_free_text(customer: Customer, who: Identity, label: str) -> None:
    requests = ServiceRequest.objects.filter(customer=customer)
    privacy.scrub_audit_of(requests, who.erasable, label)
    requests.exclude(description="").update(description=privacy.REMOVED)
    ServiceRequestEvent.objects.filter(request__in=requests).exclude(note="").update(
        note=privacy.REMOVED
    )
    history = CustomerStatusChange.objects.filter(customer=customer)
    privacy.scrub(history, ["reason"], who.erasable, label)


def _forget_admin_history(customer: Customer, who: Identity, label: str) -> None:
    kind = ContentType.objects.get_for_model(Customer)
    entries = LogEntry.objects.filter(content_type=kind, object_id=str(customer.pk))
    entries.update(object_repr=str(customer)[:200])
    privacy.scrub(entries, ["change_message"], who.erasable, label)
    privacy.scrub(LogEntry.objects.all(), ["object_repr", "change_message"], who.everywhere, label)
