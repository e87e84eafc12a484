"""Billing asks, steering decides: supply requests reach the steering rules and come back closed."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from billing import supply
from billing.models import SupplyRequest
from billing.supply_tasks import sync_supply_outcomes
from mcoms.core.audit import acting_as
from metering import services as meter_services
from metering.steering import services as steering
from metering.steering.models import Command, FieldJob, SiteSteering
from notifications import catalog
from notifications.models import Message
from tests import factories

Status = SupplyRequest.Status


def _levels(site, level: int) -> None:
    rules = SiteSteering.for_site(site)
    rules.autonomy = level
    rules.save()


@pytest.fixture
def metered(org):
    """A customer on a CHINT meter (no relay: disconnection is a field job)."""
    customer = factories.customer(org.block_a, first_name="Bosco")
    meter = factories.assigned_meter(org.block_a, 21)
    with acting_as(label="test setup"):
        meter_services.meter_serve_customer(
            meter=meter, customer=customer, now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        )
    catalog.install_defaults()
    return customer


def _command(req: SupplyRequest) -> Command:
    return Command.objects.get(source_ref=supply.source_ref(req))


def test_a_request_becomes_a_command_and_closes_when_the_field_job_is_done(
    org, metered, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path
    _levels(org.block_a, 3)
    with django_capture_on_commit_callbacks(execute=True), acting_as(label="prepaid"):
        req = supply.request(customer=metered, action="disconnect", reason="prepaid_empty")
    command = _command(req)
    assert command.action == "disconnect" and command.reason == "prepaid_empty"

    assert sync_supply_outcomes.delay().get() == {"done": 0, "refused": 0, "cancelled": 0}
    req.refresh_from_db()
    assert req.status == Status.REQUESTED  # steering not finished yet

    job = FieldJob.objects.get(command=command)
    photo = SimpleUploadedFile("seal.jpg", b"\xff\xd8jpeg", content_type="image/jpeg")
    with acting_as(org.agent):
        steering.field_job_complete(job=job, by=org.agent, seal_number="S-0042", photo=photo)

    with django_capture_on_commit_callbacks(execute=True):
        assert sync_supply_outcomes.delay().get()["done"] == 1
    req.refresh_from_db()
    assert req.status == Status.DONE and req.closed_at is not None
    told = Message.objects.get(template_key="disconnected", to=metered.phone)
    assert metered.first_name in told.body


def test_steering_refusing_a_critical_load_closes_the_request_as_refused(org, metered):
    _levels(org.block_a, 3)
    metered.critical_load = True
    metered.save()
    with acting_as(label="prepaid"):
        req = supply.request(customer=metered, action="disconnect", reason="prepaid_empty")
    assert _command(req).status == Command.Status.REFUSED

    supply.sync_outcomes()
    req.refresh_from_db()
    assert req.status == Status.REFUSED and "critical" in req.outcome.lower()
    assert not Message.objects.filter(template_key="disconnected").exists()


def test_a_person_rejecting_the_command_refuses_the_request(org, metered):
    _levels(org.block_a, 2)
    with acting_as(label="collections"):
        req = supply.request(customer=metered, action="disconnect", reason="prepaid_empty")
    command = _command(req)
    assert command.status == Command.Status.PENDING_APPROVAL
    with acting_as(org.site_manager):
        steering.reject(command=command, by=org.site_manager, note="Customer promised to pay")

    supply.sync_outcomes()
    req.refresh_from_db()
    assert req.status == Status.REFUSED and "promised" in req.outcome


def test_a_customer_without_a_meter_is_noted_and_kept_open(org):
    customer = factories.customer(org.block_a)
    with acting_as(label="prepaid"):
        req = supply.request(customer=customer, action="disconnect", reason="prepaid_empty")
    req.refresh_from_db()
    assert req.status == Status.REQUESTED
    assert req.outcome.startswith("Not steered") and "no meter" in req.outcome
    assert not Command.objects.exists()
