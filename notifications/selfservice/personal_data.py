"""Self-service's public face for personal data: USSD sessions, inbound SMS, portal
sign-ins and the PIN of one customer, for an archive or to erase. See docs/personal-data.md."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction

from customers.models import Customer
from mcoms.core import privacy
from notifications.selfservice.models import (
    CustomerPin,
    InboundSms,
    Interest,
    PortalCode,
    PortalSignIn,
    UssdSession,
)


def customer_data(customer: Customer, *, phones: Sequence[str]) -> dict[str, list[dict]]:
    """Sessions and texts from the customer's numbers, their portal sign-ins and PIN dates
    (never the PIN's hash)."""
    phones = list(phones)
    return {
        "ussd_sessions": privacy.rows(UssdSession.objects.filter(phone__in=phones)),
        "sms_received": privacy.rows(InboundSms.objects.filter(sender__in=phones)),
        "portal_sign_ins": privacy.rows(PortalSignIn.objects.filter(customer=customer)),
        "ussd_pin": privacy.rows(
            CustomerPin.objects.filter(customer=customer), exclude=("pin_hash",)
        ),
        "connection_interest": privacy.rows(Interest.objects.filter(phone__in=phones)),
    }


@transaction.atomic
def anonymise_customer(
    *, customer: Customer, own_phones: Sequence[str], strings: Sequence[str], label: str
) -> None:
    """Drop the PIN and sign-in codes; keep sessions, texts and sign-ins as bare dated
    events without the number, the text or what the session remembered.

    ``own_phones`` are the customer's numbers no other account still uses.
    """
    phones = list(own_phones)
    CustomerPin.objects.filter(customer=customer).delete()
    PortalCode.objects.filter(phone__in=phones).delete()
    PortalSignIn.objects.filter(customer=customer).update(phone="")
    UssdSession.objects.filter(phone__in=phones).update(phone="", memo={})
    InboundSms.objects.filter(sender__in=phones).update(sender="", text=privacy.REMOVED)
    Interest.objects.filter(phone__in=phones).update(phone="", name=label[:60], place="")
    privacy.scrub(Interest.objects.all(), ["name"], strings, label)
