"""Signing in as a person with a second factor, the way a browser does (no shortcut).

``client.force_login`` gives a session that a password alone could have made: the
two-factor middleware signs such a session out. Tests of pages that need a
verified session use :func:`enrol` and :func:`sign_in_with_code`.
"""

from __future__ import annotations

import datetime as dt

import pyotp
from django.test import Client
from django.urls import reverse

from mcoms.core import clock
from mcoms.security import twofactor
from mcoms.security.models import TOTPDevice
from tests.conftest import PASSWORD


def code_for(device: TOTPDevice, at: dt.datetime | None = None) -> str:
    """What the person's authenticator app shows at ``at`` (now by default)."""
    return pyotp.TOTP(device.key).at(clock.resolve(at))


def enrol(user) -> tuple[TOTPDevice, list[str]]:
    """Enrol an authenticator for ``user`` as the enrolment page does; returns it and the
    recovery codes."""
    device = twofactor.start_enrolment(user)
    codes = twofactor.confirm(device, code_for(device))
    device.refresh_from_db()
    return device, codes


def sign_in_with_code(
    client: Client, user, *, password: str = PASSWORD, code: str | None = None
) -> Client:
    """The password, then the code (the app's current one unless given)."""
    response = client.post(reverse("login"), {"username": user.username, "password": password})
    assert response.status_code == 302, response.content.decode()[:500]
    assert response["Location"] == reverse("two-factor-sign-in")
    device = TOTPDevice.objects.get(user=user)
    if code is None:
        # A step later than any code used so far (each step's code works once).
        at = max(clock.now(), dt.datetime.fromtimestamp((device.last_step + 1) * 30, dt.UTC))
        code = code_for(device, at)
    response = client.post(reverse("two-factor-sign-in"), {"code": code})
    assert response.status_code == 302, response.content.decode()[:500]
    return client
