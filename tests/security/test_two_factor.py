"""Two-factor sign-in (TOTP) for admins, billing officers and superusers."""

from __future__ import annotations

import base64
import datetime as dt

import pyotp
import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from mcoms.core.models import AuditEvent
from mcoms.security import twofactor
from mcoms.security.models import RecoveryCode, TOTPDevice
from tests.conftest import PASSWORD
from tests.security.helpers import code_for, enrol, sign_in_with_code

LOGIN = reverse("login")
STEP2 = reverse("two-factor-sign-in")
SETUP = reverse("two-factor-setup")
DASHBOARD = reverse("dashboard:home")


def password_step(client: Client, username: str, password: str = PASSWORD):
    return client.post(LOGIN, {"username": username, "password": password})


def test_the_password_alone_opens_no_page(org, now):
    enrol(org.admin)
    client = Client()
    response = password_step(client, "admin")
    assert response.status_code == 302 and response["Location"] == STEP2
    for path in (DASHBOARD, "/admin/", reverse("customer-list")):
        assert client.get(path).status_code in (302, 401, 403), path
    assert "_auth_user_id" not in client.session


def test_the_code_completes_the_sign_in_and_works_once(org, now):
    device, _ = enrol(org.admin)
    now.advance(seconds=30)
    code = code_for(device)
    client = Client()
    password_step(client, "admin")
    response = client.post(STEP2, {"code": code})
    assert response.status_code == 302
    assert client.get(DASHBOARD).status_code == 200
    assert client.get("/admin/").status_code == 200  # the Django admin too

    replay = Client()
    password_step(replay, "admin")
    refused = replay.post(STEP2, {"code": code})
    assert refused.status_code == 400 and "That code is not right." in refused.content.decode()
    assert replay.get(DASHBOARD).status_code == 302


def test_a_code_from_the_step_before_or_after_is_accepted_but_not_older(org, now):
    device, _ = enrol(org.admin)
    now.advance(minutes=5)
    client = Client()
    password_step(client, "admin")
    stale = code_for(device, now.at - dt.timedelta(minutes=2))
    assert client.post(STEP2, {"code": stale}).status_code == 400
    drifted = code_for(device, now.at + dt.timedelta(seconds=30))
    assert client.post(STEP2, {"code": drifted}).status_code == 302


def test_wrong_codes_lock_the_username(org, now):
    enrol(org.admin)
    client = Client()
    password_step(client, "admin")
    for _ in range(4):
        assert client.post(STEP2, {"code": "000000"}).status_code == 400
    locked = client.post(STEP2, {"code": "000000"})
    assert "Too many attempts: try again at 11:15." in locked.content.decode()
    # Starting again with the password does not give fresh tries.
    again = password_step(Client(), "admin")
    assert "Too many attempts" in again.content.decode()


def test_a_recovery_code_works_once_and_is_audited(org, now):
    _, codes = enrol(org.admin)
    assert len(codes) == twofactor.RECOVERY_CODES
    assert not RecoveryCode.objects.filter(code_hash__in=codes).exists()  # only hashes kept
    client = Client()
    password_step(client, "admin")
    response = client.post(STEP2, {"code": codes[0].upper()})
    assert response.status_code == 302
    assert client.get(DASHBOARD).status_code == 200
    used = AuditEvent.objects.filter(note__startswith="signed in with a two-factor recovery")
    assert used.get().actor == org.admin

    again = Client()
    password_step(again, "admin")
    assert again.post(STEP2, {"code": codes[0]}).status_code == 400


def test_a_forced_session_of_an_enrolled_person_is_signed_out(org, client_for, now):
    enrol(org.billing)
    client = client_for(org.billing)  # as if a password alone had made the session
    response = client.get(DASHBOARD)
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)
    assert "_auth_user_id" not in client.session
    api = client_for(org.billing).get(reverse("customer-list"))
    assert api.status_code == 401


