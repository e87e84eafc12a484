"""The field agent app's pages: home, search, the customer card and each form's service path."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from billing.models import ServicePackage
from billing.payments import services as payments
from billing.payments.models import Payment
from customers import services as customer_services
from customers.models import Customer, ServiceRequest
from fieldops.models import FieldTask
from mcoms.core import clock
from mcoms.core.audit import acting_as
from mcoms.core.models import AuditEvent
from metering import ingest, partitions, rollups
from metering import services as meter_services
from metering.lifecycle import Status
from metering.models import BusSlot, ManualReading, Reading
from metering.steering.models import MeterState
from tests import factories

pytestmark = pytest.mark.django_db


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), "white").save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def photos(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def grid(org):
    """Grace on Block A, served by a meter installed on the site's gateway a week ago."""
    now = clock.now()
    before = now - dt.timedelta(days=10)
    partitions.ensure_ahead(now=now, back=1, ahead=1)
    with acting_as(label="test setup"):
        gateway = meter_services.gateway_create(site=org.block_a, name="kla-a-1", now=before)
        grace = factories.customer(
            org.block_a, first_name="Grace", last_name="Nakato", phone="+256772100001"
        )
        meter = factories.assigned_meter(org.block_a, 12, now=before)
        for step in (Status.CONVERTED, Status.SHIPPED, Status.INSTALLED):
            meter = meter_services.meter_move(meter=meter, status=step, gateway=gateway, now=before)
        meter_services.meter_serve_customer(meter=meter, customer=grace, now=before)
    return {"gateway": gateway, "grace": grace, "meter": meter, "now": now}


def feed(meter, gateway, points) -> None:
    readings = [
        {"address": meter.modbus_address, "ts": ts.isoformat(), "energy_kwh": kwh}
        for ts, kwh in points
    ]
    outcome = ingest.ingest(gateway=gateway, readings=readings)
    rollups.refresh(meter_ids=sorted(outcome.meters), start=outcome.start, end=outcome.end)


# --- home and search ---------------------------------------------------------------------------


def test_home_greets_counts_my_open_tasks_and_links_them(org, client_for):
    now = clock.now()
    for status in ("assigned", "in_progress", "done"):
        FieldTask.objects.create(
            kind="read",
            status=status,
            site=org.block_a,
            title="Read",
            assigned_to=org.agent,
            created_at=now,
            updated_at=now,
        )
    body = client_for(org.agent).get("/field/").content.decode()
    assert "Hello Agent" in body
    assert 'href="/field/tasks/"' in body and '<span class="n">2</span> My tasks' in body
    assert 'rel="manifest" href="/field/manifest.webmanifest"' in body
    assert 'id="fa-queue"' in body  # the queue indicator is on every field page


def test_search_finds_by_name_phone_account_and_meter_serial(org, client_for, grid):
    agent = client_for(org.agent)
    grace, meter = grid["grace"], grid["meter"]
    for query in ("Nakato", "0772100001", grace.account_number, meter.serial[-6:]):
        body = agent.get("/field/search/", {"q": query}).content.decode()
        assert f'href="/field/customers/{grace.pk}/"' in body, query
    partial = agent.get("/field/search/", {"q": "Nakato"}, HTTP_HX_REQUEST="true")
    assert "<h1>" not in partial.content.decode()
    assert "No customer matches" in agent.get("/field/search/", {"q": "Nobody"}).content.decode()


def test_search_shows_only_the_agents_own_sites(org, client_for, grid):
    body = client_for(org.outsider_agent).get("/field/search/", {"q": "Nakato"}).content.decode()
    assert "No customer matches" in body


# --- the customer card ---------------------------------------------------------------------------


