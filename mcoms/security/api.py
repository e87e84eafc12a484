"""HTTP Basic auth on the API under the staff sign-in limits, and the 429 in the schema."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.authentication import BasicScheme
from rest_framework import exceptions
from rest_framework.authentication import BasicAuthentication

from mcoms.security import signin, twofactor
from mcoms.security.addresses import client_address


class LimitedBasicAuthentication(BasicAuthentication):
    """DRF's Basic auth, counted by the same lockout as the sign-in page.

    A locked username or address is refused before the password is checked; a
    wrong password counts. Basic auth carries no second factor, so it is refused
    for whoever has an authenticator, and — with ``MCOMS_REQUIRE_2FA`` — for every
    admin, billing officer and superuser: they use the API from a signed-in browser
    session (the API docs page), which passed the second step.
    """

    def authenticate_credentials(self, userid, password, request=None):
        address = client_address(request) if request is not None else "unknown"
        refused = signin.refusal(userid, address)
        if refused:
            raise exceptions.AuthenticationFailed(refused)
        try:
            user, auth = super().authenticate_credentials(userid, password, request)
        except exceptions.AuthenticationFailed:
            locked = signin.failed(userid, address)
            if locked:
                raise exceptions.AuthenticationFailed(locked) from None
            raise
        if twofactor.device_of(user) is not None or (
            settings.MCOMS_REQUIRE_2FA and twofactor.needs_two_factor(user)
        ):
            raise exceptions.AuthenticationFailed(
                "This account signs in with a second factor: HTTP Basic auth is refused. "
                "Use the API from a signed-in session."
            )
        signin.succeeded(userid)
        return user, auth


class LimitedBasicScheme(BasicScheme):
    """Describes it in the OpenAPI schema as plain HTTP Basic auth."""

    target_class = "mcoms.security.api.LimitedBasicAuthentication"


TOO_MANY = {
    "description": "Too many requests: wait the number of seconds in Retry-After.",
    "headers": {
        "Retry-After": {
            "description": "Seconds to wait before trying again.",
            "schema": {"type": "integer"},
        }
    },
}
_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def document_throttling(result, generator, request, public):
    """drf-spectacular hook: every operation may answer 429 (the API's throttles)."""
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method in _METHODS:
                operation.setdefault("responses", {}).setdefault("429", TOO_MANY)
    return result