def test_required_2fa_sends_admins_to_enrolment_before_any_page(org, client_for, settings, now):
    settings.MCOMS_REQUIRE_2FA = True
    client = client_for(org.admin)
    for path in (DASHBOARD, "/admin/", reverse("payments:list")):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith(SETUP), path
    # Roles that need no second factor are not stopped.
    assert client_for(org.regional).get(DASHBOARD).status_code == 200

    page = client.get(SETUP)
    assert page.status_code == 200
    html = page.content.decode()
    assert "<svg" in html and "Scan with your authenticator app" in html
    device = TOTPDevice.objects.get(user=org.admin)
    assert twofactor.key_text(device) in html
    assert device.confirmed_at is None
    assert client.post(SETUP, {"code": "123456"}).status_code == 400

    done = client.post(SETUP, {"code": pyotp.TOTP(device.key).at(now.at)})
    assert done.status_code == 200
    assert done.content.decode().count("<li><code>") == twofactor.RECOVERY_CODES
    assert client.get(DASHBOARD).status_code == 200
    enrolled = AuditEvent.objects.get(object_type="security.totpdevice")
    assert enrolled.action == AuditEvent.Action.CREATE and enrolled.actor == org.admin


def test_billing_officers_and_superusers_need_it_too(org, client_for, settings, django_user_model):
    settings.MCOMS_REQUIRE_2FA = True
    root = django_user_model.objects.create_superuser("root", "root@example.org", PASSWORD)
    for user in (org.billing, root):
        assert client_for(user).get("/admin/").status_code == 302
        assert twofactor.must_enrol(user)
    assert not twofactor.must_enrol(org.site_manager)


def test_an_admin_resets_a_lost_authenticator_and_it_is_audited(org, now, settings):
    settings.MCOMS_REQUIRE_2FA = True
    enrol(org.admin)
    enrol(org.billing)
    admin = sign_in_with_code(Client(), org.admin)
    device = TOTPDevice.objects.get(user=org.billing)
    response = admin.post(
        reverse("admin:security_totpdevice_changelist"),
        {"action": "reset", "_selected_action": [device.pk]},
    )
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=org.billing).exists()
    assert not RecoveryCode.objects.filter(user=org.billing).exists()
    event = AuditEvent.objects.get(object_type="security.totpdevice", action="delete")
    assert event.actor == org.admin and "reset by admin" in event.note
    # The billing officer signs in with the password and is sent to enrol again.
    client = Client()
    assert password_step(client, "billing").status_code == 302
    assert client.get(DASHBOARD)["Location"].startswith(SETUP)


def test_the_reset_command_for_a_lone_admin(org, now):
    enrol(org.admin)
    call_command("reset_two_factor", "admin")
    assert twofactor.device_of(org.admin) is None
    event = AuditEvent.objects.get(object_type="security.totpdevice", action="delete")
    assert event.channel == AuditEvent.Channel.COMMAND


def basic(username: str) -> dict:
    token = base64.b64encode(f"{username}:{PASSWORD}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}


@pytest.mark.parametrize("required", [True, False])
def test_basic_auth_cannot_skip_the_second_factor(org, settings, now, required):
    settings.MCOMS_REQUIRE_2FA = required
    url = reverse("customer-list")
    admin_answer = Client().get(url, **basic("admin"))
    if required:
        assert admin_answer.status_code in (401, 403)
        assert "second factor" in admin_answer.json()["detail"]
    else:
        assert admin_answer.status_code == 200
    enrol(org.admin)
    refused = Client().get(url, **basic("admin"))
    assert refused.status_code in (401, 403) and "second factor" in refused.json()["detail"]
    # Roles without a second factor keep Basic auth.
    assert Client().get(url, **basic("site_manager")).status_code == 200


def test_new_recovery_codes_need_a_code_and_replace_the_old(org, now):
    _, old = enrol(org.admin)
    client = sign_in_with_code(Client(), org.admin)
    page = client.get(SETUP)
    assert "Recovery codes left: 10." in page.content.decode()
    device = TOTPDevice.objects.get(user=org.admin)
    assert client.post(SETUP, {"code": old[0]}).status_code == 200  # not accepted here
    assert RecoveryCode.objects.filter(user=org.admin).count() == 10
    now.advance(seconds=60)
    fresh = client.post(SETUP, {"code": code_for(device)})
    assert fresh.content.decode().count("<li><code>") == 10
    assert twofactor.verify(org.admin, old[1]) is None
