"""Development backend: writes each SMS to the log (and so to the console)."""

from __future__ import annotations

import logging

from notifications.models import Message

log = logging.getLogger("notifications.console")


class ConsoleSMSBackend:
    def send(self, message: Message) -> str:
        log.info("SMS to %s: %s", message.to, message.body)
        return f"console-{message.pk}"
