"""Roles and what each may do.

A user has one role. What they may *see* is scoped by the regions, clusters and
sites assigned to them (see :mod:`mcoms.core.selectors`); what they may *do* is a
capability granted to their role here. Pages and API endpoints check both.
"""

from __future__ import annotations

from django.db import models


class Role(models.TextChoices):
    ADMIN = "admin", "Head-office admin"
    REGIONAL_MANAGER = "regional_manager", "Regional manager"
    CLUSTER_MANAGER = "cluster_manager", "Cluster manager"
    SITE_MANAGER = "site_manager", "Site manager"
    BILLING_OFFICER = "billing_officer", "Billing officer"
    FIELD_SUPERVISOR = "field_supervisor", "Field supervisor"
    FIELD_AGENT = "field_agent", "Field agent"
    CUSTOMER = "customer", "Customer"


STAFF_ROLES = frozenset(Role) - {Role.CUSTOMER}
MANAGERS = frozenset({Role.ADMIN, Role.REGIONAL_MANAGER, Role.CLUSTER_MANAGER, Role.SITE_MANAGER})
FIELD = frozenset({Role.FIELD_SUPERVISOR, Role.FIELD_AGENT})
# Roles that sign in with a second factor (TOTP) as well: they move money (mcoms.security).
TWO_FACTOR = frozenset({Role.ADMIN, Role.BILLING_OFFICER})


class Cap:
    """Capability names (strings, so templates can ask for them)."""

    CUSTOMERS_VIEW = "customers.view"
    CUSTOMERS_EDIT = "customers.edit"
    CUSTOMERS_STATUS = "customers.status"
    REQUESTS_HANDLE = "requests.handle"
    METERS_VIEW = "meters.view"
    METERS_EDIT = "meters.edit"
    METERS_FIELD = "meters.field"  # install / commission steps done on site
    METERS_IMPORT = "meters.import"
    ORG_MANAGE = "org.manage"
    PEOPLE_MANAGE = "people.manage"
    AUDIT_VIEW = "audit.view"
    MESSAGES_VIEW = "messages.view"
    PACKAGES_MANAGE = "packages.manage"
    BILLING_VIEW = "billing.view"  # invoices, payments, arrears, statements
    BILLING_RUN = "billing.run"  # preview and post billing runs, credit notes
    MONEY_APPROVE = "money.approve"  # second person on refunds, write-offs, tariff changes
    PAYMENTS_RECORD = "payments.record"  # take cash, start a mobile-money request
    CASH_RECEIVE = "cash.receive"  # receive agents' cash hand-overs at the office
    LEDGER_CLOSE = "ledger.close"  # settlements, GL export, period close
    MESSAGES_SEND = "messages.send"  # staff messaging to customers and agents
    PRIVACY_EXPORT = "privacy.export"  # a customer's whole data, on their request
    PRIVACY_ERASE = "privacy.erase"  # anonymise a closed account


_ALL_STAFF_VIEW = {Cap.CUSTOMERS_VIEW, Cap.METERS_VIEW}
_MANAGER_CAPS = _ALL_STAFF_VIEW | {
    Cap.BILLING_VIEW,
    Cap.MESSAGES_SEND,
    Cap.CASH_RECEIVE,
    Cap.CUSTOMERS_EDIT,
    Cap.CUSTOMERS_STATUS,
    Cap.REQUESTS_HANDLE,
    Cap.METERS_EDIT,
    Cap.METERS_FIELD,
    Cap.METERS_IMPORT,
    Cap.MESSAGES_VIEW,
}

CAPABILITIES: dict[str, frozenset[str]] = {
    Role.ADMIN: frozenset(
        _MANAGER_CAPS
        | {Cap.ORG_MANAGE, Cap.PEOPLE_MANAGE, Cap.AUDIT_VIEW, Cap.PACKAGES_MANAGE}
        | {Cap.PRIVACY_EXPORT, Cap.PRIVACY_ERASE}
        | {Cap.BILLING_RUN, Cap.MONEY_APPROVE, Cap.PAYMENTS_RECORD, Cap.LEDGER_CLOSE}
    ),
    Role.REGIONAL_MANAGER: frozenset(_MANAGER_CAPS | {Cap.AUDIT_VIEW, Cap.PRIVACY_EXPORT}),
    Role.CLUSTER_MANAGER: frozenset(_MANAGER_CAPS),
    Role.SITE_MANAGER: frozenset(_MANAGER_CAPS),
    Role.BILLING_OFFICER: frozenset(
        _ALL_STAFF_VIEW
        | {Cap.CUSTOMERS_STATUS, Cap.MESSAGES_VIEW, Cap.MESSAGES_SEND, Cap.PACKAGES_MANAGE}
        | {Cap.BILLING_VIEW, Cap.BILLING_RUN, Cap.MONEY_APPROVE, Cap.PAYMENTS_RECORD}
        | {Cap.CASH_RECEIVE, Cap.LEDGER_CLOSE}
    ),
    Role.FIELD_SUPERVISOR: frozenset(
        _ALL_STAFF_VIEW
        | {Cap.CUSTOMERS_EDIT, Cap.REQUESTS_HANDLE, Cap.METERS_FIELD, Cap.BILLING_VIEW}
        | {Cap.PAYMENTS_RECORD, Cap.MESSAGES_SEND}
    ),
    Role.FIELD_AGENT: frozenset(
        _ALL_STAFF_VIEW | {Cap.CUSTOMERS_EDIT, Cap.METERS_FIELD, Cap.PAYMENTS_RECORD}
    ),
    Role.CUSTOMER: frozenset(),
}


def role_can(role: str, capability: str) -> bool:
    """True when ``role`` carries ``capability``."""
    return capability in CAPABILITIES.get(role, frozenset())
