"""The client's address, as the per-address limits count it."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """The address of whoever sent ``request``.

    Behind ``MCOMS_PROXY_COUNT`` proxies that each append to ``X-Forwarded-For``, the
    client is that many entries from the right (entries further left are whatever
    the client chose to send, so they are never trusted). Without proxies, the
    socket's address.
    """
    hops = settings.MCOMS_PROXY_COUNT
    if hops > 0:
        forwarded = [
            part.strip()
            for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return request.META.get("REMOTE_ADDR", "") or "unknown"
