"""Delivery backends: one small class per way of sending, chosen by a setting.

A backend takes a :class:`~notifications.models.Message` and returns the
provider's message id, or raises :class:`DeliveryError`. Real SMS providers
(Africa's Talking, Twilio) slot in here as further modules.
"""

from __future__ import annotations

from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from notifications.models import Channel, Message


class DeliveryError(Exception):
    """The backend could not hand the message over; ``retry`` says whether to try again."""

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


class Backend(Protocol):
    def send(self, message: Message) -> str: ...


def backend_path_for(channel: str) -> str:
    """The dotted path of the backend configured for ``channel``."""
    if channel == Channel.EMAIL:
        return settings.EMAIL_MESSAGE_BACKEND
    return settings.SMS_BACKEND


def backend_for(channel: str) -> Backend:
    return import_string(backend_path_for(channel))()
