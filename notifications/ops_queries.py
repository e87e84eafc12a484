"""Messaging's figures for operations monitoring (``mcoms.ops``), and the SMS credit check.

Imports only the messaging core (like it, no other app). ``africastalking_balance``
asks Africa's Talking for the account's credit: ``GET /version1/user?username=…``
with the ``apiKey`` header, answered ``{"UserData": {"balance": "KES 1785.50"}}``
(the public SDK's "application" call). Called by a periodic task only.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import httpx
from django.conf import settings
from django.db.models import Count, Min

from notifications.backends.africastalking import parse_cost
from notifications.models import Message


class BalanceError(Exception):
    """The provider's credit could not be read."""


def messages_by_status(since: dt.datetime) -> dict[str, int]:
    """Messages created since ``since`` by status (every status listed, zero included)."""
    counts = dict(
        Message.objects.filter(created_at__gte=since)
        .order_by()
        .values_list("status")
        .annotate(n=Count("pk"))
    )
    return {status: counts.get(status, 0) for status in Message.Status.values}


def oldest_waiting(now: dt.datetime) -> float:
    """Seconds the oldest message still queued (and due) has waited; 0 when none."""
    rows = Message.objects.filter(status=Message.Status.QUEUED).exclude(not_before__gt=now)
    oldest = rows.aggregate(oldest=Min("created_at"))["oldest"]
    return max(0.0, (now - oldest).total_seconds()) if oldest else 0.0


def sms_provider() -> str:
    """The default SMS provider's short name, from ``SMS_BACKEND``."""
    backend = settings.SMS_BACKEND.lower()
    for name in ("africastalking", "twilio", "console"):
        if name in backend:
            return name
    return backend.rsplit(".", 1)[-1]


def africastalking_balance() -> tuple[Decimal, str]:
    """The Africa's Talking account's credit as (amount, currency); raises BalanceError."""
    if not (settings.AFRICASTALKING_USERNAME and settings.AFRICASTALKING_API_KEY):
        raise BalanceError("Africa's Talking is not configured (no API key)")
    url = settings.AFRICASTALKING_BASE_URL.rstrip("/") + "/version1/user"
    try:
        response = httpx.get(
            url,
            params={"username": settings.AFRICASTALKING_USERNAME},
            headers={"apiKey": settings.AFRICASTALKING_API_KEY, "Accept": "application/json"},
            timeout=settings.SMS_PROVIDER_TIMEOUT,
        )
    except httpx.HTTPError as exc:
        raise BalanceError(f"Africa's Talking unreachable: {exc.__class__.__name__}") from exc
    if response.status_code != 200:
        raise BalanceError(f"Africa's Talking answered {response.status_code}")
    try:
        text = response.json()["UserData"]["balance"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BalanceError("Africa's Talking: no balance in the answer") from exc
    amount, currency = parse_cost(text)
    if amount is None:
        raise BalanceError(f"Africa's Talking: unreadable balance {str(text)[:40]!r}")
    return amount, currency
