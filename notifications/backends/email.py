"""Email through Django's configured mail backend."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail

from notifications.backends import DeliveryError
from notifications.models import Message


class DjangoEmailBackend:
    def send(self, message: Message) -> str:
        try:
            send_mail(
                message.subject or "MCOMS", message.body, settings.DEFAULT_FROM_EMAIL, [message.to]
            )
        except OSError as exc:
            raise DeliveryError(f"mail server: {exc}") from exc
        return f"email-{message.pk}"
