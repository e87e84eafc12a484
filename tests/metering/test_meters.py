"""The meter inventory: lifecycle steps, address rules, bus limits, overdue flags, history."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from mcoms.core.audit import acting_as
from metering import services
from metering.addressing import free_addresses
from metering.lifecycle import Status
from metering.models import Meter
from metering.selectors import current_customer, meters_of_customer, overdue_meters
from tests import factories
from tests.conftest import T0

pytestmark = pytest.mark.django_db


def walk(meter, *steps, gateway=None, start=T0):
    for n, status in enumerate(steps, start=1):
        meter = services.meter_move(
            meter=meter,
            status=status,
            gateway=gateway,
            by_name=f"signer {n}",
            now=start + dt.timedelta(days=n),
        )
    return meter


def test_chint_serial_is_twelve_digits_and_unique(org):
    with pytest.raises(ValidationError, match="exactly 12 digits"):
        services.meter_create(serial="12345", model="DDSU666")
    services.meter_create(serial="200322016690", model="DDSU666")
    with pytest.raises(ValidationError, match="already in the inventory"):
        services.meter_create(serial="200322016690", model="DTSU666")
    calin = services.meter_create(serial="47000123456", model="CALIN", phases=1)
    assert calin.phases == 1
    assert services.meter_create(serial="200415023456", model="DTSU666").phases == 3


def test_full_lifecycle_signed_and_dated(org):
    gateway = services.gateway_create(site=org.block_a, name="kla-bus-1")
    meter = factories.meter(now=T0 - dt.timedelta(days=1))
    meter = services.meter_assign(
        meter=meter, site=org.block_a, address=10, by_name="Planner", now=T0
    )
    meter = walk(
        meter,
        Status.CONVERTED,
        Status.SHIPPED,
        Status.INSTALLED,
        Status.COMMISSIONED,
        gateway=gateway,
    )
    assert meter.status == Status.COMMISSIONED and meter.gateway == gateway
    events = list(meter.events.values_list("to_status", "by_name", "at"))
    assert events[0][0] == Status.UNASSIGNED
    assert events[1:] == [
        (Status.ASSIGNED, "Planner", T0),
        (Status.CONVERTED, "signer 1", T0 + dt.timedelta(days=1)),
        (Status.SHIPPED, "signer 2", T0 + dt.timedelta(days=2)),
        (Status.INSTALLED, "signer 3", T0 + dt.timedelta(days=3)),
        (Status.COMMISSIONED, "signer 4", T0 + dt.timedelta(days=4)),
    ]


def test_steps_signed_by_the_person_when_no_name_given(org):
    meter = factories.meter()
    with acting_as(org.site_manager, channel="web"):
        meter = services.meter_assign(meter=meter, site=org.block_a, address=10)
    event = meter.events.last()
    assert event.by == org.site_manager and event.by_name == "Site_Manager"


def test_skipping_steps_is_refused(org):
    meter = factories.assigned_meter(org.block_a, 10)
    with pytest.raises(ValidationError, match="assigned cannot become installed"):
        services.meter_move(meter=meter, status=Status.INSTALLED)
    fresh = factories.meter()
    with pytest.raises(ValidationError):
        services.meter_move(meter=fresh, status=Status.COMMISSIONED)


def test_retest_replace_and_decommission(org):
    gateway = services.gateway_create(site=org.block_a, name="kla-bus-1")
    meter = walk(
        factories.assigned_meter(org.block_a, 10),
        Status.CONVERTED,
        Status.SHIPPED,
        Status.INSTALLED,
        Status.COMMISSIONED,
        gateway=gateway,
    )
    meter = walk(meter, Status.RETEST_NEEDED, Status.CONVERTED)
    assert meter.status == Status.CONVERTED
    meter = walk(meter, Status.SHIPPED, Status.INSTALLED, Status.REPLACED, gateway=gateway)
    assert meter.gateway is None
    # A replaced meter frees its address for the replacement.
    factories.assigned_meter(org.block_a, 10)
    meter = walk(meter, Status.DECOMMISSIONED)
    with pytest.raises(ValidationError):
        walk(meter, Status.CONVERTED)


@pytest.mark.parametrize(
    ("model", "address", "message"),
    [
        ("DDSU666", 1, "factory default"),
        ("DDSU666", 9, "outside Block A's single-phase range 10–99"),
        ("DDSU666", 100, "outside Block A's single-phase range 10–99"),
        ("DTSU666", 99, "outside Block A's three-phase range 100–247"),
    ],
)
def test_address_rules(org, model, address, message):
    meter = factories.meter(model)
    with pytest.raises(ValidationError, match=message):
        services.meter_assign(meter=meter, site=org.block_a, address=address)
    assert Meter.objects.get(pk=meter.pk).status == Status.UNASSIGNED


def test_ranges_are_a_site_setting(org):
    org.block_b.single_phase_address_min = 2
    org.block_b.save()
    meter = services.meter_assign(meter=factories.meter(), site=org.block_b, address=2)
    assert meter.modbus_address == 2
    assert free_addresses(org.block_b, 1)[:2] == [3, 4]


def test_address_planned_once_per_site_but_reusable_on_other_sites(org):
    factories.assigned_meter(org.block_a, 10)
    with pytest.raises(ValidationError, match="already planned on Block A"):
        factories.assigned_meter(org.block_a, 10)
    assert factories.assigned_meter(org.block_b, 10).modbus_address == 10


def test_database_backs_the_address_rule(org):
    first = factories.assigned_meter(org.block_a, 10)
    second = factories.assigned_meter(org.block_a, 11)
    with pytest.raises(IntegrityError), transaction.atomic():
        Meter.objects.filter(pk=second.pk).update(modbus_address=first.modbus_address)


def test_bus_meter_limit(org):
    gateway = services.gateway_create(site=org.block_a, name="kla-bus-1", meter_limit=2)
    for address in (10, 11):
        walk(
            factories.assigned_meter(org.block_a, address),
            Status.CONVERTED,
            Status.SHIPPED,
            Status.INSTALLED,
            gateway=gateway,
        )
    third = walk(factories.assigned_meter(org.block_a, 12), Status.CONVERTED, Status.SHIPPED)
    with pytest.raises(ValidationError, match="already has 2 meters \\(limit 2\\)"):
        walk(third, Status.INSTALLED, gateway=gateway)
    services.gateway_update(gateway=gateway, meter_limit=3)
    assert walk(third, Status.INSTALLED, gateway=gateway).status == Status.INSTALLED


def test_install_needs_a_gateway_on_the_same_site(org):
    meter = walk(factories.assigned_meter(org.block_a, 10), Status.CONVERTED, Status.SHIPPED)
    with pytest.raises(ValidationError, match="which gateway"):
        walk(meter, Status.INSTALLED)
    elsewhere = services.gateway_create(site=org.block_b, name="klb-bus-1")
    with pytest.raises(ValidationError, match="not on the meter's site"):
        walk(meter, Status.INSTALLED, gateway=elsewhere)


def test_overdue_flags_from_an_injected_clock(org):
    gateway = services.gateway_create(site=org.block_a, name="kla-bus-1")
    assigned = services.meter_assign(meter=factories.meter(), site=org.block_a, address=10, now=T0)
    installed = walk(
        factories.assigned_meter(org.block_a, 11, now=T0),
        Status.CONVERTED,
        Status.SHIPPED,
        Status.INSTALLED,
        gateway=gateway,
        start=T0,
    )
    installed_at = installed.status_changed_at  # T0 + 3 days
    meters = Meter.objects.all()

    def overdue(now):
        return sorted(m.modbus_address for m in overdue_meters(meters, now=now))

    assert overdue(T0 + dt.timedelta(days=5)) == []  # installed exactly 2 days ago
    assert overdue(T0 + dt.timedelta(days=5, seconds=1)) == [11]
    assert not assigned.overdue(T0 + dt.timedelta(days=7))
    assert assigned.overdue(T0 + dt.timedelta(days=7, seconds=1))
    assert overdue(installed_at + dt.timedelta(days=2)) == []
    assert overdue(installed_at + dt.timedelta(days=2, seconds=1)) == [11]
    assert overdue(T0 + dt.timedelta(days=7, seconds=1)) == [10, 11]


def test_which_customer_a_meter_serves_over_time(org):
    meter = factories.assigned_meter(org.block_a, 10)
    ann = factories.customer(org.block_a, first_name="Ann")
    ben = factories.customer(org.block_a, first_name="Ben")
    services.meter_serve_customer(meter=meter, customer=ann, now=T0)
    services.meter_serve_customer(
        meter=meter, customer=ben, reason="Ann moved out", now=T0 + dt.timedelta(days=30)
    )
    assert current_customer(meter, at=T0 + dt.timedelta(days=1)) == ann
    assert current_customer(meter, at=T0 + dt.timedelta(days=31)) == ben
    assert current_customer(meter, at=T0 - dt.timedelta(days=1)) is None
    assert list(meters_of_customer(ann, at=T0 + dt.timedelta(days=31))) == []
    periods = list(meter.assignments.order_by("start").values_list("customer", "start", "end"))
    assert periods == [
        (ann.pk, T0, T0 + dt.timedelta(days=30)),
        (ben.pk, T0 + dt.timedelta(days=30), None),
    ]
    other_site = factories.customer(org.block_b)
    with pytest.raises(ValidationError, match="different sites"):
        services.meter_serve_customer(meter=meter, customer=other_site)


def test_meter_pages_take_steps(org, client_for):
    gateway = services.gateway_create(site=org.block_a, name="kla-bus-1")
    meter = factories.meter()
    manager = client_for(org.site_manager)
    response = manager.post(
        reverse("metering:meter_assign", args=[meter.pk]),
        {"site": org.block_a.pk, "address": 1},
        follow=True,
    )
    assert "factory default" in response.content.decode()
    manager.post(
        reverse("metering:meter_assign", args=[meter.pk]),
        {"site": org.block_a.pk, "address": 15, "by_name": "Planner"},
    )
    for status in (Status.CONVERTED, Status.SHIPPED):
        manager.post(reverse("metering:meter_step", args=[meter.pk]), {"status": status})
    # Installing is field work: the agent does it on site.
    agent = client_for(org.agent)
    response = agent.post(
        reverse("metering:meter_step", args=[meter.pk]),
        {"status": Status.INSTALLED, "gateway": gateway.pk, "by_name": "John Smith"},
        follow=True,
    )
    assert response.status_code == 200
    meter.refresh_from_db()
    assert (meter.status, meter.gateway, meter.modbus_address) == (Status.INSTALLED, gateway, 15)
    page = agent.get(reverse("metering:meter", args=[meter.pk])).content.decode()
    assert "John Smith" in page and "Planner" in page
    customer = factories.customer(org.block_a)
    response = manager.post(
        reverse("metering:meter_serve", args=[meter.pk]),
        {"account_number": customer.account_number.lower()},
        follow=True,
    )
    assert "now serves" in response.content.decode()
    assert current_customer(meter) == customer
    fragment = manager.get(reverse("metering:customer_meters", args=[customer.pk]))
    assert meter.serial in fragment.content.decode()


def test_meter_list_filters(org, client_for):
    stale = services.meter_assign(meter=factories.meter(), site=org.block_a, address=10, now=T0)
    fresh = factories.assigned_meter(org.block_a, 11)
    client = client_for(org.site_manager)
    page = client.get(reverse("metering:meters"), {"overdue": "1"}).content.decode()
    assert stale.serial in page and fresh.serial not in page
    page = client.get(reverse("metering:meters"), {"q": fresh.serial[-5:]}).content.decode()
    assert fresh.serial in page and stale.serial not in page


def test_gateway_pages(org, client_for):
    services.gateway_create(site=org.block_a, name="kla-bus-2")
    client = client_for(org.site_manager)
    page = client.get(reverse("metering:gateways")).content.decode()
    assert "kla-bus-2" in page and reverse("metering:gateway_register") in page
    gateway = org.block_a.gateways.get()
    detail = client.get(reverse("metering:gateway", args=[gateway.pk])).content.decode()
    assert reverse("metering:history_import", args=[gateway.pk]) in detail
    agent_view = client_for(org.agent).get(reverse("metering:gateway", args=[gateway.pk]))
    assert reverse("metering:history_import", args=[gateway.pk]) not in agent_view.content.decode()
