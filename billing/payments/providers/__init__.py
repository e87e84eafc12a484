"""Payment providers behind one interface (:class:`~billing.payments.providers.base.Provider`).

:func:`get` returns the provider for a payment method: the real HTTP client when
``PAYMENT_BACKEND`` is ``live``, the local console provider otherwise (development).
:func:`network_for` tells MTN from Airtel by a Ugandan number's prefix.
"""

from __future__ import annotations

from django.conf import settings

from billing.payments.providers.airtel import AirtelMoney
from billing.payments.providers.base import (
    FAILED,
    PENDING,
    REVERSED,
    SUCCESSFUL,
    UNKNOWN,
    Callback,
    Outcome,
    Provider,
    ProviderError,
    ProviderRefused,
    ProviderUnavailable,
    Started,
)
from billing.payments.providers.console import ConsoleProvider
from billing.payments.providers.mtn import MtnMomo
from billing.payments.providers.pesapal import Pesapal

__all__ = [
    "FAILED",
    "PENDING",
    "REVERSED",
    "SUCCESSFUL",
    "UNKNOWN",
    "Callback",
    "ConsoleProvider",
    "Outcome",
    "Provider",
    "ProviderError",
    "ProviderRefused",
    "ProviderUnavailable",
    "Started",
    "get",
    "network_for",
]

LIVE = {"mtn": MtnMomo, "airtel": AirtelMoney, "pesapal": Pesapal}


def get(method: str) -> Provider:
    """The provider that handles ``method`` (``mtn``, ``airtel``, ``pesapal``)."""
    if method not in LIVE:
        raise ValueError(f"No payment provider for {method!r}.")
    if settings.PAYMENT_BACKEND == "live":
        return LIVE[method]()
    return ConsoleProvider(method)


def network_for(phone: str) -> str:
    """``mtn`` or ``airtel`` for a Ugandan number by its prefix; otherwise the default."""
    digits = (phone or "").lstrip("+")
    if digits.startswith("256"):
        national = digits[3:]
        if any(national.startswith(p) for p in settings.PAYMENT_AIRTEL_PREFIXES):
            return "airtel"
        if any(national.startswith(p) for p in settings.PAYMENT_MTN_PREFIXES):
            return "mtn"
    return settings.PAYMENT_DEFAULT_PROVIDER
