"""Steering's public face: ask for a disconnection or reconnection, and the human controls.

:func:`submit` is how billing, collections and staff ask; the rules of
:mod:`metering.steering.policy` decide and every decision is audited with who or what
decided and why. People approve or reject what waits for them, force a command past
the rules (a human override), block automation on a meter, flag critical loads, and
complete the field jobs of meters without relay.
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction

from customers.models import Customer
from mcoms.core import audit, clock, outbox
from mcoms.core.models import AuditEvent, User
from metering import selectors as meter_selectors
from metering.models import Meter
from metering.steering import engine, policy
from metering.steering.models import (
    Command,
    CriticalLoad,
    FieldJob,
    MeterOverride,
    SiteSteering,
)

S = Command.Status
_OPPOSITE = {
    Command.Action.DISCONNECT: Command.Action.RECONNECT,
    Command.Action.RECONNECT: Command.Action.DISCONNECT,
}


def _label(user: User | None, source: str) -> str:
    return user.get_username() if user is not None and user.pk else f"policy ({source})"


def is_critical(meter: Meter, customer: Customer | None) -> bool:
    """A critical load by the meter's own flag or the customer's."""
    if customer is not None and customer.critical_load:
        return True
    return CriticalLoad.objects.filter(meter=meter).exists()


def _last_disconnect_reason(meter: Meter) -> str | None:
    last = (
        Command.objects.filter(meter=meter, action=Command.Action.DISCONNECT, status=S.DONE)
        .order_by("-finished_at", "-id")
        .values_list("reason", flat=True)
        .first()
    )
    return last


def _resolve_meter(customer: Customer | None, meter: Meter | None) -> Meter:
    if meter is not None:
        return meter
    if customer is None:
        raise ValidationError("Say which meter or which customer.")
    found = meter_selectors.meters_of_customer(customer).order_by("pk").first()
    if found is None:
        raise ValidationError(f"Customer {customer.account_number} has no meter to steer.")
    return found


@transaction.atomic
def submit(
    *,
    customer_id: int | None,
    meter: Meter | None,
    action: str,
    reason: str,
    source: str = "billing",
    requested_by: User | None = None,
    note: str = "",
    source_ref: str = "",
    notice_ends_at: dt.datetime | None = None,
    force: bool = False,
    now: dt.datetime | None = None,
) -> Command:
    """Ask to disconnect or reconnect; the rules decide, the answer is the command row.

    ``meter`` may be None: the customer's current meter is used. An open command of the
    same action on the meter is returned as it is (asking twice does nothing new); an
    open, not yet sent command of the opposite action is cancelled as superseded.
    ``notice_ends_at`` is when the notice period the caller served ends (arrears).
    ``force`` is a person's override: only with ``requested_by``.
    The command's ``status`` says what became of it: ``pending_approval``, ``refused``
    (``decision`` says why), on its way (``waiting`` … ``confirming``, ``field``) or done.
    """
    now = clock.resolve(now)
    customer = Customer.objects.filter(pk=customer_id).first() if customer_id else None
    meter = _resolve_meter(customer, meter)
    if customer is None:
        customer = meter_selectors.current_customer(meter, at=now)
    if action not in Command.Action.values:
        raise ValidationError(f"Unknown action {action!r}.")
    if reason not in Command.Reason.values:
        raise ValidationError(f"Unknown reason {reason!r}: every command needs a known reason.")
    if force and requested_by is None:
        raise ValidationError("Only a person can force a command.")
    if meter.site_id is None:
        raise ValidationError(f"Meter {meter.serial} is on no site.")
    # One submit per meter at once (the lock queues the second).
    Meter.objects.select_for_update().filter(pk=meter.pk).order_by().values_list("pk").first()
    open_same = Command.objects.filter(meter=meter, action=action, status__in=Command.OPEN)
    existing = open_same.first()
    if existing is not None and not force:
        return existing
    for other in Command.objects.filter(meter=meter, status__in=(S.PENDING_APPROVAL, S.WAITING)):
        _close(other, S.CANCELLED, f"superseded by a {action} ({reason})", by=requested_by, now=now)
    # One the head-end never took (Calin unreachable) is not sent yet either: a payment's
    # reconnection cancels the unsent disconnection. The update is conditional, so an
    # attempt starting meanwhile (which writes send_started_at first) wins or loses whole.
    for other in Command.objects.filter(
        meter=meter, status=S.SENDING, send_started_at__isnull=True, task_no=""
    ).exclude(action=action):
        taken = Command.objects.filter(
            pk=other.pk, status=S.SENDING, send_started_at__isnull=True, task_no=""
        ).update(status=S.CANCELLED, finished_at=now, next_attempt_at=None)
        if taken:
            other.status = S.SENDING  # for the audit's "before"
            _close(
                other,
                S.CANCELLED,
                f"superseded by a {action} ({reason}) before the head-end took it",
                by=requested_by,
                now=now,
            )
    override = MeterOverride.objects.filter(meter=meter).first()
    facts = policy.Facts(
        action=action,
        reason=reason,
        source=source,
        forced=force,
        forced_by=_label(requested_by, source) if force else "",
        critical_load=is_critical(meter, customer),
        automation_blocked=override is not None,
        block_note=override.note if override else "",
        notice_ends_at=notice_ends_at,
        last_disconnect_reason=_last_disconnect_reason(meter),
    )
    decision = policy.decide(facts, SiteSteering.for_site(meter.site_id), now)
    status = {policy.GO: S.WAITING, policy.APPROVE: S.PENDING_APPROVAL, policy.REFUSE: S.REFUSED}[
        decision.outcome
    ]
    command = Command.objects.create(
        meter=meter,
        site_id=meter.site_id,
        customer=customer,
        action=action,
        reason=reason,
        source=source[:20],
        source_ref=source_ref[:80],
        note=note[:300],
        notice_ends_at=notice_ends_at,
        forced=force,
        status=status,
        decided_by=_label(requested_by, source) if force else "steering policy",
        decision=decision.why[:300],
        requested_by=requested_by,
        created_at=now,
        finished_at=now if status == S.REFUSED else None,
        next_attempt_at=now if status == S.WAITING else None,
    )
    audit.record(
        AuditEvent.Action.CREATE,
        command,
        after=audit.snapshot(command),
        site=meter.site_id,
        note=f"{action} for {reason} asked by {_label(requested_by, source)}: "
        f"{decision.outcome} — {decision.why}"[:300],
    )
    if status == S.WAITING:
        _start(command)
    return command


def _start(command: Command) -> None:
    """Take the first step after the decision commits (a task, or the sweeper)."""
    pk = command.pk
    from metering.steering import tasks

    # Bounded, never failing the caller; the steering sweep resumes it if the broker is down.
    outbox.publish(tasks.advance, (pk,))


def _close(command: Command, status: str, why: str, *, by: User | None, now: dt.datetime):
    before = audit.snapshot(command, ["status", "decided_by", "decision"])
    command.status = status
    command.decision = why[:300]
    command.decided_by = _label(by, command.source) if by else "steering policy"
    command.finished_at = now
    command.next_attempt_at = None
    command.save(
        update_fields=["status", "decision", "decided_by", "finished_at", "next_attempt_at"]
    )
    audit.record(
        AuditEvent.Action.TRANSITION,
        command,
        before=before,
        after=audit.snapshot(command, ["status", "decided_by", "decision"]),
        site=command.site_id,
        note=why[:300],
    )


@transaction.atomic
def approve(*, command: Command, by: User, note: str = "", now: dt.datetime | None = None):
    """A person lets a waiting command go ahead (working hours and the hourly cap still apply)."""
    now = clock.resolve(now)
    command = Command.objects.select_for_update().get(pk=command.pk)
    if command.status != S.PENDING_APPROVAL:
        raise ValidationError(
            f"This command is {command.get_status_display().lower()}, not waiting for approval."
        )
    before = audit.snapshot(command, ["status", "approved_by"])
    command.status = S.WAITING
    command.approved_by = by
    command.decided_by = by.get_username()
    command.decision = (f"approved by {by.get_username()}" + (f": {note}" if note else ""))[:300]
    command.next_attempt_at = now
    command.save(
        update_fields=["status", "approved_by", "decided_by", "decision", "next_attempt_at"]
    )
    audit.record(
        AuditEvent.Action.TRANSITION,
        command,
        before=before,
        after=audit.snapshot(command, ["status", "approved_by"]),
        site=command.site_id,
        note=command.decision,
    )
    _start(command)
    return command


@transaction.atomic
def reject(*, command: Command, by: User, note: str, now: dt.datetime | None = None):
    """A person turns down a waiting command; the reason is required."""
    if not note.strip():
        raise ValidationError("Say why the command is rejected.")
    command = Command.objects.select_for_update().get(pk=command.pk)
    if command.status not in (S.PENDING_APPROVAL, S.WAITING):
        raise ValidationError("Only a command not yet sent can be rejected.")
    _close(
        command,
        S.REJECTED,
        f"rejected by {by.get_username()}: {note}",
        by=by,
        now=clock.resolve(now),
    )
    return command


def force(
    *,
    meter: Meter,
    action: str,
    reason: str,
    by: User,
    note: str,
    now: dt.datetime | None = None,
) -> Command:
    """The human override: this command goes, past approval, hours, cap and flags."""
    if not note.strip():
        raise ValidationError("Say why you override the rules.")
    return submit(
        customer_id=None,
        meter=meter,
        action=action,
        reason=reason,
        source="staff",
        requested_by=by,
        note=note,
        force=True,
        now=now,
    )


@transaction.atomic
def set_critical(
    *, meter: Meter, critical: bool, by: User, note: str = "", now: dt.datetime | None = None
) -> None:
    """Flag (or unflag) the meter as supplying a critical load."""
    now = clock.resolve(now)
    found = CriticalLoad.objects.filter(meter=meter).first()
    if critical and found is None:
        flag = CriticalLoad.objects.create(meter=meter, note=note[:200], set_by=by, set_at=now)
        audit.record(
            AuditEvent.Action.CREATE,
            flag,
            after=audit.snapshot(flag),
            site=meter.site_id,
            note=f"critical load flagged: {note}"[:300],
        )
    elif not critical and found is not None:
        audit.record(
            AuditEvent.Action.DELETE,
            found,
            before=audit.snapshot(found),
            site=meter.site_id,
            note=f"critical load flag removed: {note}"[:300],
        )
        found.delete()


@transaction.atomic
def block_automation(
    *, meter: Meter, blocked: bool, by: User, note: str = "", now: dt.datetime | None = None
) -> None:
    """Stop (or allow again) automatic commands on the meter; open automatic ones are cancelled."""
    now = clock.resolve(now)
    found = MeterOverride.objects.filter(meter=meter).first()
    if blocked:
        if not note.strip():
            raise ValidationError("Say why automation is blocked on this meter.")
        if found is None:
            found = MeterOverride.objects.create(
                meter=meter, note=note[:300], set_by=by, set_at=now
            )
            audit.record(
                AuditEvent.Action.CREATE,
                found,
                after=audit.snapshot(found),
                site=meter.site_id,
                note=f"automation blocked: {note}"[:300],
            )
        waiting = Command.objects.filter(
            meter=meter,
            status__in=(S.PENDING_APPROVAL, S.WAITING),
            forced=False,
            source__in=policy.AUTOMATIC_SOURCES,
        )
        for command in waiting:
            _close(
                command, S.CANCELLED, f"automation blocked by {by.get_username()}", by=by, now=now
            )
    elif found is not None:
        audit.record(
            AuditEvent.Action.DELETE,
            found,
            before=audit.snapshot(found),
            site=meter.site_id,
            note=f"automation allowed again: {note}"[:300],
        )
        found.delete()


@transaction.atomic
def field_job_complete(
    *,
    job: FieldJob,
    by: User,
    seal_number: str,
    photo=None,
    note: str = "",
    now: dt.datetime | None = None,
) -> FieldJob:
    """The agent opened or closed the breaker and sealed it: the command is done."""
    now = clock.resolve(now)
    job = FieldJob.objects.select_for_update().get(pk=job.pk)
    if job.status != FieldJob.Status.OPEN:
        raise ValidationError("This field job is already closed.")
    if not seal_number.strip():
        raise ValidationError({"seal_number": "Record the number of the seal you fitted."})
    if not photo and not job.photo:
        raise ValidationError({"photo": "Add a photo of the breaker and the seal."})
    before = job.snapshot()
    job.status = FieldJob.Status.DONE
    job.seal_number = seal_number.strip()[:40]
    if photo:
        job.photo = photo
    job.note = note[:300]
    job.completed_at = now
    job.completed_by = by
    job.save()
    audit.record(
        AuditEvent.Action.TRANSITION,
        job,
        before=before,
        after=job.snapshot(),
        site=job.site_id,
        note=f"{job.get_breaker_display()}, seal {job.seal_number}",
    )
    on = job.breaker == FieldJob.Breaker.CLOSED
    engine.note_relay(job.meter_id, on, at=now, source=f"field job {job.pk}")
    command = job.command
    engine.finish(
        command,
        S.DONE,
        f"field job {job.pk} done by {by.get_username()}: "
        f"{job.get_breaker_display()}, seal {job.seal_number}",
        now=now,
        confirmed_relay=engine.relay_word(on),
    )
    return job


@transaction.atomic
def field_job_cancel(*, job: FieldJob, by: User, note: str, now: dt.datetime | None = None):
    """Nobody will do this job: it and its command are closed as cancelled."""
    if not note.strip():
        raise ValidationError("Say why the field job is cancelled.")
    now = clock.resolve(now)
    job = FieldJob.objects.select_for_update().get(pk=job.pk)
    if job.status != FieldJob.Status.OPEN:
        raise ValidationError("This field job is already closed.")
    job.status = FieldJob.Status.CANCELLED
    job.note = note[:300]
    job.save(update_fields=["status", "note"])
    _close(
        job.command,
        S.CANCELLED,
        f"field job cancelled by {by.get_username()}: {note}",
        by=by,
        now=now,
    )
    return job


def outcome(command_id: int) -> dict:
    """What became of a command, for the caller that asked (billing closes its request).

    ``finished`` once nothing more will happen; ``done`` when carried out (``relay`` is
    then ``on`` or ``off``); ``status`` and ``why`` (the decision, or the last error) else.
    """
    command = Command.objects.get(pk=command_id)
    return {
        "command": command.pk,
        "status": command.status,
        "finished": not command.is_open,
        "done": command.status == S.DONE,
        "relay": command.confirmed_relay,
        "why": command.last_error or command.decision,
        "source_ref": command.source_ref,
    }


def outcome_of(source_ref: str) -> dict | None:
    """The outcome of the latest command asked with ``source_ref``; None when there is none."""
    latest = Command.objects.filter(source_ref=source_ref).order_by("-created_at", "-id").first()
    return outcome(latest.pk) if latest else None


@transaction.atomic
def site_settings_save(*, settings: SiteSteering, by: User) -> SiteSteering:
    """Save a site's steering rules (autonomy level, hours, hourly cap), audited."""
    old = SiteSteering.objects.filter(pk=settings.pk).first() if settings.pk else None
    fields = [
        "autonomy",
        "max_disconnections_per_hour",
        "work_from",
        "work_until",
        "weekdays_only",
        "reconnect_on_payment",
    ]
    before = audit.snapshot(old, fields) if old else None
    settings.save()
    audit.record(
        AuditEvent.Action.UPDATE if old else AuditEvent.Action.CREATE,
        settings,
        before=before,
        after=audit.snapshot(settings, fields),
        site=settings.site_id,
        note=f"steering rules saved by {by.get_username()}",
    )
    return settings
