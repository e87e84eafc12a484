"""Staff sign-in: usernames and addresses locked after repeated failures, audited, unlockable."""

from __future__ import annotations

import base64

from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from mcoms.core.models import AuditEvent
from mcoms.security.models import Counter
from tests.conftest import PASSWORD

LOGIN = reverse("login")


def attempt(client: Client, username: str, password: str, **extra):
    return client.post(LOGIN, {"username": username, "password": password}, **extra)


def signed_in(client: Client) -> bool:
    return client.get(reverse("dashboard:home")).status_code == 200


def test_five_failures_lock_the_username_even_for_the_right_password(org, now, settings):
    client = Client()
    for _ in range(4):
        assert attempt(client, "regional", "wrong").status_code == 200
    page = attempt(client, "regional", "wrong").content.decode()
    assert "Too many attempts: try again at 11:15." in page  # 08:15 UTC, Kampala time
    refused = attempt(client, "regional", PASSWORD)
    assert refused.status_code == 200
    assert "Too many attempts: try again at 11:15." in refused.content.decode()
    assert not signed_in(client)
    # Another person on the same machine is not locked by it.
    assert attempt(Client(), "site_manager", PASSWORD).status_code == 302

    lock = AuditEvent.objects.get(object_type="security.counter")
    assert lock.action == AuditEvent.Action.TRANSITION
    assert "locked after 5 failed sign-ins" in lock.note
    assert lock.object_repr == "login-username regional"

    now.advance(minutes=15)
    assert attempt(client, "regional", PASSWORD).status_code == 302
    assert signed_in(client)


def test_a_username_is_locked_whatever_its_case_and_even_if_unknown(org, now):
    client = Client()
    for name in ["Regional", "REGIONAL", "regional ", "regional", "Regional"]:
        attempt(client, name, "wrong")
    assert "Too many attempts" in attempt(client, "regional", PASSWORD).content.decode()
    for _ in range(5):
        attempt(client, "nobody-here", "wrong")
    assert "Too many attempts" in attempt(client, "nobody-here", "x").content.decode()


def test_a_right_password_forgets_the_failures(org, now):
    client = Client()
    for _ in range(4):
        attempt(client, "regional", "wrong")
    assert attempt(client, "regional", PASSWORD).status_code == 302
    client.post(reverse("logout"))
    for _ in range(4):
        attempt(client, "regional", "wrong")
    assert attempt(client, "regional", PASSWORD).status_code == 302


def test_failures_outside_the_window_do_not_add_up(org, now):
    client = Client()
    for _ in range(4):
        attempt(client, "regional", "wrong")
    now.advance(minutes=16)
    for _ in range(4):
        attempt(client, "regional", "wrong")
    assert attempt(client, "regional", PASSWORD).status_code == 302


def test_one_address_trying_many_usernames_is_locked_out(org, now, settings):
    settings.LOGIN_FAILURES_PER_ADDRESS = 6
    client = Client(REMOTE_ADDR="203.0.113.9")
    for n in range(5):
        attempt(client, f"guess{n}", "wrong")
    assert "Too many attempts" in attempt(client, "guess9", "wrong").content.decode()
    # From that address even a real person with the right password waits...
    refused = attempt(client, "regional", PASSWORD)
    assert "Too many attempts: try again at 11:15." in refused.content.decode()
    # ...but not from another address.
    assert attempt(Client(REMOTE_ADDR="198.51.100.4"), "regional", PASSWORD).status_code == 302


def test_behind_a_proxy_the_forwarded_address_is_counted(org, now, settings):
    settings.LOGIN_FAILURES_PER_ADDRESS = 3
    settings.MCOMS_PROXY_COUNT = 1
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    for n in range(3):
        # Whatever the client puts first is ignored; the proxy appends the real address.
        attempt(Client(**proxy), f"guess{n}", "x", HTTP_X_FORWARDED_FOR=f"1.1.1.{n}, 203.0.113.9")
    locked = attempt(Client(**proxy), "regional", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert "Too many attempts" in locked.content.decode()
    other = attempt(Client(**proxy), "regional", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.4")
    assert other.status_code == 302


def test_an_admin_unlocks_in_the_admin_and_it_is_audited(org, now, client_for):
    for _ in range(5):
        attempt(Client(), "regional", "wrong")
    counter = Counter.objects.get(scope="login-username", key="regional")
    response = client_for(org.admin).post(
        reverse("admin:security_counter_changelist"),
        {"action": "unlock", "_selected_action": [counter.pk]},
    )
    assert response.status_code == 302
    assert not Counter.objects.filter(pk=counter.pk).exists()
    event = AuditEvent.objects.filter(object_type="security.counter").latest("id")
    assert event.note == "unlocked by admin in the admin"
    assert event.actor == org.admin
    assert attempt(Client(), "regional", PASSWORD).status_code == 302


def test_the_unlock_command_lifts_a_lock(org, now):
    for _ in range(5):
        attempt(Client(), "regional", "wrong")
    call_command("unlock_sign_in", "Regional")
    assert attempt(Client(), "regional", PASSWORD).status_code == 302
    event = AuditEvent.objects.filter(object_type="security.counter").latest("id")
    assert event.channel == AuditEvent.Channel.COMMAND


def test_the_admin_site_signs_in_through_the_same_page(org):
    response = Client().get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN}?next=/admin/"


def basic(username: str, password: str) -> dict:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}


def test_basic_auth_on_the_api_counts_towards_the_same_lock(org, now):
    url = reverse("customer-list")
    assert Client().get(url, **basic("regional", PASSWORD)).status_code == 200
    for _ in range(5):
        assert Client().get(url, **basic("regional", "wrong")).status_code in (401, 403)
    refused = Client().get(url, **basic("regional", PASSWORD))
    assert refused.status_code in (401, 403)
    assert "Too many attempts" in refused.json()["detail"]
    # The sign-in page is locked too: one count for both doors.
    assert "Too many attempts" in attempt(Client(), "regional", PASSWORD).content.decode()