def test_the_card_shows_balance_usage_and_meter_status(org, client_for, grid):
    grace, meter, now = grid["grace"], grid["meter"], grid["now"]
    yesterday = now - dt.timedelta(days=1)
    feed(meter, grid["gateway"], [(yesterday, 100.0), (yesterday + dt.timedelta(hours=2), 103.5)])
    with acting_as(org.agent):
        payments.record_cash(customer=grace, amount="2000", agent=org.agent)
    MeterState.objects.create(meter=meter, relay="off", relay_read_at=now, relay_source="test")
    body = client_for(org.agent).get(f"/field/customers/{grace.pk}/").content.decode()
    assert 'Relay <strong class="fa-warn">off</strong>' in body
    assert "2,000 UGX</span> credit" in body
    print(body[body.find("Usage") : body.find("Usage") + 900])
    assert "3.5 kWh in the last 14 days" in body and "<svg" in body
    assert meter.serial in body and "Last reading" in body
    assert f'href="/field/meters/{meter.pk}/read/"' in body
    assert f'href="/field/customers/{grace.pk}/pay/"' in body


def test_the_card_of_another_sites_customer_is_not_found(org, client_for, grid):
    grace = grid["grace"]
    agent = client_for(org.outsider_agent)
    assert agent.get(f"/field/customers/{grace.pk}/").status_code == 404
    assert agent.post(f"/field/customers/{grace.pk}/pay/", {"amount": "5"}).status_code == 404
    assert agent.get(f"/field/meters/{grid['meter'].pk}/read/").status_code == 404
    assert agent.get(f"/field/meters/{grid['meter'].pk}/install/").status_code == 404


# --- cash and the receipt ------------------------------------------------------------------------


def test_cash_is_recorded_through_payments_and_the_receipt_shown(org, client_for, grid):
    agent = client_for(org.agent)
    grace = grid["grace"]
    response = agent.post(
        f"/field/customers/{grace.pk}/pay/", {"amount": "15000", "client_id": str(uuid.uuid4())}
    )
    payment = Payment.objects.get()
    assert (payment.amount, payment.method, payment.agent) == (Decimal("15000"), "cash", org.agent)
    page = agent.get(response.url).content.decode()
    assert payment.receipt_number in page and "15,000 UGX" in page
    assert f'href="/payments/{payment.pk}/receipt.pdf"' in page
    assert agent.get(f"/payments/{payment.pk}/receipt.pdf")["Content-Type"] == "application/pdf"
    event = AuditEvent.objects.get(object_type="payments.payment")
    assert event.actor == org.agent and event.channel == "agent_app"
    # Someone else's receipt is not shown to an agent of another site.
    assert client_for(org.outsider_agent).get(response.url).status_code == 403


# --- registering a customer ----------------------------------------------------------------------


def register(client, client_id=None, **fields):
    data = {"first_name": "Moses", "last_name": "Okello", "phone": "0772 555 001"}
    data.update(fields)
    if client_id:
        data["client_id"] = str(client_id)
    return client.post("/field/customers/new/", data)


def test_registering_a_customer_once_per_form(org, client_for):
    package = ServicePackage.objects.create(code="home", name="Home", load_limit_w=500)
    agent = client_for(org.agent)
    form_id = uuid.uuid4()
    first = register(agent, form_id, site=org.block_a.pk, package=package.pk)
    customer = Customer.objects.get(last_name="Okello")
    assert first.url == f"/field/customers/{customer.pk}/"
    assert (customer.site, customer.package, customer.phone) == (
        org.block_a,
        package,
        "+256772555001",
    )
    register(agent, form_id, site=org.block_a.pk)
    assert Customer.objects.filter(last_name="Okello").count() == 1


def test_a_shared_phone_needs_the_agent_to_confirm(org, client_for):
    factories.customer(org.block_a, phone="+256772555001")
    agent = client_for(org.agent)
    refused = register(agent, site=org.block_a.pk)
    body = refused.content.decode()
    assert refused.status_code == 200 and "also used by account" in body
    assert 'value="Moses"' in body  # what was typed is kept
    assert not Customer.objects.filter(first_name="Moses").exists()
    register(agent, site=org.block_a.pk, phone_ok="on")
    assert Customer.objects.filter(first_name="Moses").exists()


def test_an_agent_registers_only_on_their_own_sites(org, client_for):
    response = register(client_for(org.agent), site=org.jinja_town.pk)
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not Customer.objects.filter(first_name="Moses").exists()


# --- changing a package --------------------------------------------------------------------------


