"""Service requests are given to a staff member of their site, who is told by SMS."""

from __future__ import annotations

import datetime as dt

from django.urls import reverse

from customers import services
from customers.models import ServiceRequest
from mcoms.core.audit import acting_as
from mcoms.core.models import AuditEvent
from notifications import catalog
from notifications.models import Message
from tests import factories


def _fault(org) -> ServiceRequest:
    customer = factories.customer(org.block_a, first_name="Amina", last_name="Nakato")
    with acting_as(label="test setup"):
        return services.service_request_create(
            customer=customer, kind=ServiceRequest.Kind.FAULT, description="No power"
        )


def test_a_supervisor_assigns_a_fault_to_an_agent_who_is_told(org, client_for):
    catalog.install_defaults()
    org.agent.phone = "+256772000222"
    org.agent.first_name = "Okello"
    org.agent.save()
    req = _fault(org)

    page = client_for(org.supervisor).post(
        reverse("customers:request_assign", args=[req.pk]),
        {"assigned_to": org.agent.pk, "due_on": "2026-11-25"},
        follow=True,
    )

    req.refresh_from_db()
    assert (req.assigned_to, req.due_on) == (org.agent, dt.date(2026, 11, 25))
    assert "Okello" in page.content.decode()
    sms = Message.objects.get(template_key="staff_assignment", to="+256772000222")
    assert "fault SR-" in sms.body and "Amina N." in sms.body and "25 Nov" in sms.body
    event = AuditEvent.objects.filter(note__startswith="assigned to").get()
    assert event.before == {"assigned_to": None, "due_on": None}


def test_only_staff_of_the_requests_site_can_be_assigned(org, client_for):
    req = _fault(org)
    page = client_for(org.supervisor).post(
        reverse("customers:request_assign", args=[req.pk]),
        {"assigned_to": org.outsider_agent.pk},
        follow=True,
    )
    req.refresh_from_db()
    assert req.assigned_to is None
    assert "Select a valid choice" in page.content.decode()


def test_an_agent_cannot_assign(org, client_for):
    req = _fault(org)
    response = client_for(org.agent).post(
        reverse("customers:request_assign", args=[req.pk]), {"assigned_to": org.agent.pk}
    )
    assert response.status_code == 403
    req.refresh_from_db()
    assert req.assigned_to is None
