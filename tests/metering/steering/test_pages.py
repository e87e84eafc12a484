"""Steering pages: commands with approve/reject, a meter's steering page, field jobs, rules."""

from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from mcoms.core.models import AuditEvent
from metering.steering import engine, services
from metering.steering.models import (
    Command,
    CriticalLoad,
    FieldJob,
    MeterOverride,
    MeterState,
    SiteSteering,
)
from tests.metering.steering.conftest import T0, autonomy

S = Command.Status
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


def pending(grid):
    return services.submit(
        customer_id=grid.customer.pk,
        meter=None,
        action="disconnect",
        reason="prepaid_empty",
        now=T0,
    )


def test_commands_page_lists_what_waits_and_lets_managers_approve(grid, org, client_for):
    command = pending(grid)
    page = client_for(org.site_manager).get(reverse("steering:commands"))
    assert page.status_code == 200
    body = page.content.decode()
    assert grid.calin.serial in body and "Approve" in body and "level 2" in body
    response = client_for(org.site_manager).post(reverse("steering:approve", args=[command.pk]))
    assert response.status_code == 302
    command.refresh_from_db()
    assert command.status == S.WAITING and command.approved_by == org.site_manager
    assert AuditEvent.objects.filter(
        object_type="steering.command", actor=org.site_manager, note__startswith="approved"
    ).exists()
    body = client_for(org.site_manager).get(reverse("steering:commands")).content.decode()
    assert "Waiting for its time" in body


def test_field_agents_see_but_cannot_approve(grid, org, client_for):
    command = pending(grid)
    agent = client_for(org.agent)
    body = agent.get(reverse("steering:commands")).content.decode()
    assert grid.calin.serial in body and "Approve" not in body
    assert agent.post(reverse("steering:approve", args=[command.pk])).status_code == 403
    command.refresh_from_db()
    assert command.status == S.PENDING_APPROVAL


def test_other_sites_do_not_see_the_command(grid, org, client_for):
    command = pending(grid)
    body = client_for(org.outsider_agent).get(reverse("steering:commands")).content.decode()
    assert grid.calin.serial not in body
    response = client_for(org.outsider_agent).post(reverse("steering:reject", args=[command.pk]))
    assert response.status_code == 404


def test_rejecting_needs_a_reason(grid, org, client_for):
    command = pending(grid)
    client = client_for(org.site_manager)
    response = client.post(reverse("steering:reject", args=[command.pk]), {"note": ""}, follow=True)
    assert "Say why" in response.content.decode()
    command.refresh_from_db()
    assert command.status == S.PENDING_APPROVAL
    client.post(reverse("steering:reject", args=[command.pk]), {"note": "paid in cash"})
    command.refresh_from_db()
    assert command.status == S.REJECTED


def test_meter_page_shows_relay_and_status_code_with_field_action(grid, org, client_for):
    MeterState.objects.create(
        meter=grid.calin,
        relay="off",
        relay_read_at=T0,
        relay_source="remote reading",
        status_code="1007",
    )
    body = client_for(org.agent).get(reverse("steering:meter", args=[grid.calin.pk])).content
    body = body.decode()
    assert "Off (disconnected)" in body and "Remote disconnect" in body
    assert "Confirm the head-end instruction; reconnect if it was not intended." in body
    assert "Force" not in body  # agents do not override


def test_managers_flag_critical_loads_block_automation_and_force(fake, grid, org, client_for):
    client = client_for(org.site_manager)
    url = lambda name: reverse(name, args=[grid.calin.pk])  # noqa: E731
    client.post(url("steering:critical"), {"on": "on", "note": "clinic"})
    assert CriticalLoad.objects.get(meter=grid.calin).note == "clinic"
    client.post(url("steering:block"), {"on": "on", "note": "disputed bill"})
    assert MeterOverride.objects.get(meter=grid.calin).set_by == org.site_manager
    client.post(
        url("steering:force"), {"action": "disconnect", "reason": "safety", "note": "exposed wires"}
    )
    forced = Command.objects.get(meter=grid.calin, forced=True)
    assert forced.status == S.WAITING and forced.requested_by == org.site_manager
    body = client.get(url("steering:meter")).content.decode()
    assert "clinic" in body and "disputed bill" in body and "forced" in body
    client.post(url("steering:critical"), {"note": "moved"})
    assert not CriticalLoad.objects.filter(meter=grid.calin).exists()
    assert client_for(org.agent).post(url("steering:block"), {"on": "on"}).status_code == 403


