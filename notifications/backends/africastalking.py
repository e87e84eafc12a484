"""Africa's Talking SMS, through a thin HTTP client of our own.

The product's chosen part is the ``africastalking`` SDK, but the SDK fixes its
API host in code (``api.africastalking.com``, or the sandbox host when the
username is ``sandbox``), so neither a test's fake server nor a regional
endpoint can stand in for it without reaching into its internals. Sending is
one form POST, so this module speaks it with ``httpx`` and keeps the base URL a
setting (``AFRICASTALKING_BASE_URL``):

``POST /version1/messaging`` with header ``apiKey`` and fields ``username``,
``to``, ``message`` and (when a sender id is set) ``from``. The answer is
``{"SMSMessageData": {"Message": …, "Recipients": [{"statusCode", "number",
"status", "cost", "messageId"}]}}``.

Failures: 5xx answers, time-outs, rate limiting (429), a gateway error code
(500–502), insufficient balance (405) or a routing failure (407) are retried;
an invalid number, blacklisted user, risk hold or bad sender id is not (AT
refuses an unregistered sender id for the whole request, with no recipients);
an authentication failure is not retried and is logged as an error, since
every message will fail until someone fixes the key.

A request that never reached AT (connection refused, a time-out while
connecting) is retried. One that may have reached it — no answer within
``SMS_PROVIDER_TIMEOUT``, or the connection dropped after our request went out —
is not: AT has no idempotency key, so a resend could deliver the message twice.
It is raised with ``maybe_sent`` and the message's outcome is left unknown until
AT's delivery report (matched on the phone number) or a person settles it.
"""

from __future__ import annotations

import logging
import re
from decimal import Decimal, InvalidOperation

import httpx
from django.conf import settings

from notifications.backends import DeliveryError
from notifications.models import Message

log = logging.getLogger(__name__)

SUCCESS_CODES = {100, 101, 102}  # processed, sent, queued
RETRY_CODES = {405, 407, 500, 501, 502}  # insufficient balance, could not route, gateway errors
_COST = re.compile(r"^\s*([A-Za-z]{3})\s+(-?[0-9]+(?:\.[0-9]+)?)\s*$")


def parse_cost(text: str | None) -> tuple[Decimal | None, str]:
    """``"KES 0.8000"`` → ``(Decimal("0.8000"), "KES")``; anything else → ``(None, "")``."""
    match = _COST.match(text or "")
    if not match:
        return None, ""
    try:
        return Decimal(match.group(2)), match.group(1).upper()
    except InvalidOperation:  # pragma: no cover - the pattern only admits numbers
        return None, ""


class AfricasTalkingSMSBackend:
    """Sends SMS through Africa's Talking; returns AT's ``messageId``."""

    path = "/version1/messaging"

    def __init__(self) -> None:
        self.base_url = settings.AFRICASTALKING_BASE_URL.rstrip("/")
        self.username = settings.AFRICASTALKING_USERNAME
        self.api_key = settings.AFRICASTALKING_API_KEY
        self.sender_id = settings.AFRICASTALKING_SENDER_ID
        self.timeout = settings.SMS_PROVIDER_TIMEOUT

    def send(self, message: Message) -> str:
        """Hand ``message`` to Africa's Talking; record its cost and status on the message."""
        if not (self.username and self.api_key):
            log.error("Africa's Talking is not configured: AFRICASTALKING_API_KEY is empty")
            raise DeliveryError("Africa's Talking: no API key configured", retry=False)
        form = {"username": self.username, "to": message.to, "message": message.body}
        if self.sender_id:
            form["from"] = self.sender_id
        try:
            response = httpx.post(
                self.base_url + self.path,
                data=form,
                headers={"apiKey": self.api_key, "Accept": "application/json"},
                timeout=self.timeout,
            )
        except (
            httpx.ConnectError,
            httpx.ConnectTimeout,
            httpx.PoolTimeout,
            httpx.UnsupportedProtocol,
        ) as exc:
            # Nothing went out: safe to send again.
            raise DeliveryError(f"Africa's Talking: unreachable ({exc!r})", retry=True) from exc
        except httpx.TimeoutException as exc:
            raise DeliveryError(
                f"Africa's Talking: no answer in {self.timeout:g} s ({exc.__class__.__name__})",
                maybe_sent=True,
            ) from exc
        except httpx.TransportError as exc:
            # The request went out and the connection failed after it.
            raise DeliveryError(
                f"Africa's Talking: connection lost after sending ({exc!r})", maybe_sent=True
            ) from exc
        except httpx.HTTPError as exc:
            raise DeliveryError(f"Africa's Talking: {exc}", retry=True) from exc
        return self._handle(response, message)

    def _handle(self, response: httpx.Response, message: Message) -> str:
        status = response.status_code
        if status in (401, 403):
            log.error(
                "Africa's Talking refused our credentials (HTTP %s) for username %r: "
                "check AFRICASTALKING_USERNAME and AFRICASTALKING_API_KEY",
                status,
                self.username,
            )
            raise DeliveryError(f"Africa's Talking: authentication failed ({status})", retry=False)
        if status == 429:
            raise DeliveryError("Africa's Talking: rate limited (429)", retry=True)
        if status >= 500:
            raise DeliveryError(f"Africa's Talking: server error ({status})", retry=True)
        if status >= 400:
            raise DeliveryError(
                f"Africa's Talking: request refused ({status}): {response.text[:200]}", retry=False
            )
        try:
            data = response.json()["SMSMessageData"]
            recipients = data["Recipients"]
            if not recipients:
                # Refused as a whole (e.g. "InvalidSenderId"): a configuration problem.
                log.error("Africa's Talking refused the request: %s", data.get("Message"))
                raise DeliveryError(f"Africa's Talking: {data.get('Message')}", retry=False)
            recipient = recipients[0]
            code = int(recipient["statusCode"])
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise DeliveryError(
                f"Africa's Talking: unexpected answer: {response.text[:200]}", retry=True
            ) from exc
        message.provider_status = str(recipient.get("status", ""))[:40]
        if code not in SUCCESS_CODES:
            if code == 405:
                log.error("Africa's Talking: insufficient balance; messages wait for a top-up")
            raise DeliveryError(
                f"Africa's Talking: {recipient.get('status', 'refused')} ({code})",
                retry=code in RETRY_CODES,
            )
        message.cost, message.currency = parse_cost(recipient.get("cost"))
        return str(recipient["messageId"])
