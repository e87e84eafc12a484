"""Events that message customers: registration, service-request updates, disconnection and
reconnection, meter offline and site outage.

The catalogue's default wording is installed (``catalog.install_defaults``); messages go
through the real messaging core and are checked in its log.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from billing import ledger, supply
from billing.models import SupplyRequest
from customers import services as customer_services
from customers.models import ServiceRequest
from mcoms.core.audit import acting_as
from metering import services as meter_services
from metering import watch
from metering.models import Gateway
from notifications import catalog, preferences
from notifications.models import Message, QuietHours
from tests import factories
from tests.metering.edge_fixtures import NOW, bus  # noqa: F401

MINUTE = dt.timedelta(minutes=1)


@pytest.fixture
def templates(db):
    return catalog.install_defaults()


@pytest.fixture
def cust(org, templates):
    customer = factories.customer(org.block_a, first_name="Amina", language="sw")
    Message.objects.all().delete()  # leave out the registration message
    return customer


def messages_to(customer, key):
    return list(Message.objects.filter(to=customer.phone, template_key=key))


# --- Registration --------------------------------------------------------------------------


def test_registration_welcomes_the_customer_in_their_language(org, templates):
    customer = factories.customer(org.block_a, first_name="Amina", language="sw")

    (message,) = messages_to(customer, "customer_registered")
    assert message.language == "sw"
    assert message.body == (
        f"Karibu kwenye umeme wa Block A, Amina. Nambari ya akaunti yako ni "
        f"{customer.account_number}."
    )
    assert message.site_id == org.block_a.pk


def test_registration_is_essential_and_reaches_an_opted_out_number(org, templates):
    preferences.opt_out("+256770999111")
    customer = factories.customer(org.block_a, phone="+256770999111")
    (message,) = messages_to(customer, "customer_registered")
    assert message.status != Message.Status.SKIPPED


# --- Service requests ----------------------------------------------------------------------


def open_request(customer):
    with acting_as(label="test"):
        return customer_services.service_request_create(
            customer=customer, kind=ServiceRequest.Kind.FAULT, description="no power"
        )


def move(request, status, note=""):
    with acting_as(label="test"):
        return customer_services.service_request_transition(
            request=request, status=status, note=note
        )


def test_each_service_request_update_messages_the_customer(cust):
    request = open_request(cust)
    assert not messages_to(cust, "service_request_update")  # opening is not an update

    move(request, ServiceRequest.Status.IN_PROGRESS)
    move(request, ServiceRequest.Status.RESOLVED, note="Fuse replaced.")

    bodies = [m.body for m in reversed(messages_to(cust, "service_request_update"))]
    assert bodies == [
        f"Amina, ombi lako SR-{request.pk} sasa ni in progress.",
        f"Amina, ombi lako SR-{request.pk} sasa ni resolved. Fuse replaced.",
    ]
    assert Message.objects.filter(about=f"customers.servicerequest:{request.pk}").count() == 2


def test_service_request_updates_respect_opt_out(cust):
    preferences.opt_out(cust.phone)
    move(open_request(cust), ServiceRequest.Status.REJECTED, note="Duplicate")
    (message,) = messages_to(cust, "service_request_update")
    assert message.status == Message.Status.SKIPPED


def test_an_update_that_fails_sends_nothing(cust):
    request = open_request(cust)
    with pytest.raises(Exception, match="cannot become"):
        move(request, ServiceRequest.Status.CLOSED)
    assert not messages_to(cust, "service_request_update")


# --- Disconnected and reconnected ----------------------------------------------------------


def test_a_done_disconnection_tells_the_customer_what_to_pay(org, cust):
    preferences.opt_out(cust.phone)  # essential: goes all the same
    with acting_as(org.billing):
        ledger.invoice_post(customer=cust, date=dt.date(2026, 3, 1), energy=D(24500))
        request = supply.request(
            customer=cust, action=SupplyRequest.Action.DISCONNECT, reason="arrears"
        )
    assert not messages_to(cust, "disconnected")  # asking is not doing

    with acting_as(org.agent):
        supply.close(request=request, status=SupplyRequest.Status.DONE, outcome="relay opened")

    (message,) = messages_to(cust, "disconnected")
    assert message.body == (
        f"Amina, umeme wako umekatwa. Lipa UGX 24,500 ili uunganishwe tena. "
        f"Akaunti {cust.account_number}."
    )
    assert message.status == Message.Status.QUEUED
    assert message.about == f"billing.supplyrequest:{request.pk}"


def test_a_done_reconnection_says_so_and_a_cancelled_request_says_nothing(org, cust):
    with acting_as(org.billing):
        cut = supply.request(customer=cust, action="disconnect", reason="arrears")
        # Asking to reconnect cancels the open disconnection: no message for that.
        back = supply.request(customer=cust, action="reconnect", reason="top_up")
    cut.refresh_from_db()
    assert cut.status == SupplyRequest.Status.CANCELLED
    assert not messages_to(cust, "disconnected")

    with acting_as(org.agent):
        supply.close(request=back, status=SupplyRequest.Status.DONE)

    (message,) = messages_to(cust, "reconnected")
    assert message.body == f"Amina, umeme wako umerudishwa. Asante. Akaunti {cust.account_number}."


# --- Meter offline and site outage ---------------------------------------------------------


def heartbeat(bus, at):  # noqa: F811
    Gateway.objects.filter(pk=bus.gateway.pk).update(last_heartbeat_at=at)


@pytest.fixture
def served(bus, org, templates):  # noqa: F811
    """Amina is served by meter 10, Kato by meter 100 (neither has reported)."""
    amina = factories.customer(org.block_a, first_name="Amina")
    kato = factories.customer(org.block_a, first_name="Kato", language="lg")
    with acting_as(label="test setup"):
        meter_services.meter_serve_customer(meter=bus.single, customer=amina)
        meter_services.meter_serve_customer(meter=bus.three, customer=kato)
    Message.objects.all().delete()
    return bus, amina, kato


def test_a_silent_meter_messages_its_customer_once(served):
    grid, amina, kato = served
    heartbeat(grid, NOW - MINUTE)
    from metering import ingest
    from tests.metering.edge_fixtures import reading

    ingest.ingest(gateway=grid.gateway, readings=[reading(10, "2026-04-04T15:45:00Z")], now=NOW)

    result = watch.check_missing(now=NOW, notify_staff=False)

    assert result.customer_messages == 1
    (message,) = messages_to(kato, "meter_offline")
    assert grid.three.serial in message.body and kato.account_number in message.body
    assert "tewereza mawulire okuva 01 Apr 03:00" in message.body  # installed, Kampala time
    assert not messages_to(amina, "meter_offline")

    heartbeat(grid, NOW + 4 * MINUTE)
    watch.check_missing(now=NOW + 5 * MINUTE, notify_staff=False)  # still silent, same alert
    assert len(messages_to(kato, "meter_offline")) == 1


def test_a_silent_gateway_messages_the_customers_on_its_bus(served, org):
    grid, amina, kato = served
    other = factories.customer(org.block_a, first_name="Other")  # no meter on this grid
    preferences.opt_out(kato.phone)
    heartbeat(grid, NOW - 2 * 60 * MINUTE)

    result = watch.check_missing(now=NOW, notify_staff=False)

    (to_amina,) = messages_to(amina, "site_outage")
    # 16:00 UTC is 19:00 in Kampala; back expected four hours on.
    assert to_amina.body == (
        "Block A: power is off (our equipment at the site stopped reporting). "
        "We expect it back by 23:00. Sorry for the trouble."
    )
    (to_kato,) = messages_to(kato, "site_outage")
    assert to_kato.status == Message.Status.SKIPPED  # non-essential: opt-out respected
    assert not messages_to(other, "site_outage")
    assert not Message.objects.filter(template_key="meter_offline").exists()
    assert result.customer_messages == 2


def test_outage_messages_wait_for_the_end_of_quiet_hours(served):
    grid, amina, kato = served
    QuietHours.objects.create(start=dt.time(21), end=dt.time(7), timezone="Africa/Kampala")
    late = NOW + 3 * 60 * MINUTE  # 22:00 in Kampala
    heartbeat(grid, late - 2 * 60 * MINUTE)

    watch.check_missing(now=late, notify_staff=False)

    (message,) = messages_to(amina, "site_outage")
    assert message.not_before == dt.datetime(2026, 4, 5, 4, 0, tzinfo=dt.UTC)  # 07:00 local


def test_without_customer_templates_the_watch_goes_on(bus, org):  # noqa: F811
    amina = factories.customer(org.block_a)
    with acting_as(label="test setup"):
        meter_services.meter_serve_customer(meter=bus.three, customer=amina)
    heartbeat(bus, NOW - MINUTE)
    result = watch.check_missing(now=NOW, notify_staff=False)
    assert len(result.opened) == 2 and result.customer_messages == 0


def test_a_gateway_never_heard_from_is_no_outage_for_customers(served):
    grid, amina, kato = served
    # Registered ten days before NOW, never a heartbeat: staff are alerted, customers not.
    result = watch.check_missing(now=NOW, notify_staff=False)
    assert result.silent_gateways == 1
    assert not Message.objects.filter(template_key="site_outage").exists()
    assert result.customer_messages == 0
