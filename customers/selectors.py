"""Read queries of customer accounts, scoped to what a person may see."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from customers.models import Customer, ServiceRequest
from mcoms.core.models import User
from mcoms.core.roles import Cap, Role
from mcoms.core.selectors import sites_visible_to


def customers_visible_to(user: User) -> QuerySet[Customer]:
    """Accounts a person may see: a customer their own, staff those of their sites."""
    if not user.is_authenticated or not user.is_active:
        return Customer.objects.none()
    if user.role == Role.CUSTOMER and not user.is_superuser:
        return Customer.objects.filter(user=user)
    if not user.can(Cap.CUSTOMERS_VIEW):
        return Customer.objects.none()
    return Customer.objects.filter(site__in=sites_visible_to(user)).select_related(
        "site", "package"
    )


def customer_search(user: User, query: str) -> QuerySet[Customer]:
    """Accounts in scope whose name, account number or phone matches ``query``."""
    customers = customers_visible_to(user)
    query = (query or "").strip()
    if not query:
        return customers
    digits = "".join(ch for ch in query if ch.isdigit())
    condition = (
        Q(first_name__icontains=query)
        | Q(last_name__icontains=query)
        | Q(account_number__icontains=query)
    )
    if len(digits) >= 4:
        condition |= Q(phone__contains=digits.lstrip("0")) | Q(
            alt_phone__contains=digits.lstrip("0")
        )
    return customers.filter(condition)


def requests_visible_to(user: User) -> QuerySet[ServiceRequest]:
    """Service requests of the accounts a person may see."""
    return ServiceRequest.objects.filter(customer__in=customers_visible_to(user)).select_related(
        "customer", "requested_package"
    )


def customer_for_user(user: User) -> Customer | None:
    """The account a signed-in customer owns, if any."""
    if not user.is_authenticated:
        return None
    return Customer.objects.filter(user=user).first()
