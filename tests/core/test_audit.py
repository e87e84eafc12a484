"""Every change to customers, meters, packages and roles says who, when, how, before/after."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from billing import services as billing_services
from billing.models import ServicePackage
from customers import services as customer_services
from customers.models import Customer
from mcoms.core import services as core_services
from mcoms.core.audit import acting_as
from mcoms.core.models import AuditEvent
from metering import services as meter_services
from tests import factories

pytestmark = pytest.mark.django_db


def events_for(obj):
    return AuditEvent.objects.filter(
        object_type=obj._meta.label_lower, object_id=str(obj.pk)
    ).order_by("id")


def test_web_edit_records_person_channel_and_before_after(org, client_for):
    customer = factories.customer(org.block_a, first_name="Ann", last_name="Okello")
    response = client_for(org.site_manager).post(
        reverse("customers:edit", args=[customer.pk]),
        {"first_name": "Anne", "last_name": "Okello", "phone": "0772 123 456", "language": "en"},
    )
    assert response.status_code == 302
    event = events_for(customer).last()
    assert event.action == "update"
    assert event.actor == org.site_manager
    assert event.channel == "web"
    assert event.site_id == org.block_a.pk
    changed = {field: (old, new) for field, old, new in event.changes()}
    assert changed["first_name"] == ("Ann", "Anne")
    assert changed["phone"][1] == "+256772123456"


def test_api_edit_is_recorded_as_api(org, client_for):
    customer = factories.customer(org.block_a)
    response = client_for(org.agent).patch(
        f"/api/v1/customers/{customer.pk}/",
        {"email": "a@example.org"},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    event = events_for(customer).last()
    assert (event.channel, event.actor, event.after["email"]) == ("api", org.agent, "a@example.org")


def test_admin_edit_goes_through_the_service_and_is_audited(org, client_for):
    customer = factories.customer(org.block_a, first_name="Ann")
    url = reverse("admin:customers_customer_change", args=[customer.pk])
    form = {
        "first_name": "Annet",
        "last_name": customer.last_name,
        "phone": "+256 772 555 111",
        "alt_phone": "",
        "email": "",
        "id_number": "",
        "location": "",
        "latitude": "",
        "longitude": "",
        "package": "",
        "language": "en",
        "critical_load_note": "",
        "status_history-TOTAL_FORMS": "0",
        "status_history-INITIAL_FORMS": "0",
    }
    response = client_for(org.admin).post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    customer.refresh_from_db()
    assert customer.phone == "+256772555111"  # normalised by the service, not stored raw
    event = events_for(customer).last()
    assert (event.channel, event.actor, event.after["first_name"]) == ("admin", org.admin, "Annet")


def test_tasks_and_commands_are_named(org):
    customer = factories.customer(org.block_a)
    with acting_as(label="billing-run", channel="task"):
        customer_services.customer_set_status(customer=customer, status="active", reason="paid")
    event = events_for(customer).last()
    assert (event.actor, event.actor_label, event.channel) == (None, "billing-run", "task")
    assert event.action == "transition" and event.note == "paid"
    assert event.before["status"] == "applicant" and event.after["status"] == "active"


def test_meter_steps_packages_and_roles_are_audited(org):
    with acting_as(org.site_manager, channel="web"):
        meter = factories.meter()
        meter_services.meter_assign(meter=meter, site=org.block_a, address=12)
        package = billing_services.package_save(
            package=ServicePackage(code="lite", name="Lite", load_limit_w=100)
        )
        package.load_limit_w = 150
        billing_services.package_save(package=package)
        core_services.user_update(user=org.agent, role="field_supervisor")
    assert [e.action for e in events_for(meter)] == ["create", "transition"]
    assert events_for(meter).last().after["modbus_address"] == 12
    changes = events_for(package).last().changes()
    assert ("load_limit_w", 100, 150) in changes
    role_change = events_for(org.agent).last()
    assert ("role", "field_agent", "field_supervisor") in role_change.changes()
    assert role_change.actor == org.site_manager


def test_audit_page_filters(org, client_for):
    factories.customer(org.block_a, first_name="Zed")
    factories.customer(org.jinja_town, first_name="Yan")
    client = client_for(org.admin)
    page = client.get(reverse("core:audit"), {"object_type": "customers.customer"}).content.decode()
    assert "Zed" in page and "Yan" in page
    page = client.get(
        reverse("core:audit"), {"object_type": "customers.customer", "site": org.block_a.pk}
    ).content.decode()
    assert "Zed" in page and "Yan" not in page
    future = (dt.date.today() + dt.timedelta(days=2)).isoformat()
    page = client.get(reverse("core:audit"), {"since": future}).content.decode()
    assert "Nothing recorded matches" in page
    # htmx asks for the results only.
    partial = client.get(reverse("core:audit"), {"actor": "test"}, HTTP_HX_REQUEST="true")
    assert b"<html" not in partial.content and b"<table>" in partial.content


def test_regional_manager_sees_only_their_regions_events(org, client_for):
    factories.customer(org.block_a, first_name="Zed")
    factories.customer(org.jinja_town, first_name="Yan")
    page = client_for(org.regional).get(reverse("core:audit")).content.decode()
    assert "Zed" in page and "Yan" not in page


def test_audit_admin_is_read_only(org, client_for):
    factories.customer(org.block_a)
    event = AuditEvent.objects.first()
    client = client_for(org.admin)
    assert client.get(reverse("admin:core_auditevent_changelist")).status_code == 200
    assert client.get(reverse("admin:core_auditevent_add")).status_code == 403
    response = client.post(
        reverse("admin:core_auditevent_delete", args=[event.pk]), {"post": "yes"}
    )
    assert response.status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()
    assert Customer.objects.count() == 1


def test_site_holidays_edited_in_the_admin_are_audited(org, client_for):
    url = reverse("admin:core_site_change", args=[org.block_a.pk])
    site = org.block_a
    form = {
        "cluster": site.cluster_id,
        "name": site.name,
        "code": site.code,
        "timezone": "Africa/Kampala",
        "currency": "UGX",
        "country": "UG",
        "single_phase_address_min": 10,
        "single_phase_address_max": 99,
        "three_phase_address_min": 100,
        "three_phase_address_max": 247,
        "missing_read_intervals": 4,
        "latitude": "",
        "longitude": "",
        "holidays-TOTAL_FORMS": "1",
        "holidays-INITIAL_FORMS": "0",
        "holidays-0-date": "2026-10-09",
        "holidays-0-name": "Independence Day",
    }
    response = client_for(org.admin).post(url, form)
    assert response.status_code == 302, response.content.decode()[:3000]
    event = AuditEvent.objects.filter(object_type="core.publicholiday").get()
    assert (event.action, event.channel, event.site_id) == ("create", "admin", site.pk)
    assert event.after["name"] == "Independence Day"


def test_records_with_a_composite_key_are_audited(org):
    import datetime as dt

    from mcoms.core import audit
    from metering import partitions
    from metering.models import Reading

    partitions.ensure_months([dt.date(2026, 4, 1)])
    meter = factories.meter()
    reading = Reading.objects.create(
        meter=meter,
        ts=dt.datetime(2026, 4, 4, 15, 15, tzinfo=dt.UTC),
        energy_kwh=1,
        received_at=dt.datetime.now(dt.UTC),
    )
    event = audit.record(AuditEvent.Action.UPDATE, reading, after={"quality": "accepted"})
    event.refresh_from_db()
    assert event.object_id == f"{meter.pk}:2026-04-04T15:15:00+00:00"
