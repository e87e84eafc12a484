"""Anonymising a closed account: each app erases its own part, in one transaction.

The person's names, numbers, address, photos, message texts and login go; the account,
its invoices, payments, ledger entries, readings and usage stay, linked to an account
now called "Anonymised customer #<id>", so the books still balance.
"""

from __future__ import annotations

from django.db import transaction

from billing import personal_data as billing_data
from customers import personal_data as customer_data
from customers.models import Customer
from fieldops import personal_data as field_data
from metering import personal_data as meter_data
from notifications import personal_data as message_data
from notifications.selfservice import personal_data as selfservice_data


@transaction.atomic
def anonymise(*, customer: Customer) -> Customer:
    """Erase the personal data of a closed account across every app.

    Raises ValidationError (and changes nothing) unless the account is closed and not
    anonymised yet.
    """
    customer_data.check_anonymisable(customer)
    who = customer_data.identity(customer)
    label = customer_data.anonymous_label(customer)
    message_data.forget_recipient(addresses=who.addresses, about=who.about, label=label)
    selfservice_data.anonymise_customer(
        customer=customer, own_phones=who.own_phones, strings=who.everywhere, label=label
    )
    field_data.anonymise_customer(customer=customer, strings=who.erasable, label=label)
    billing_data.anonymise_customer(customer=customer, strings=who.erasable, label=label)
    meter_data.anonymise_customer(customer=customer, strings=who.erasable, label=label)
    return customer_data.anonymise_customer(customer=customer, who=who)
