"""The one interface every payment provider speaks, and what it answers.

A provider is asked three things: start a payment (:meth:`Provider.request_payment`),
say where a payment stands (:meth:`Provider.status`), and read a callback well enough
to find our request (:meth:`Provider.parse_callback`). A callback is never trusted for
the outcome: the status is always fetched again from the provider.

Errors: :class:`ProviderUnavailable` (timeout, 5xx, a garbled answer: try again later;
the request may or may not have reached the provider) and :class:`ProviderRefused`
(the provider said no: a bad number, a bad amount; do not retry).
"""

from __future__ import annotations

import abc
import logging
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import httpx
from django.conf import settings
from django.core.cache import cache

log = logging.getLogger("billing.payments")

PENDING = "pending"
SUCCESSFUL = "successful"
FAILED = "failed"
REVERSED = "reversed"
UNKNOWN = "unknown"  # the provider has no such request


class ProviderError(Exception):
    """Something went wrong talking to a provider."""


class ProviderUnavailable(ProviderError):
    """No usable answer (timeout, server error): the outcome is unknown, try later."""


class ProviderRefused(ProviderError):
    """The provider refused the request; retrying the same request will not help."""


@dataclass(frozen=True)
class Started:
    """What the provider answered to a new request."""

    provider_ref: str = ""  # their id for it, when they give one at once (Pesapal)
    redirect_url: str = ""  # where the customer goes to pay (card checkout)
    state: str = PENDING


@dataclass(frozen=True)
class Outcome:
    """Where a payment stands, as the provider reports it (fields it omits stay empty)."""

    state: str
    provider_txn_id: str = ""
    amount: Decimal | None = None
    currency: str = ""
    account: str = ""  # the reference we gave them, echoed back
    reason: str = ""
    raw: dict = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Callback:
    """What a callback says: enough to find our request, and any claims to cross-check."""

    reference: str = ""  # our reference, when the callback carries it
    provider_ref: str = ""  # their id, when that is all it carries
    amount: Decimal | None = None
    currency: str = ""
    account: str = ""


def callback_url(method: str) -> str:
    """The public URL a provider posts its callbacks to (with the secret segment if set)."""
    from django.urls import reverse

    secret = settings.PAYMENT_CALLBACK_SECRET
    path = (
        reverse("payments:callback-secret", args=[secret, method])
        if secret
        else reverse("payments:callback", args=[method])
    )
    return settings.PAYMENT_PUBLIC_URL.rstrip("/") + path


def money(value) -> Decimal | None:
    """A provider's amount (string or number) as a Decimal, or None when absent or garbled."""
    if value in (None, ""):
        return None
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() else None


class Provider(abc.ABC):
    """Base class: HTTP plumbing shared by the real providers; each implements the interface."""

    method = ""
    base_url_setting = ""

    def __init__(self, *, base_url: str | None = None, timeout: float | None = None) -> None:
        self.base_url = (base_url or getattr(settings, self.base_url_setting, "")).rstrip("/")
        self.timeout = timeout if timeout is not None else settings.PAYMENT_PROVIDER_TIMEOUT

    # --- the interface -------------------------------------------------------------------
    @abc.abstractmethod
    def request_payment(self, request) -> Started:
        """Ask the payer (``request.phone``) for ``request.amount + request.fee``."""

    @abc.abstractmethod
    def status(self, request) -> Outcome:
        """Where ``request`` stands now, from the provider."""

    @abc.abstractmethod
    def parse_callback(self, body: bytes, query: dict) -> Callback:
        """Read a callback's body (and query string) into a :class:`Callback`."""

    # --- HTTP ------------------------------------------------------------------------------
    def _call(self, method: str, path: str, **kwargs) -> httpx.Response:
        url = f"{self.base_url}{path}"
        try:
            response = httpx.request(method, url, timeout=self.timeout, **kwargs)
        except httpx.TimeoutException as exc:
            raise ProviderUnavailable(f"{self.method}: no answer within {self.timeout}s") from exc
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"{self.method}: {exc.__class__.__name__}: {exc}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise ProviderUnavailable(f"{self.method}: HTTP {response.status_code}")
        return response

    @staticmethod
    def _json(response: httpx.Response) -> dict:
        try:
            data = response.json()
        except ValueError as exc:
            raise ProviderUnavailable(f"not JSON (HTTP {response.status_code})") from exc
        if not isinstance(data, dict):
            raise ProviderUnavailable(f"unexpected answer (HTTP {response.status_code})")
        return data

    def _cached_token(self, fetch) -> str:
        """A bearer token, reused until shortly before it expires."""
        key = f"payments:token:{self.method}:{self.base_url}"
        token = cache.get(key)
        if token:
            return token
        token, lifetime = fetch()
        cache.set(key, token, max(int(lifetime) - 60, 30))
        return token

    def _forget_token(self) -> None:
        cache.delete(f"payments:token:{self.method}:{self.base_url}")
