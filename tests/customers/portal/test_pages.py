"""The portal's pages: only one's own account; profile, requests, the field agent, messages."""

from __future__ import annotations

import pytest
from django.urls import reverse

from billing.models import ServicePackage
from billing.services import package_save
from customers import services as customer_services
from customers.models import ServiceRequest
from mcoms.core.audit import acting_as
from mcoms.core.models import AuditEvent
from notifications import preferences
from notifications.models import Channel, Message, MessageTemplate
from notifications.services import send_message

PAGES = [
    "customers:portal",
    "customers:portal-usage",
    "customers:portal-forecast",
    "customers:portal-profile",
    "customers:portal-requests",
    "customers:portal-agent",
    "customers:portal-messages",
]


@pytest.mark.parametrize("name", PAGES)
def test_every_page_answers_its_customer_and_no_one_else(org, me, client, client_for, name):
    url = reverse(name)
    assert client_for(org.customer).get(url).status_code == 200
    anonymous = client.get(url)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("selfservice:portal-sign-in") + "?next=")
    assert client_for(org.billing).get(url).status_code == 403  # staff have no account


def test_another_customers_request_is_not_found(org, me, neighbour, client_for):
    with acting_as(label="test setup"):
        theirs = customer_services.service_request_create(
            customer=neighbour, kind="fault", description="Neighbour's fault"
        )
    client = client_for(org.customer)
    assert client.get(reverse("customers:portal-request", args=[theirs.pk])).status_code == 404
    assert (
        "Neighbour's fault" not in client.get(reverse("customers:portal-requests")).content.decode()
    )


def test_profile_changes_are_saved_through_the_service_and_audited(org, me, client_for):
    client = client_for(org.customer)
    response = client.post(
        reverse("customers:portal-profile"),
        {"alt_phone": "0701 234567", "language": "sw", "location": "Plot 9, blue gate"},
    )
    assert response.status_code == 302
    me.refresh_from_db()
    assert (me.alt_phone, me.language, me.location) == ("+256701234567", "sw", "Plot 9, blue gate")
    event = AuditEvent.objects.filter(
        object_type="customers.customer", object_id=str(me.pk), action="update"
    ).order_by("at", "id")
    changed = event.filter(after__language="sw").get()
    assert changed.channel == AuditEvent.Channel.PORTAL and changed.actor == org.customer
    assert changed.before["location"] == "Plot 4"
    # The reminders box was left unticked: the phone is opted out, and that is audited too.
    assert preferences.opted_out(me.phone)
    assert event.filter(after={"sms_reminders": False}).exists()


