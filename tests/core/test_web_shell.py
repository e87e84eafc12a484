"""Sign-in, sign-out, password reset, navigation by role, our own htmx, the API docs."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.core import mail
from django.urls import reverse

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_sign_in_goes_to_each_roles_start_page(org, client):
    starts = {
        "admin": "/dashboard/",
        "site_manager": "/dashboard/",
        "agent": "/field/",
        "supervisor": "/field/",
        "customer": "/portal/",
    }
    for username, start in starts.items():
        client.logout()
        response = client.post(reverse("login"), {"username": username, "password": PASSWORD})
        assert response.status_code == 302
        landing = client.get(response["Location"])
        assert landing.status_code == 302 and landing["Location"] == start, username


def test_wrong_password_is_refused(org, client):
    response = client.post(reverse("login"), {"username": "agent", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert client.get(reverse("customers:list")).status_code == 302


def test_pages_need_sign_in(client):
    for url in ("/dashboard/", "/customers/", "/meters/", "/audit/", "/field/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    # Customers sign in with their phone, not a username.
    response = client.get("/portal/")
    assert response.status_code == 302
    assert response["Location"] == "/portal/sign-in/?next=/portal/"


def test_the_staff_sign_in_page_points_customers_to_their_own(client):
    page = client.get(reverse("login")).content.decode()
    assert f'href="{reverse("selfservice:portal-sign-in")}"' in page


def test_sign_out(org, client_for):
    client = client_for(org.agent)
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("fieldops:home")).status_code == 302


def test_password_reset_by_email(org, client):
    client.post(reverse("password_reset"), {"email": "agent@example.org"})
    assert len(mail.outbox) == 1
    link = re.search(r"https?://[^/]+(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200
    response = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "a-new-long-passphrase", "new_password2": "a-new-long-passphrase"},
    )
    assert response.status_code == 302
    assert client.login(username="agent", password="a-new-long-passphrase")


def nav_labels(client) -> list[str]:
    page = client.get("/", follow=True).content.decode()
    nav = re.search(r"<nav>(.*?)</nav>", page, re.S).group(1)
    return re.findall(r">([^<>]+)</a>", nav)


def test_navigation_by_role(org, client_for):
    from customers.models import Customer
    from tests import factories

    account = factories.customer(org.block_a)
    Customer.objects.filter(pk=account.pk).update(user=org.customer)
    assert nav_labels(client_for(org.admin)) == [
        "Dashboard",
        "Team",
        "Customers",
        "Requests",
        "Meters",
        "Gateways",
        "Alerts",
        "Plant",
        "Plant log",
        "Relay commands",
        "Field jobs",
        "Billing runs",
        "Payments",
        "Prepaid",
        "Arrears",
        "Ledger",
        "Tariffs",
        "Broadcasts",
        "Messages",
        "Audit",
        "Data access",
        "Operations",
        "Two-factor",
        "Admin",
    ]
    assert nav_labels(client_for(org.billing)) == [
        "Dashboard",
        "Customers",
        "Requests",
        "Meters",
        "Gateways",
        "Alerts",
        "Plant",
        "Billing runs",
        "Payments",
        "Prepaid",
        "Arrears",
        "Ledger",
        "Tariffs",
        "Broadcasts",
        "Messages",
        "Two-factor",
    ]
    assert nav_labels(client_for(org.agent)) == [
        "Dashboard",
        "Field app",
        "My tasks",
        "Customers",
        "Requests",
        "Meters",
        "Gateways",
        "Alerts",
        "Plant",
        "Plant log",
        "Field jobs",
        "Take a payment",
    ]
    assert nav_labels(client_for(org.customer)) == [
        "My account",
        "Usage",
        "My bills",
        "Pay",
        "My requests",
        "My messages",
        "Profile",
    ]


def test_htmx_is_served_from_our_own_static_files(org, client_for):
    page = client_for(org.site_manager).get(reverse("customers:list")).content.decode()
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', page)
    assert scripts and all(src.startswith("/static/") for src in scripts)
    assert any("htmx" in src for src in scripts)
    for src in scripts:
        assert finders.find(src.removeprefix("/static/")), src
    assert "https://" not in page and "http://" not in page


def test_every_page_declares_a_phone_viewport(org, client_for):
    page = client_for(org.agent).get(reverse("fieldops:home")).content.decode()
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in page


def test_htmx_requests_get_only_the_changed_part(org, client_for):
    client = client_for(org.site_manager)
    full = client.get(reverse("customers:list")).content.decode()
    part = client.get(reverse("customers:list"), HTTP_HX_REQUEST="true").content.decode()
    assert "<html" in full and "<html" not in part and "<table>" in part


def test_openapi_schema_and_docs(org, client_for):
    client = client_for(org.admin)
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    text = schema.content.decode()
    assert "/api/v1/customers/" in text and "/api/v1/meters/" in text
    docs = client.get("/api/docs/").content.decode()
    assert "swagger" in docs.lower()
    assert "cdn" not in docs.lower() and "https://" not in docs


def test_admin_has_search_and_filters(org, client_for):
    client = client_for(org.admin)
    page = client.get(reverse("admin:customers_customer_changelist"), {"q": "x"})
    assert page.status_code == 200
    assert 'id="changelist-filter"' in page.content.decode()
