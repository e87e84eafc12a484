"""The second factor's gate, and the headers that Django's own middleware does not set."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

from mcoms.security import twofactor


class TwoFactorMiddleware:
    """No page for a session that a password alone opened.

    * A person with an authenticator whose session was not verified by it (signed
      in some other way, or before an admin reset it) is signed out and sent to
      the sign-in page.
    * With ``MCOMS_REQUIRE_2FA``, an admin, billing officer or superuser without one
      reaches only the enrolment page (and sign-out) until they have enrolled.

    API requests get a JSON 401/403 instead of a redirect.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated and twofactor.may_enrol(user):
            device = twofactor.device_of(user)
            if device is not None:
                if request.session.get(twofactor.SESSION_VERIFIED) != device.pk:
                    logout(request)
                    return self._refuse(request, 401, "login", "Sign in with your second factor.")
            elif (
                settings.MCOMS_REQUIRE_2FA
                and twofactor.needs_two_factor(user)
                and request.path not in self._open_paths()
            ):
                return self._refuse(
                    request, 403, "two-factor-setup", "Set up two-factor sign-in first."
                )
        return self.get_response(request)

    @staticmethod
    def _open_paths() -> set[str]:
        return {reverse("two-factor-setup"), reverse("logout")}

    @staticmethod
    def _refuse(request: HttpRequest, status: int, to: str, detail: str) -> HttpResponse:
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": detail}, status=status)
        url = reverse(to)
        if request.method == "GET":
            url += "?" + urlencode({"next": request.get_full_path()})
        return redirect(url)


class SecurityHeadersMiddleware:
    """Content-Security-Policy and Permissions-Policy on every answer (settings of the same
    names, SECURITY_…); a view that sets its own keeps it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.csp = settings.SECURITY_CONTENT_SECURITY_POLICY
        self.permissions = settings.SECURITY_PERMISSIONS_POLICY

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if self.csp:
            response.headers.setdefault("Content-Security-Policy", self.csp)
        if self.permissions:
            response.headers.setdefault("Permissions-Policy", self.permissions)
        return response
