"""Registering customers, their status flow and their service requests."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from billing.models import ServicePackage
from customers import services
from customers.models import Customer, ServiceRequest
from tests import factories
from tests.conftest import T0

pytestmark = pytest.mark.django_db


def test_registration_normalises_numbers_and_numbers_accounts(org):
    saved = services.customer_create(
        site=org.block_a,
        first_name="Ann",
        last_name="Nakato",
        phone="0772 123456",
        alt_phone="0712 345678",
        now=T0,
    )
    customer = saved.customer
    assert customer.phone == "+256772123456"
    assert customer.alt_phone == "+256712345678"  # a Ugandan site reads local numbers as UG
    assert customer.account_number == "KLA-00001"
    assert customer.status == "applicant"
    assert customer.status_history.get().to_status == "applicant"
    second = services.customer_create(
        site=org.block_a, first_name="B", last_name="C", phone="0772 999888"
    )
    assert second.customer.account_number == "KLA-00002"


def test_bad_phone_is_refused_with_the_field_named(org):
    with pytest.raises(ValidationError) as exc:
        services.customer_create(site=org.block_a, first_name="A", last_name="B", phone="12")
    assert "phone" in exc.value.message_dict
    assert not Customer.objects.exists()


def test_duplicate_phone_is_allowed_but_warned(org):
    first = services.customer_create(
        site=org.block_a, first_name="A", last_name="One", phone="0772123456"
    )
    assert first.warnings == []
    second = services.customer_create(
        site=org.block_b, first_name="B", last_name="Two", phone="+256772123456"
    )
    assert second.warnings == [
        f"Phone +256772123456 is also used by account {first.customer.account_number} (A One)."
    ]


def test_duplicate_phone_warning_shown_on_the_page(org, client_for):
    factories.customer(org.block_a, phone="+256772123456", first_name="First")
    response = client_for(org.agent).post(
        reverse("customers:create"),
        {
            "site": org.block_a.pk,
            "first_name": "Second",
            "last_name": "X",
            "phone": "0772 123 456",
            "language": "sw",
        },
        follow=True,
    )
    page = response.content.decode()
    assert "is also used by account KLA-00001" in page
    assert Customer.objects.get(first_name="Second").language == "sw"


def test_form_shows_phone_error_and_keeps_input(org, client_for):
    response = client_for(org.agent).post(
        reverse("customers:create"),
        {
            "site": org.block_a.pk,
            "first_name": "Keep",
            "last_name": "Me",
            "phone": "07",
            "language": "en",
        },
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "not a valid UG number" in page
    assert 'value="Keep"' in page
    assert not Customer.objects.exists()


def test_status_flow_with_dated_history(org):
    customer = factories.customer(org.block_a, now=T0 - dt.timedelta(days=1))
    steps = [
        ("active", T0),
        ("suspended", T0 + dt.timedelta(days=30)),
        ("active", T0 + dt.timedelta(days=31)),
        ("closed", T0 + dt.timedelta(days=90)),
    ]
    for status, at in steps:
        services.customer_set_status(customer=customer, status=status, reason="test", now=at)
    history = list(customer.status_history.values_list("from_status", "to_status", "at"))
    assert history[1:] == [
        ("applicant", "active", T0),
        ("active", "suspended", T0 + dt.timedelta(days=30)),
        ("suspended", "active", T0 + dt.timedelta(days=31)),
        ("active", "closed", T0 + dt.timedelta(days=90)),
    ]
    with pytest.raises(ValidationError, match="closed cannot become active"):
        services.customer_set_status(customer=customer, status="active")


def test_applicant_cannot_be_disconnected(org):
    customer = factories.customer(org.block_a)
    with pytest.raises(ValidationError):
        services.customer_set_status(customer=customer, status="disconnected")


def test_critical_load_flag_is_kept(org):
    customer = factories.customer(
        org.block_a, critical_load=True, critical_load_note="Health centre"
    )
    assert Customer.objects.get(pk=customer.pk).critical_load


def test_service_request_flow_and_package_change(org):
    lite = ServicePackage.objects.create(code="lite", name="Lite", load_limit_w=100)
    home = ServicePackage.objects.create(code="home", name="Home", load_limit_w=500)
    customer = factories.customer(org.block_a, package=lite)
    with pytest.raises(ValidationError):
        services.service_request_create(customer=customer, kind="package_change")
    request = services.service_request_create(
        customer=customer,
        kind=ServiceRequest.Kind.PACKAGE_CHANGE,
        requested_package=home,
        description="Wants a fridge",
        now=T0,
    )
    services.service_request_transition(request=request, status="in_progress", now=T0)
    services.service_request_transition(request=request, status="resolved", note="done", now=T0)
    customer.refresh_from_db()
    assert customer.package == home
    assert [e.to_status for e in request.events.all()] == ["open", "in_progress", "resolved"]
    services.service_request_transition(request=request, status="closed")
    with pytest.raises(ValidationError):
        services.service_request_transition(request=request, status="open")


def test_request_pages(org, client_for):
    customer = factories.customer(org.block_a)
    client = client_for(org.supervisor)
    response = client.post(
        reverse("customers:request_create", args=[customer.pk]),
        {"kind": "fault", "description": "No power since morning"},
    )
    assert response.status_code == 302
    request = ServiceRequest.objects.get()
    assert "No power since morning" in client.get(reverse("customers:requests")).content.decode()
    client.post(reverse("customers:request", args=[request.pk]), {"status": "in_progress"})
    request.refresh_from_db()
    assert request.status == "in_progress"
    # A field agent can see it but not move it.
    agent = client_for(org.agent)
    assert agent.get(reverse("customers:request", args=[request.pk])).status_code == 200
    assert (
        agent.post(
            reverse("customers:request", args=[request.pk]), {"status": "resolved"}
        ).status_code
        == 403
    )


def test_search_by_name_phone_and_account(org, client_for):
    customer = factories.customer(
        org.block_a, first_name="Winnie", last_name="Atim", phone="+256772654321"
    )
    client = client_for(org.agent)
    for query in ("winnie", "Atim", "0772654321", "654321", customer.account_number):
        page = client.get(reverse("customers:list"), {"q": query}).content.decode()
        assert customer.account_number in page, query
    page = client.get(reverse("customers:list"), {"q": "nobody"}).content.decode()
    assert "No customers match" in page