def test_changing_a_package_updates_the_account_audited(org, client_for, grid):
    small = ServicePackage.objects.create(code="small", name="Small", load_limit_w=300)
    grace = grid["grace"]
    client_for(org.agent).post(
        f"/field/customers/{grace.pk}/package/", {"package": small.pk, "client_id": uuid.uuid4()}
    )
    grace.refresh_from_db()
    assert grace.package == small
    event = AuditEvent.objects.filter(object_type="customers.customer", action="update").last()
    assert event.actor == org.agent and event.after["package"] == small.pk


def test_a_package_the_customer_asked_for_resolves_their_request(org, client_for, grid):
    big = ServicePackage.objects.create(code="big", name="Business", load_limit_w=2000)
    grace = grid["grace"]
    with acting_as(label="portal"):
        request = customer_services.service_request_create(
            customer=grace, kind="package_change", requested_package=big
        )
    client_for(org.agent).post(f"/field/customers/{grace.pk}/package/", {"package": big.pk})
    grace.refresh_from_db()
    request.refresh_from_db()
    assert grace.package == big and request.status == ServiceRequest.Status.RESOLVED


# --- a reading by hand ---------------------------------------------------------------------------


def reading_form(meter, now, energy, client_id=None, **extra):
    local = now.astimezone(meter.site.zone) - dt.timedelta(minutes=5)
    data = {
        "energy_kwh": energy,
        "read_at": local.strftime("%Y-%m-%dT%H:%M"),
        "photo": SimpleUploadedFile("display.png", png(), content_type="image/png"),
        **extra,
    }
    if client_id:
        data["client_id"] = str(client_id)
    return data


def test_a_hand_reading_with_a_photo_is_stored_once(org, client_for, grid, photos):
    meter, now = grid["meter"], grid["now"]
    agent = client_for(org.agent)
    form_id = uuid.uuid4()
    first = agent.post(f"/field/meters/{meter.pk}/read/", reading_form(meter, now, "42.5", form_id))
    assert first.url == f"/field/customers/{grid['grace'].pk}/"
    again = agent.post(f"/field/meters/{meter.pk}/read/", reading_form(meter, now, "42.5", form_id))
    assert again.url == first.url
    manual = ManualReading.objects.get()
    assert manual.energy_kwh == Decimal("42.500") and manual.photo and manual.read_by == org.agent
    assert Reading.objects.get(meter=meter).energy_kwh == Decimal("42.500")


def test_a_reading_form_without_a_photo_or_in_the_future_is_refused(org, client_for, grid, photos):
    meter, now = grid["meter"], grid["now"]
    agent = client_for(org.agent)
    data = reading_form(meter, now, "42.5")
    del data["photo"]
    body = agent.post(f"/field/meters/{meter.pk}/read/", data).content.decode()
    assert "This field is required" in body and 'value="42.5"' in body
    future = reading_form(meter, now + dt.timedelta(hours=2), "42.5")
    body = agent.post(f"/field/meters/{meter.pk}/read/", future).content.decode()
    assert "cannot be in the future" in body
    assert not ManualReading.objects.exists()


# --- the install checklist -----------------------------------------------------------------------


@pytest.fixture
def shipped(org):
    with acting_as(label="test setup"):
        gateway = meter_services.gateway_create(site=org.block_a, name="kla-a-2")
        meter = factories.assigned_meter(org.block_a, 23)
        for step in (Status.CONVERTED, Status.SHIPPED):
            meter = meter_services.meter_move(meter=meter, status=step)
    return meter, gateway


def install(client, meter, gateway, **fields):
    data = {"serial": meter.serial, "address_label": 23, "gateway": gateway.pk}
    data.update(fields)
    return client.post(f"/field/meters/{meter.pk}/install/", data)


def test_the_checklist_refuses_a_wrong_serial_or_label(org, client_for, shipped):
    meter, gateway = shipped
    agent = client_for(org.agent)
    body = install(agent, meter, gateway, serial="200300000000").content.decode()
    assert "is not this meter" in body
    body = install(agent, meter, gateway, address_label=24).content.decode()
    assert "planned at address 23" in body and "Do not install" in body
    meter.refresh_from_db()
    assert meter.status == Status.SHIPPED and not BusSlot.objects.filter(meter=meter).exists()


