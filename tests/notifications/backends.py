"""Delivery backends for tests: one that always fails, and one that fails for good."""

from __future__ import annotations

from notifications.backends import DeliveryError


class FlakyBackend:
    """Refuses every message with a retryable error (a provider that is down)."""

    def send(self, message):
        raise DeliveryError("provider down", retry=True)


class RejectingBackend:
    """Refuses every message for good (an invalid number, say)."""

    def send(self, message):
        raise DeliveryError("invalid recipient", retry=False)
