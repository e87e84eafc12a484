"""Deployment checks of our own (``manage.py check --deploy``)."""

from __future__ import annotations

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def security_settings(app_configs, **kwargs):
    found = []
    if not settings.MCOMS_REQUIRE_2FA:
        found.append(
            checks.Warning(
                "Two-factor sign-in is not required (MCOMS_REQUIRE_2FA is off): admins and "
                "billing officers can sign in with a password alone.",
                id="mcoms.security.W001",
            )
        )
    backend = settings.CACHES["default"]["BACKEND"]
    if backend.endswith(("locmem.LocMemCache", "dummy.DummyCache")):
        found.append(
            checks.Warning(
                "The cache is not shared between processes: each web worker counts the API "
                "throttles by itself. Set CACHE_URL (Redis).",
                id="mcoms.security.W002",
            )
        )
    if not settings.SECURITY_CONTENT_SECURITY_POLICY:
        found.append(
            checks.Warning("No Content-Security-Policy is sent.", id="mcoms.security.W003")
        )
    return found