def test_marking_installed_puts_the_meter_on_the_bus_for_commissioning(
    org, client_for, shipped, photos
):
    meter, gateway = shipped
    agent = client_for(org.agent)
    listed = agent.get("/field/install/").content.decode()
    assert f'href="/field/meters/{meter.pk}/install/"' in listed
    photo = SimpleUploadedFile("pole.png", png(), content_type="image/png")
    response = install(agent, meter, gateway, serial=f" {meter.serial} ", photo=photo)
    assert response.url == "/field/install/"
    meter.refresh_from_db()
    assert meter.status == Status.INSTALLED and meter.gateway == gateway
    slot = BusSlot.objects.get(meter=meter, end__isnull=True)
    assert (slot.gateway, slot.address) == (gateway, 23)
    event = meter.events.get(to_status=Status.INSTALLED)
    assert event.by == org.agent and "serial and address label checked" in event.note
    assert "photo fieldops/installs/" in event.note
    # Already installed: the checklist says so and nothing moves again.
    assert (
        "is installed: only a meter shipped to the site is installed"
        in install(agent, meter, gateway).content.decode()
    )


def test_a_meter_not_yet_shipped_is_not_installed_from_the_field(org, client_for):
    with acting_as(label="test setup"):
        gateway = meter_services.gateway_create(site=org.block_a, name="kla-a-3")
        meter = factories.assigned_meter(org.block_a, 24)  # still in the workshop, address 1
    body = install(client_for(org.agent), meter, gateway, address_label=24).content.decode()
    assert "is assigned: only a meter shipped" in body
    meter.refresh_from_db()
    assert meter.status == Status.ASSIGNED


def test_only_field_roles_of_the_site_install(org, client_for, shipped):
    meter, gateway = shipped
    assert install(client_for(org.billing), meter, gateway).status_code == 403
    meter.refresh_from_db()
    assert meter.status == Status.SHIPPED


# --- installable app -----------------------------------------------------------------------------


def test_manifest_service_worker_and_icons_are_served_with_their_types(org, client_for):
    client = client_for(org.agent)
    manifest = client.get("/field/manifest.webmanifest")
    assert manifest["Content-Type"] == "application/manifest+json"
    data = manifest.json()
    assert data["start_url"] == "/field/" and data["display"] == "standalone"
    for icon in data["icons"]:
        png_response = client.get(icon["src"])
        assert png_response["Content-Type"] == "image/png"
        assert png_response.content.startswith(b"\x89PNG")
        size = int(icon["sizes"].split("x")[0])
        assert Image.open(io.BytesIO(png_response.content)).size == (size, size)
    sw = client.get("/field/sw.js")
    assert sw["Content-Type"].startswith("application/javascript")
    assert sw["Service-Worker-Allowed"] == "/field/"
    body = sw.content.decode()
    assert '"/static/mcoms/fieldapp.js"' in body and 'addEventListener("fetch"' in body


def test_a_value_that_does_not_fit_is_refused_or_sent_for_review(org, client_for, grid, photos):
    meter, now = grid["meter"], grid["now"]
    feed(meter, grid["gateway"], [(now - dt.timedelta(hours=3), 500.0)])
    agent = client_for(org.agent)
    body = agent.post(f"/field/meters/{meter.pk}/read/", reading_form(meter, now, "400")).content
    assert "went backwards" in body.decode() and "send for review" in body.decode()
    assert not ManualReading.objects.exists()
    agent.post(f"/field/meters/{meter.pk}/read/", reading_form(meter, now, "400", review="on"))
    manual = ManualReading.objects.get()
    assert manual.status == ManualReading.Status.FLAGGED
    assert Reading.objects.get(meter=meter, ts=manual.read_at).quality == "flagged"
    card = agent.get(f"/field/customers/{grid['grace'].pk}/").content.decode()
    assert "400.000 kWh (waiting for review)" in card
