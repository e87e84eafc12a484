"""The steering rules: reasons, critical loads, notice, working hours, autonomy, cap, overrides."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from mcoms.core.audit import acting_as
from mcoms.core.models import AuditEvent, PublicHoliday
from metering.steering import engine, services
from metering.steering.models import Command, CriticalLoad, FieldJob, MeterState
from tests import factories
from tests.metering.steering.conftest import T0, autonomy

S = Command.Status
CONTROL = "/COMM_RemoteControl"
HOUR = dt.timedelta(hours=1)


def ask(grid, action="disconnect", reason="prepaid_empty", *, now=T0, meter=None, **kwargs):
    return services.submit(
        customer_id=None if meter else grid.customer.pk,
        meter=meter,
        action=action,
        reason=reason,
        now=now,
        **kwargs,
    )


def finish(command, start=T0, limit=7200):
    t = 0
    while t <= limit:
        engine.sweep(now=start + dt.timedelta(seconds=t))
        command.refresh_from_db()
        if not command.is_open:
            return
        t += 15
    raise AssertionError(command.status)


def test_every_command_needs_a_known_reason(grid):
    with pytest.raises(ValidationError, match="known reason"):
        ask(grid, reason="because")
    with pytest.raises(ValidationError, match="Only a person"):
        ask(grid, force=True)


def test_level_2_waits_for_a_person_then_goes(fake, grid, org):
    command = ask(grid)
    assert command.status == S.PENDING_APPROVAL and "level 2" in command.decision
    assert engine.sweep(now=T0 + HOUR) == 0 and fake.calls(CONTROL) == []
    with acting_as(org.site_manager):
        services.approve(command=command, by=org.site_manager, now=T0 + HOUR)
    command.refresh_from_db()
    assert command.status == S.WAITING and command.approved_by == org.site_manager
    finish(command, start=T0 + HOUR)
    assert command.status == S.DONE and len(fake.calls(CONTROL)) == 1
    event = AuditEvent.objects.filter(object_type="steering.command", note__startswith="approved")
    assert event.get().actor == org.site_manager


def test_level_3_acts_alone(fake, grid, org):
    autonomy(org.block_a, 3)
    command = ask(grid)
    assert command.status == S.WAITING and command.decided_by == "steering policy"


def test_a_person_can_reject_with_a_reason(grid, org):
    command = ask(grid)
    with pytest.raises(ValidationError):
        services.reject(command=command, by=org.site_manager, note=" ")
    services.reject(command=command, by=org.site_manager, note="customer paid in cash")
    command.refresh_from_db()
    assert command.status == S.REJECTED and command.decided_by == "site_manager"
    assert "customer paid in cash" in command.decision


def test_critical_loads_are_never_disconnected_automatically(fake, grid, org):
    autonomy(org.block_a, 3)
    CriticalLoad.objects.create(meter=grid.calin, set_at=T0, note="health centre")
    command = ask(grid, source="billing")
    assert command.status == S.REFUSED
    assert "critical load" in command.decision
    # a person asking still needs a second look; forcing is a human override
    staff = ask(grid, source="staff", requested_by=org.site_manager)
    assert staff.status == S.PENDING_APPROVAL
    forced = services.force(
        meter=grid.calin,
        action="disconnect",
        reason="safety",
        by=org.site_manager,
        note="burning cable",
        now=T0,
    )
    assert forced.status == S.WAITING and forced.forced
    assert "forced by site_manager" in forced.decision
    staff.refresh_from_db()
    assert staff.status == S.CANCELLED  # superseded by the override


def test_the_customers_critical_flag_counts_too(grid, org):
    autonomy(org.block_a, 3)
    grid.customer.critical_load = True
    grid.customer.save()
    assert ask(grid).status == S.REFUSED


def test_arrears_only_after_the_notice_period(grid, org):
    autonomy(org.block_a, 3)
    no_notice = ask(grid, reason="arrears")
    assert no_notice.status == S.REFUSED and "without a notice" in no_notice.decision
    early = ask(grid, reason="arrears", notice_ends_at=T0 + HOUR)
    assert early.status == S.REFUSED and "notice period runs until" in early.decision
    due = ask(grid, reason="arrears", notice_ends_at=T0 - HOUR)
    assert due.status == S.WAITING


def test_arrears_disconnections_wait_for_working_hours_in_the_sites_time(fake, grid, org):
    autonomy(org.block_a, 3)
    saturday = dt.datetime(2026, 4, 11, 7, 0, tzinfo=dt.UTC)  # 10:00 in Kampala
    PublicHoliday.objects.create(site=org.block_a, date=dt.date(2026, 4, 13), name="Holiday")
    command = ask(grid, reason="arrears", notice_ends_at=saturday - HOUR, now=saturday)
    engine.sweep(now=saturday)
    command.refresh_from_db()
    # Monday is a holiday: Tuesday 08:00 Kampala is 05:00 UTC.
    assert command.status == S.WAITING
    assert command.next_attempt_at == dt.datetime(2026, 4, 14, 5, 0, tzinfo=dt.UTC)
    assert "outside working hours" in command.last_error and fake.calls(CONTROL) == []
    assert engine.sweep(now=dt.datetime(2026, 4, 14, 4, 59, tzinfo=dt.UTC)) == 0
    engine.sweep(now=dt.datetime(2026, 4, 14, 5, 0, tzinfo=dt.UTC))
    command.refresh_from_db()
    assert command.status == S.SENT


def test_an_exhausted_prepaid_balance_is_not_held_to_office_hours(fake, grid, org):
    autonomy(org.block_a, 3)
    night = dt.datetime(2026, 4, 11, 20, 0, tzinfo=dt.UTC)
    command = ask(grid, now=night)
    engine.sweep(now=night)
    command.refresh_from_db()
    assert command.status == S.SENT


def test_disconnections_per_site_per_hour_are_capped(fake, grid, org):
    autonomy(org.block_a, 3, max_disconnections_per_hour=2)
    meters = [factories.assigned_meter(org.block_a, 30 + n, model="CALIN") for n in range(3)]
    commands = [ask(grid, meter=m) for m in meters]
    engine.sweep(now=T0)
    for c in commands:
        c.refresh_from_db()
    assert [c.status for c in commands].count(S.SENT) == 2
    waiting = next(c for c in commands if c.status == S.WAITING)
    assert waiting.next_attempt_at == T0 + HOUR and "rate limit" in waiting.last_error
    # safety is never held back by the cap
    safety = ask(grid, meter=grid.calin, reason="safety")
    engine.sweep(now=T0)
    safety.refresh_from_db()
    assert safety.status == S.SENT
    engine.sweep(now=T0 + HOUR)
    waiting.refresh_from_db()
    assert waiting.status == S.SENT


def test_blocking_automation_refuses_automatic_commands_but_not_people(grid, org):
    autonomy(org.block_a, 3)
    pending = ask(grid, reason="tamper")
    services.block_automation(
        meter=grid.calin, blocked=True, by=org.site_manager, note="dispute under review"
    )
    pending.refresh_from_db()
    assert pending.status == S.CANCELLED
    refused = ask(grid)
    assert refused.status == S.REFUSED and "dispute under review" in refused.decision
    forced = services.force(
        meter=grid.calin,
        action="disconnect",
        reason="tamper",
        by=org.site_manager,
        note="seal broken",
        now=T0,
    )
    assert forced.status == S.WAITING
    services.block_automation(meter=grid.calin, blocked=False, by=org.site_manager)
    assert AuditEvent.objects.filter(object_type="steering.meteroverride").count() == 2


def _disconnected_for(fake, grid, reason):
    command = ask(grid, reason=reason)
    finish(command)
    assert command.status == S.DONE


def test_reconnection_on_payment_when_policy_allows(fake, grid, org):
    autonomy(org.block_a, 3)
    _disconnected_for(fake, grid, "prepaid_empty")
    back = ask(grid, action="reconnect", reason="paid", now=T0 + 2 * HOUR)
    assert back.status == S.WAITING
    finish(back, start=T0 + 2 * HOUR)
    assert back.status == S.DONE and MeterState.objects.get(meter=grid.calin).relay == "on"


def test_no_reconnection_on_payment_after_tamper_without_a_person(fake, grid, org):
    autonomy(org.block_a, 3)
    _disconnected_for(fake, grid, "tamper")
    back = ask(grid, action="reconnect", reason="paid", now=T0 + 2 * HOUR)
    assert back.status == S.PENDING_APPROVAL and "tamper" in back.decision


def test_a_site_can_require_a_person_for_reconnection_on_payment(grid, org):
    autonomy(org.block_a, 3, reconnect_on_payment=False)
    back = ask(grid, action="reconnect", reason="paid")
    assert back.status == S.PENDING_APPROVAL


def test_asking_twice_gives_the_same_command_and_the_opposite_supersedes(grid, org):
    first = ask(grid)
    assert ask(grid).pk == first.pk
    back = ask(grid, action="reconnect", reason="paid")
    first.refresh_from_db()
    assert first.status == S.CANCELLED and "superseded" in first.decision
    assert back.status == S.PENDING_APPROVAL


def test_meters_without_relay_get_a_field_job_instead(fake, grid, org):
    autonomy(org.block_a, 3)
    command = services.submit(
        customer_id=grid.chint_customer.pk,
        meter=None,
        action="disconnect",
        reason="prepaid_empty",
        now=T0,
    )
    engine.sweep(now=T0)
    command.refresh_from_db()
    assert command.status == S.FIELD
    job = FieldJob.objects.get(command=command)
    assert job.breaker == FieldJob.Breaker.OPENED and job.status == FieldJob.Status.OPEN
    assert fake.requests == []  # nothing goes to the head-end


def test_the_caller_finds_the_outcome_by_its_reference(fake, grid, org):
    autonomy(org.block_a, 3)
    assert services.outcome_of("supplyrequest:1") is None
    command = ask(grid, source_ref="supplyrequest:1")
    assert services.outcome_of("supplyrequest:1")["finished"] is False
    finish(command)
    result = services.outcome_of("supplyrequest:1")
    assert result["done"] and result["relay"] == "off" and result["command"] == command.pk
    refused = ask(grid, reason="arrears", source_ref="supplyrequest:2")
    result = services.outcome_of("supplyrequest:2")
    assert result["finished"] and not result["done"] and "notice" in result["why"]
    assert refused.status == S.REFUSED
