"""Twilio SMS through the ``twilio`` SDK.

The SDK builds ``https://api.twilio.com/...`` URLs itself; it takes an HTTP
client of our choosing, and ours swaps that origin for ``TWILIO_BASE_URL`` so a
test's fake server (or a proxy) can stand in for Twilio. Everything else —
authentication, the request's fields, error parsing — is the SDK's.

When ``NOTIFICATIONS_PUBLIC_URL`` is set, each message asks Twilio to POST its
status changes to our delivery-report endpoint (see
:mod:`notifications.delivery_reports`).

Failures: 5xx answers, rate limiting (429) and a Twilio that cannot be reached
(connection refused, a time-out while connecting) are retried; bad numbers
(21211, 21614 …) and other 4xx answers are not; an authentication failure is not
retried and is logged as an error. A request that may have reached Twilio — no
answer in time, the connection dropped after the request went out — is not sent
again (Twilio's Messages resource has no idempotency key): it is raised with
``maybe_sent`` and the message's outcome stays unknown until Twilio's status
callback, whose URL names our message (``?message=<id>``), or a person settles it.
"""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation

import requests
from django.conf import settings
from django.urls import reverse
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from urllib3.exceptions import NewConnectionError

from notifications.backends import DeliveryError
from notifications.models import Message

log = logging.getLogger(__name__)

TWILIO_ORIGIN = "https://api.twilio.com"
AUTH_ERROR_CODES = {20003, 20005}
BAD_NUMBER_CODES = {21211, 21214, 21408, 21610, 21612, 21614}


class BaseURLHttpClient(TwilioHttpClient):
    """The SDK's HTTP client, sending what it would send to api.twilio.com to ``base_url``."""

    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.base_url = base_url.rstrip("/")

    def request(self, method, url, *args, **kwargs):
        """Forward the SDK's request with the origin replaced."""
        if url.startswith(TWILIO_ORIGIN) and self.base_url != TWILIO_ORIGIN:
            url = self.base_url + url[len(TWILIO_ORIGIN) :]
        return super().request(method, url, *args, **kwargs)


def parse_price(price: str | None, unit: str | None) -> tuple[Decimal | None, str]:
    """Twilio's ``price`` (negative: a charge, e.g. ``"-0.00750"``) as a positive cost."""
    if price in (None, ""):
        return None, ""
    try:
        return abs(Decimal(str(price))), (unit or "").upper()[:3]
    except InvalidOperation:
        return None, ""


def status_callback_url(message_id: int | None = None) -> str | None:
    """The public URL Twilio should POST status changes to, when this site has one.

    With ``message_id`` the URL names our message, so a callback settles it even when
    Twilio's answer to the send (with the message's sid) never reached us.
    """
    public = settings.NOTIFICATIONS_PUBLIC_URL.rstrip("/")
    if not public:
        return None
    secret = settings.NOTIFICATIONS_CALLBACK_SECRET
    if secret:
        path = reverse("notifications:dlr-twilio-secret", kwargs={"secret": secret})
    else:
        path = reverse("notifications:dlr-twilio")
    return public + path + (f"?message={message_id}" if message_id else "")


def _never_sent(exc: requests.RequestException) -> bool:
    """Whether the request surely did not reach Twilio (refused, or no connection made)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError):
        reason = exc.args[0] if exc.args else None
        reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps it
        return isinstance(reason, NewConnectionError)
    return False


class TwilioSMSBackend:
    """Sends SMS through Twilio; returns the message's ``sid``."""

    def __init__(self) -> None:
        self.account_sid = settings.TWILIO_ACCOUNT_SID
        self.auth_token = settings.TWILIO_AUTH_TOKEN
        self.from_number = settings.TWILIO_FROM_NUMBER
        self.http_client = BaseURLHttpClient(
            settings.TWILIO_BASE_URL, timeout=settings.SMS_PROVIDER_TIMEOUT
        )

    def send(self, message: Message) -> str:
        """Hand ``message`` to Twilio; record its status and any price on the message."""
        if not (self.account_sid and self.auth_token and self.from_number):
            log.error("Twilio is not configured: set TWILIO_ACCOUNT_SID, _AUTH_TOKEN, _FROM_NUMBER")
            raise DeliveryError("Twilio: not configured", retry=False)
        client = Client(self.account_sid, self.auth_token, http_client=self.http_client)
        options = {"to": message.to, "from_": self.from_number, "body": message.body}
        callback = status_callback_url(message.pk)
        if callback:
            options["status_callback"] = callback
        try:
            sent = client.messages.create(**options)
        except TwilioRestException as exc:
            raise self._error(exc) from exc
        except requests.RequestException as exc:
            if _never_sent(exc):
                raise DeliveryError(f"Twilio: unreachable ({exc})", retry=True) from exc
            raise DeliveryError(
                f"Twilio: no answer or connection lost after sending ({exc.__class__.__name__})",
                maybe_sent=True,
            ) from exc
        except TwilioException as exc:
            raise DeliveryError(f"Twilio: {exc}", retry=True) from exc
        message.provider_status = (sent.status or "")[:40]
        message.cost, message.currency = parse_price(sent.price, sent.price_unit)
        return sent.sid

    def _error(self, exc: TwilioRestException) -> DeliveryError:
        reason = f"Twilio: {exc.msg} (HTTP {exc.status}, code {exc.code})"
        if exc.status == 401 or exc.code in AUTH_ERROR_CODES:
            log.error(
                "Twilio refused our credentials for account %s: check TWILIO_ACCOUNT_SID and "
                "TWILIO_AUTH_TOKEN (%s)",
                self.account_sid,
                exc.msg,
            )
            return DeliveryError(reason, retry=False)
        if exc.status == 429 or exc.status >= 500:
            return DeliveryError(reason, retry=True)
        return DeliveryError(reason, retry=False)
