"""Attribute every change made during a request to the signed-in person and channel."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from mcoms.core.audit import acting_as
from mcoms.core.models import AuditEvent

_PREFIX_CHANNELS = (
    ("/api/", AuditEvent.Channel.API),
    ("/admin/", AuditEvent.Channel.ADMIN),
    ("/field/", AuditEvent.Channel.AGENT_APP),
    ("/portal/", AuditEvent.Channel.PORTAL),
)


def channel_for(path: str) -> str:
    for prefix, channel in _PREFIX_CHANNELS:
        if path.startswith(prefix):
            return channel
    return AuditEvent.Channel.WEB


class AuditContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user if request.user.is_authenticated else None
        label = user.get_username() if user else "anonymous"
        with acting_as(user, label=label, channel=channel_for(request.path)):
            return self.get_response(request)