def test_a_bad_second_phone_is_explained_and_nothing_is_lost(org, me, client_for):
    response = client_for(org.customer).post(
        reverse("customers:portal-profile"),
        {"alt_phone": "12", "language": "lg", "location": "Plot 5", "reminders": "on"},
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert 'class="errorlist" id="id_alt_phone_error"' in body and "UG number" in body
    assert 'value="Plot 5"' in body  # what was typed is kept
    me.refresh_from_db()
    assert me.language == "en" and me.location == "Plot 4"


def test_the_main_phone_cannot_be_changed_here(org, me, client_for):
    client_for(org.customer).post(
        reverse("customers:portal-profile"),
        {"phone": "+256701999999", "language": "en", "reminders": "on"},
    )
    me.refresh_from_db()
    assert me.phone != "+256701999999"


@pytest.fixture
def packages(db):
    with acting_as(label="test setup"):
        small = package_save(package=ServicePackage(code="small", name="Small", load_limit_w=300))
        big = package_save(package=ServicePackage(code="big", name="Big", load_limit_w=1500))
        package_save(package=ServicePackage(code="old", name="Old", load_limit_w=100, active=False))
    return small, big


def test_a_package_request_is_made_through_the_service_and_listed(org, me, packages, client_for):
    small, big = packages
    client = client_for(org.customer)
    form = client.get(reverse("customers:portal-requests")).content.decode()
    assert "Big" in form and "Old" not in form  # only packages on offer
    missing = client.post(reverse("customers:portal-requests"), {"kind": "package_change"})
    assert "Choose the package you want." in missing.content.decode()
    response = client.post(
        reverse("customers:portal-requests"),
        {"kind": "package_change", "requested_package": big.pk, "description": "A fridge"},
    )
    created = ServiceRequest.objects.get(customer=me)
    assert response["Location"] == reverse("customers:portal-request", args=[created.pk])
    assert (created.kind, created.requested_package, created.channel) == (
        "package_change",
        big,
        "portal",
    )
    assert AuditEvent.objects.filter(
        object_type="customers.servicerequest", object_id=str(created.pk), channel="portal"
    ).exists()
    with acting_as(org.site_manager):
        customer_services.service_request_transition(
            request=created, status="in_progress", note="Agent visits on Monday"
        )
    listing = client.get(reverse("customers:portal-requests")).content.decode()
    assert f"SR-{created.pk}" in listing and "In progress" in listing
    page = client.get(reverse("customers:portal-request", args=[created.pk])).content.decode()
    assert "Agent visits on Monday" in page and "Open → In progress" in page


def test_a_fault_needs_words(org, me, client_for):
    response = client_for(org.customer).post(
        reverse("customers:portal-requests"), {"kind": "fault"}
    )
    assert "Tell us what it is about." in response.content.decode()
    assert not ServiceRequest.objects.exists()


def test_the_field_agent_is_shown_and_a_message_becomes_their_request(org, me, client_for):
    agent = org.agent
    agent.first_name, agent.last_name, agent.phone = "Peter", "Ssali", "+256772300300"
    agent.save()
    MessageTemplate.objects.create(
        key="staff_assignment", language="en", channel=Channel.SMS, body="{{ task }} for you"
    )
    client = client_for(org.customer)
    page = client.get(reverse("customers:portal-agent")).content.decode()
    assert "Peter Ssali" in page and 'href="tel:+256772300300"' in page
    assert org.outsider_agent.get_full_name() not in page  # not an agent of this site
    client.post(reverse("customers:portal-agent"), {"kind": "fault", "message": "The meter beeps"})
    request = ServiceRequest.objects.get(customer=me)
    assert request.assigned_to == agent and request.channel == "portal"
    assert "The meter beeps" in request.description
    sms = Message.objects.get(to=agent.phone, template_key="staff_assignment")
    assert f"SR-{request.pk}" in sms.body


def test_without_an_agent_the_message_still_goes_to_the_site(org, me, client_for):
    org.agent.sites.clear()
    client = client_for(org.customer)
    assert (
        "No field agent works on" in client.get(reverse("customers:portal-agent")).content.decode()
    )
    client.post(reverse("customers:portal-agent"), {"kind": "complaint", "message": "Hello"})
    assert ServiceRequest.objects.get(customer=me).assigned_to is None


def test_messages_are_the_customers_own_newest_first_with_secrets_hidden(
    org, me, neighbour, client_for
):
    for key, body in [("note", "{{ text }}"), ("selfservice_portal_code", "{{ code }} code")]:
        MessageTemplate.objects.create(key=key, language="en", channel=Channel.SMS, body=body)
    first = send_message(to=me.phone, template="note", context={"text": "First note"})
    send_message(to=me.phone, template="note", context={"text": "Second note"})
    send_message(to=me.phone, template="selfservice_portal_code", context={"code": "654321"})
    send_message(to=neighbour.phone, template="note", context={"text": "Not yours"})
    # Same phone, but about another account (a family sharing a phone): not listed.
    send_message(
        to=me.phone,
        template="note",
        context={"text": "About the neighbour"},
        about=f"customers.customer:{neighbour.pk}",
    )
    Message.objects.filter(pk=first.pk).update(status="delivered")
    body = client_for(org.customer).get(reverse("customers:portal-messages")).content.decode()
    assert body.index("Second note") < body.index("First note")
    assert "Delivered" in body and "Queued" in body
    assert "654321" not in body and "not shown here" in body
    assert "Not yours" not in body and "About the neighbour" not in body
