"""A customer's page leads to their money: statement, charges and, when prepaid, the account."""

from __future__ import annotations

from django.urls import reverse

from billing.models import ServicePackage
from tests import factories


def _links(client, customer) -> str:
    page = client.get(reverse("customers:detail", args=[customer.pk]))
    assert page.status_code == 200
    return page.content.decode()


def test_billing_staff_see_the_money_links(org, client_for):
    customer = factories.customer(org.block_a)
    page = _links(client_for(org.billing), customer)
    assert reverse("collections:statement", args=[customer.pk]) in page
    assert reverse("billing:charge-list", args=[customer.pk]) in page
    assert reverse("prepaid:customer", args=[customer.pk]) not in page  # postpaid


def test_a_prepaid_customer_links_to_their_prepaid_account(org, client_for):
    package = ServicePackage.objects.create(
        code="pre", name="Prepaid", load_limit_w=500, payment_mode="prepaid_credit"
    )
    customer = factories.customer(org.block_a, package=package)
    page = _links(client_for(org.billing), customer)
    assert reverse("prepaid:customer", args=[customer.pk]) in page


def test_a_field_agent_without_billing_sight_sees_no_money_links(org, client_for):
    customer = factories.customer(org.block_a)
    page = _links(client_for(org.agent), customer)
    assert reverse("collections:statement", args=[customer.pk]) not in page
