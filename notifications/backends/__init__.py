"""Delivery backends: one small class per way of sending, chosen by a setting.

A backend takes a :class:`~notifications.models.Message` and returns the
provider's message id, or raises :class:`DeliveryError`. A backend may also
fill in what the provider said about the message (``cost``, ``currency``,
``provider_status``); the caller saves those with the result. SMS providers:
``console`` (development), ``africastalking`` and ``twilio``; a site can have
its own (:class:`~notifications.models.SiteSMSBackend`).
"""

from __future__ import annotations

from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from notifications.models import Channel, Message, SiteSMSBackend


class DeliveryError(Exception):
    """The backend could not hand the message over; ``retry`` says whether to try again.

    ``maybe_sent``: the request may have reached the provider (no answer in time, the
    connection dropped after the request went out), so sending again could deliver it
    twice: the message's outcome is unknown and it is not retried by itself.
    """

    def __init__(self, message: str, *, retry: bool = True, maybe_sent: bool = False) -> None:
        super().__init__(message)
        self.retry = retry and not maybe_sent
        self.maybe_sent = maybe_sent


class Backend(Protocol):
    def send(self, message: Message) -> str: ...


def backend_path_for(channel: str, site_id: int | None = None) -> str:
    """The dotted path of the backend for ``channel``: the site's own SMS provider
    when one is set for ``site_id``, else the setting."""
    if channel == Channel.EMAIL:
        return settings.EMAIL_MESSAGE_BACKEND
    if site_id is not None:
        override = (
            SiteSMSBackend.objects.filter(site_id=site_id).values_list("backend", flat=True).first()
        )
        if override:
            return override
    return settings.SMS_BACKEND


def backend_for(channel: str, site_id: int | None = None) -> Backend:
    """An instance of the backend that sends ``channel`` messages for ``site_id``."""
    return import_string(backend_path_for(channel, site_id))()