def _field_job(grid, org):
    autonomy(org.block_a, 3)
    command = services.submit(
        customer_id=grid.chint_customer.pk,
        meter=None,
        action="disconnect",
        reason="prepaid_empty",
        now=T0,
    )
    engine.sweep(now=T0)
    return FieldJob.objects.get(command=command)


def test_an_agent_completes_a_field_job_with_seal_and_photo(
    grid, org, client_for, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    job = _field_job(grid, org)
    agent = client_for(org.agent)
    assert "Breaker opened" in agent.get(reverse("steering:field_jobs")).content.decode()
    url = reverse("steering:field_job", args=[job.pk])
    missing = agent.post(url, {"seal_number": "S-0042", "done": "on"})
    assert missing.status_code == 200 and "This field is required" in missing.content.decode()
    job.refresh_from_db()
    assert job.status == FieldJob.Status.OPEN
    photo = SimpleUploadedFile("breaker.png", PNG, content_type="image/png")
    response = agent.post(url, {"seal_number": "S-0042", "done": "on", "photo": photo})
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == FieldJob.Status.DONE and job.seal_number == "S-0042"
    assert job.completed_by == org.agent and job.photo.name.endswith(".png")
    job.command.refresh_from_db()
    assert job.command.status == S.DONE and job.command.confirmed_relay == "off"
    assert MeterState.objects.get(meter=grid.chint).relay_source == f"field job {job.pk}"
    assert client_for(org.outsider_agent).get(url).status_code == 404


def test_a_manager_cancels_a_field_job(grid, org, client_for):
    job = _field_job(grid, org)
    client_for(org.site_manager).post(
        reverse("steering:field_job_cancel", args=[job.pk]), {"note": "customer paid"}
    )
    job.refresh_from_db()
    assert job.status == FieldJob.Status.CANCELLED
    assert job.command.status == S.CANCELLED


def test_site_rules_page_sets_the_autonomy_level(org, client_for):
    url = reverse("steering:site_settings", args=[org.block_a.pk])
    client = client_for(org.site_manager)
    assert client.get(url).status_code == 200
    client.post(
        url,
        {
            "autonomy": 3,
            "max_disconnections_per_hour": 4,
            "work_from": "07:30",
            "work_until": "16:00",
            "reconnect_on_payment": "on",
        },
    )
    rules = SiteSteering.objects.get(site=org.block_a)
    assert rules.autonomy == 3 and rules.max_disconnections_per_hour == 4
    assert not rules.weekdays_only
    assert AuditEvent.objects.filter(object_type="steering.sitesteering").exists()
    assert client_for(org.agent).get(url).status_code == 403


def test_managers_ask_a_calin_meter_for_a_value(fake, grid, org, client_for):
    url = reverse("steering:read", args=[grid.calin.pk])
    response = client_for(org.site_manager).post(url, {"data_item": "Voltage"}, follow=True)
    assert "Asked the meter for Voltage" in response.content.decode()
    assert fake.calls("/COMM_RemoteReading")[0]["DataItem"] == "Voltage"
    assert client_for(org.agent).post(url, {"data_item": "Voltage"}).status_code == 403


def test_a_meter_never_heard_from_shows_no_made_up_values(grid, org, client_for):
    body = client_for(org.agent).get(reverse("steering:meter", args=[grid.chint.pk]))
    text = body.content.decode()
    assert "not known yet" in text and "Credit register" not in text and "Breaker" in text
