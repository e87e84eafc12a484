"""Paying by mobile money from the USSD menu: a request-to-pay to the caller's phone.

The payment itself — the provider, its callback, the ledger posting and the
receipt — belongs to ``billing.payments``; the menu only starts it, and only
after the session has closed: the provider's approval prompt is itself a USSD
screen, which the phone cannot show while our session is open. So the menu
queues :func:`start` as a task once its reply is written; if the provider
refuses, the customer is told by SMS.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from billing.payments.services import request_to_pay
from customers.models import Customer
from mcoms.core import outbox
from notifications.selfservice import account, messages

log = logging.getLogger(__name__)


def queue(customer: Customer, amount: Decimal, phone: str) -> None:
    """Start the request-to-pay in the background once the current transaction commits."""
    from notifications.selfservice.tasks import start_payment

    # At most once (a second prompt would ask the customer twice): lost if the broker is down.
    outbox.publish(start_payment, (customer.pk, str(amount), phone))


def start(customer: Customer, amount: Decimal, phone: str) -> bool:
    """Ask the mobile-money provider of ``phone`` to collect ``amount`` for the customer.

    Returns whether the provider took the request; if not, the customer gets an SMS.
    """
    failed = None
    try:
        request = request_to_pay(
            customer=customer, amount=amount, phone=phone, provider=None, channel="ussd"
        )
        if request.status == "failed":
            failed = request.detail
    except Exception as exc:  # a refused number, an unknown network, a provider fault
        log.warning("request-to-pay for customer %s failed: %s", customer.pk, exc)
        failed = str(exc)
    if failed is None:
        return True
    messages.send(
        customer,
        messages.PAYMENT_FAILED,
        {
            "name": customer.first_name,
            "currency": customer.site.currency,
            "amount": account.money(amount, customer.site.currency),
        },
        to=phone,
    )
    return False
