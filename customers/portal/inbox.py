"""The messages we sent a customer, as their portal lists them.

A message is the customer's when it went to one of their addresses (phone, second
phone, email) and is not about another account (families share phones: a message
about the neighbour's account on the same phone is the neighbour's). Sign-in codes
and one-time PINs are listed without their text: they are secrets even after use.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass

from django.db.models import Q, QuerySet

from customers.models import Customer
from customers.phones import display_phone
from notifications.models import Message

SHOWN = 100
SECRET_TEMPLATES = frozenset({"selfservice_portal_code", "selfservice_one_time_pin"})
ACCOUNT_PREFIX = "customers.customer:"


def messages_for(customer: Customer) -> QuerySet[Message]:
    """The customer's messages, newest first."""
    addresses = [a for a in (customer.phone, customer.alt_phone, customer.email) if a]
    mine = f"{ACCOUNT_PREFIX}{customer.pk}"
    return (
        Message.objects.filter(Q(to__in=addresses) | Q(about=mine))
        .exclude(Q(about__startswith=ACCOUNT_PREFIX) & ~Q(about=mine))
        .order_by("-created_at", "-id")
    )


@dataclass(frozen=True)
class Shown:
    at: object
    channel: str
    to: str
    text: str
    status: str
    status_code: str
    secret: bool


def shown(message: Message, zone: zoneinfo.ZoneInfo) -> Shown:
    """A message as listed: local time, text (hidden for secrets), status in words."""
    secret = message.template_key in SECRET_TEMPLATES
    text = "A sign-in code or PIN (not shown here)." if secret else message.body
    if message.subject and not secret:
        text = f"{message.subject}: {text}"
    return Shown(
        at=message.created_at.astimezone(zone),
        channel=message.get_channel_display(),
        to=display_phone(message.to) if message.to.startswith("+") else message.to,
        text=text,
        status=message.get_status_display(),
        status_code=message.status,
        secret=secret,
    )
