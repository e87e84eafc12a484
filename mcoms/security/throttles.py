"""REST API throttles (DRF): per person, per edge gateway, per address when anonymous.

Rates are the settings ``API_THROTTLE_USER``, ``API_THROTTLE_GATEWAY`` and
``API_THROTTLE_ANON``, read on every request; counts live in the shared cache
(Redis in production), so all workers count together. Over the rate: 429 with
``Retry-After`` (the edge agent waits at least that long). Each class keys only
the requests it is about, so exactly one applies to any request. Time comes from
:mod:`mcoms.core.clock`.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from mcoms.core import clock
from mcoms.security.addresses import client_address


def _gateway(request):
    # The edge API puts the gateway in request.user (metering.edge_api.GatewayUser).
    return getattr(request.user, "gateway", None)


class _Throttle(SimpleRateThrottle):
    setting = ""

    def timer(self) -> float:
        return clock.now().timestamp()

    def get_rate(self) -> str:
        return getattr(settings, self.setting)


class PersonThrottle(_Throttle):
    scope = "user"
    setting = "API_THROTTLE_USER"

    def get_cache_key(self, request, view):
        user = request.user
        if not user or not user.is_authenticated or _gateway(request) is not None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": user.pk}


class GatewayThrottle(_Throttle):
    scope = "gateway"
    setting = "API_THROTTLE_GATEWAY"

    def get_cache_key(self, request, view):
        gateway = _gateway(request)
        if gateway is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": gateway.pk}


class AnonymousThrottle(_Throttle):
    scope = "anon"
    setting = "API_THROTTLE_ANON"

    def get_cache_key(self, request, view):
        if request.user and request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": client_address(request)}
