"""Self-service's Celery tasks: thin wrappers around its modules."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from celery import shared_task

from customers.models import Customer
from mcoms.core import clock
from notifications.selfservice import payments, portal_auth
from notifications.selfservice.models import UssdSession

SESSIONS_KEPT = dt.timedelta(days=2)


@shared_task(acks_late=True, ignore_result=True)
def start_payment(customer_id: int, amount: str, phone: str) -> bool:
    """Start a request-to-pay asked for in a USSD session that has closed."""
    customer = Customer.objects.select_related("site").get(pk=customer_id)
    return payments.start(customer, Decimal(amount), phone)


@shared_task(ignore_result=True)
def purge_sessions() -> int:
    """Forget USSD sessions older than ``SESSIONS_KEPT`` (they last minutes) and old portal
    sign-in codes (they live ten minutes); returns how many of both."""
    now = clock.now()
    deleted, _ = UssdSession.objects.filter(updated_at__lt=now - SESSIONS_KEPT).delete()
    return deleted + portal_auth.purge_codes(now=now)
