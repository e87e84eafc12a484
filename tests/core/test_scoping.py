"""Every role sees only its own scope, and is refused what it must not see or change."""

from __future__ import annotations

import pytest
from django.urls import reverse

from customers.models import Customer
from mcoms.core.selectors import sites_visible_to
from tests import factories

pytestmark = pytest.mark.django_db


def test_sites_in_scope_per_role(org):
    def names(user):
        return sorted(sites_visible_to(user).values_list("code", flat=True))

    assert names(org.admin) == ["jin", "kla", "klb"]
    assert names(org.regional) == ["kla", "klb"]
    assert names(org.cluster) == ["kla", "klb"]
    for who in ("site_manager", "billing", "supervisor", "agent"):
        assert names(org.users[who]) == ["kla"], who
    assert names(org.outsider_agent) == ["jin"]
    assert names(org.customer) == []


@pytest.fixture
def people(org):
    """A customer on Block A (owned by the customer login) and one on Jinja Town."""
    mine = factories.customer(org.block_a, first_name="Mine")
    Customer.objects.filter(pk=mine.pk).update(user=org.customer)
    theirs = factories.customer(org.jinja_town, first_name="Other")
    return mine, theirs


PAGES_BY_CUSTOMER = ["customers:detail", "customers:edit", "customers:request_create"]


@pytest.mark.parametrize("role", ["agent", "site_manager", "billing", "supervisor"])
def test_block_a_staff_cannot_open_other_sites_customers(org, people, client_for, role):
    _, theirs = people
    client = client_for(org.users[role])
    for name in PAGES_BY_CUSTOMER:
        response = client.get(reverse(name, args=[theirs.pk]))
        assert response.status_code in (403, 404), (role, name)
    assert client.get(reverse("metering:customer_meters", args=[theirs.pk])).status_code == 404


def test_lists_show_only_scope(org, people, client_for):
    mine, theirs = people
    page = client_for(org.agent).get(reverse("customers:list")).content.decode()
    assert mine.account_number in page
    assert theirs.account_number not in page
    page = client_for(org.outsider_agent).get(reverse("customers:list")).content.decode()
    assert theirs.account_number in page and mine.account_number not in page


def test_billing_officer_may_see_but_not_edit_customers(org, people, client_for):
    mine, _ = people
    client = client_for(org.billing)
    assert client.get(reverse("customers:detail", args=[mine.pk])).status_code == 200
    assert client.get(reverse("customers:edit", args=[mine.pk])).status_code == 403
    response = client.post(reverse("customers:edit", args=[mine.pk]), {"first_name": "Changed"})
    assert response.status_code == 403
    assert Customer.objects.get(pk=mine.pk).first_name == "Mine"
    assert client.get(reverse("customers:create")).status_code == 403


def test_agent_cannot_register_a_customer_on_another_site(org, client_for):
    response = client_for(org.agent).post(
        reverse("customers:create"),
        {
            "site": org.jinja_town.pk,
            "first_name": "X",
            "last_name": "Y",
            "phone": "0772999111",
            "language": "en",
        },
    )
    # The site is not offered to them: the form refuses it and nothing is written.
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Customer.objects.filter(first_name="X").exists()


@pytest.mark.parametrize(
    "url_name",
    [
        "dashboard:home",
        "customers:list",
        "customers:requests",
        "metering:meters",
        "metering:gateways",
        "core:audit",
        "metering:meter_create",
        "customers:create",
    ],
)
def test_customer_login_is_refused_staff_pages(org, people, client_for, url_name):
    response = client_for(org.customer).get(reverse(url_name))
    assert response.status_code == 403


def test_customer_sees_only_their_own_account(org, people, client_for):
    mine, theirs = people
    client = client_for(org.customer)
    page = client.get(reverse("customers:portal")).content.decode()
    assert mine.account_number in page and theirs.account_number not in page
    assert client.get(reverse("customers:detail", args=[mine.pk])).status_code == 403
    api = client.get("/api/v1/customers/").json()
    assert [c["account_number"] for c in api["results"]] == [mine.account_number]
    assert client.get(f"/api/v1/customers/{theirs.pk}/").status_code == 404
    assert client.get("/api/v1/meters/").json()["results"] == []


def test_staff_without_a_customer_account_get_no_portal(org, client_for):
    assert client_for(org.agent).get(reverse("customers:portal")).status_code == 403


def test_only_admins_and_regional_managers_browse_the_audit_trail(org, client_for):
    assert client_for(org.admin).get(reverse("core:audit")).status_code == 200
    assert client_for(org.regional).get(reverse("core:audit")).status_code == 200
    for who in ("cluster", "site_manager", "billing", "supervisor", "agent", "customer"):
        assert client_for(org.users[who]).get(reverse("core:audit")).status_code == 403, who


def test_api_scoping_and_refusals(org, people, client_for):
    mine, theirs = people
    agent = client_for(org.agent)
    listed = [c["account_number"] for c in agent.get("/api/v1/customers/").json()["results"]]
    assert listed == [mine.account_number]
    assert agent.get(f"/api/v1/customers/{theirs.pk}/").status_code == 404
    billing = client_for(org.billing)
    response = billing.patch(
        f"/api/v1/customers/{mine.pk}/", {"first_name": "Hacked"}, content_type="application/json"
    )
    assert response.status_code == 403
    assert Customer.objects.get(pk=mine.pk).first_name == "Mine"


def test_api_refuses_anonymous_callers(org, people, client):
    for url in (
        "/api/v1/customers/",
        "/api/v1/meters/",
        "/api/v1/gateways/",
        "/api/v1/service-requests/",
    ):
        assert client.get(url).status_code in (401, 403), url


def test_meters_scoped_and_field_steps_only_for_field_roles(org, client_for):
    from metering.lifecycle import Status

    here = factories.assigned_meter(org.block_a, 10)
    there = factories.assigned_meter(org.jinja_town, 10)
    agent = client_for(org.agent)
    assert agent.get(reverse("metering:meter", args=[here.pk])).status_code == 200
    assert agent.get(reverse("metering:meter", args=[there.pk])).status_code == 404
    # An agent may not take inventory steps (conversion is lab work for managers).
    response = agent.post(
        reverse("metering:meter_step", args=[here.pk]), {"status": Status.CONVERTED}
    )
    assert response.status_code == 403
    here.refresh_from_db()
    assert here.status == Status.ASSIGNED
    # Nor plan addresses or add stock.
    assert (
        agent.post(
            reverse("metering:meter_assign", args=[here.pk]),
            {"site": org.block_a.pk, "address": 11},
        ).status_code
        == 403
    )
    assert agent.get(reverse("metering:meter_create")).status_code == 403
