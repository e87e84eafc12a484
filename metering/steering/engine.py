"""The command state machine, kept in the database so no restart loses or repeats a step.

Each :class:`Command` row says where it is; :func:`step` claims a due row (moving its
``next_attempt_at`` forward by a lease, so two workers never take the same step), does
the step, and writes when the next one is due. A Celery task runs steps at those times;
the periodic :func:`sweep` runs any that are due and unclaimed, so a worker that died
mid-step only delays its command by the lease.

waiting → sending → sent → confirming → done, with the failures on the way::

    waiting     policy gates (working hours, hourly cap, another command in flight);
                a meter without relay (CHINT) becomes a field job instead
    sending     ask for the switch; an attempt whose answer was never recorded is
                checked by reading the relay before sending again
    sent        poll the control task (first poll after a delay, give up after a limit)
    confirming  read the relay back ("<kWh>,ON|OFF"; else the day's RelayStatus)

The head-end unreachable (refused, a gateway error, 5xx, nothing scheduled) is not the
meter's fault: such sends do not use up ``CALIN_MAX_ATTEMPTS`` but are tried again with
backoff until ``expires_at`` (``CALIN_SEND_EXPIRES_SECONDS`` after the command was due to
be sent). Then a disconnection *expires* unsent (a stale cut must not fire when Calin is
back, the customer may have paid since) and a reconnection is *escalated* to the site's
staff and keeps trying, so a paying customer is not left dark unnoticed. ``fault`` keeps
"head-end unreachable" apart from "the head-end answers but the meter does not"
(a task still pending at the limit).
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo

from django.conf import settings
from django.db import IntegrityError, transaction

from mcoms.core import audit, clock, outbox
from mcoms.core.models import AuditEvent, PublicHoliday
from metering.steering import calin, policy
from metering.steering.models import Command, FieldJob, MeterState, SiteSteering

log = logging.getLogger(__name__)
S = Command.Status
ACTIVE = (S.WAITING, S.SENDING, S.SENT, S.CONFIRMING)
LEASE = dt.timedelta(minutes=2)
BUSY_RETRY = dt.timedelta(seconds=60)
EARLY = dt.timedelta(seconds=1)


def _seconds(name: str) -> dt.timedelta:
    return dt.timedelta(seconds=getattr(settings, name))


def backoff(attempts: int) -> dt.timedelta:
    """The wait before the next send: doubling from the poll interval, at most 30 min."""
    return min(_seconds("CALIN_POLL_SECONDS") * 2 ** max(attempts - 1, 0), dt.timedelta(minutes=30))


def relay_word(on: bool | None) -> str:
    return {True: MeterState.Relay.ON, False: MeterState.Relay.OFF}.get(
        on, MeterState.Relay.UNKNOWN
    )


# --- bookkeeping ----------------------------------------------------------------------------


def _update(command: Command, note: str = "", **changes) -> None:
    """Write ``changes``; a change of status is audited with ``note``."""
    old = command.status
    before = audit.snapshot(command, ["status", "task_no", "read_task_no", "attempts"])
    for key, value in changes.items():
        setattr(command, key, value)
    with transaction.atomic():
        command.save(update_fields=list(changes))
        if command.status != old or note:
            audit.record(
                AuditEvent.Action.TRANSITION,
                command,
                before=before,
                after=audit.snapshot(command, ["status", "task_no", "read_task_no", "attempts"]),
                site=command.site_id,
                note=note or f"{old} → {command.status}",
            )


def note_relay(meter_id: int, on: bool | None, *, at: dt.datetime, source: str, credit=None):
    """Remember the relay (or breaker) state learned just now."""
    fields = {"relay": relay_word(on), "relay_read_at": at, "relay_source": source[:40]}
    if credit is not None:
        fields["credit_kwh"] = credit
    MeterState.objects.update_or_create(meter_id=meter_id, defaults=fields)


def schedule(command: Command, at: dt.datetime) -> None:
    """Due at ``at``: a Celery task with that countdown, and the sweeper as the backstop."""
    Command.objects.filter(pk=command.pk).update(next_attempt_at=at)
    command.next_attempt_at = at
    from metering.steering import tasks  # the task module imports this one

    if tasks.advance.app.conf.task_always_eager:
        # In-process tasks cannot wait: the sweeper (or a test's clock) drives the steps.
        return
    delay = max((at - clock.now()).total_seconds(), 0)
    pk = command.pk
    outbox.publish(tasks.advance, (pk,), countdown=delay)  # the sweeper is the backstop


def finish(command: Command, status: str, note: str, *, now: dt.datetime, **changes) -> None:
    _update(command, note=note, status=status, finished_at=now, next_attempt_at=None, **changes)


# --- the steps ------------------------------------------------------------------------------


def claim(pk: int, now: dt.datetime) -> Command | None:
    """Take a due command for one step, or None when it is not due or someone holds it."""
    taken = Command.objects.filter(
        pk=pk, status__in=ACTIVE, next_attempt_at__lte=now + EARLY
    ).update(next_attempt_at=now + LEASE)
    if not taken:
        return None
    return Command.objects.select_related("meter", "site").get(pk=pk)


def step(
    pk: int, *, now: dt.datetime | None = None, client: calin.Client | None = None
) -> Command | None:
    """Run the due step of command ``pk`` (and any that follow at once)."""
    now = clock.resolve(now)
    command = claim(pk, now)
    if command is None:
        return None
    client = client or calin.Client()
    with audit.acting_as(label="steering engine", channel=AuditEvent.Channel.TASK):
        for _ in range(6):  # e.g. waiting → sending → sent in one go
            HANDLERS[command.status](command, now, client)
            if command.status not in ACTIVE or command.next_attempt_at > now:
                break
    return command


def sweep(*, now: dt.datetime | None = None, client: calin.Client | None = None) -> int:
    """Run every due step; returns how many commands moved. Resumes after restarts."""
    now = clock.resolve(now)
    due = Command.objects.filter(status__in=ACTIVE, next_attempt_at__lte=now + EARLY)
    done = 0
    for pk in due.order_by("next_attempt_at").values_list("pk", flat=True)[:500]:
        if step(pk, now=now, client=client) is not None:
            done += 1
    return done


def _wait(command: Command, now: dt.datetime, client: calin.Client) -> None:
    rules = SiteSteering.for_site(command.site_id)
    holidays = set(
        PublicHoliday.objects.filter(site_id=command.site_id).values_list("date", flat=True)
    )
    sent = Command.objects.filter(
        site_id=command.site_id,
        action=Command.Action.DISCONNECT,
        sent_at__gt=now - policy.HOUR,
    ).values_list("sent_at", flat=True)
    at, why = policy.not_before(
        command,
        rules,
        now=now,
        zone=command.site.timezone,
        holidays=holidays,
        sent_last_hour=list(sent),
    )
    if at is not None:
        if command.last_error != why:
            _update(command, note=f"waits until {at:%Y-%m-%d %H:%M}Z: {why}", last_error=why)
        schedule(command, at)
        return
    if command.meter.is_chint:
        _open_field_job(command, now)
        return
    try:
        _update(
            command,
            status=S.SENDING,
            send_started_at=None,
            last_error="",
            expires_at=command.expires_at or now + _seconds("CALIN_SEND_EXPIRES_SECONDS"),
        )
        command.next_attempt_at = now  # go on at once (the lease still holds the row)
    except IntegrityError:
        command.status = S.WAITING
        _update(command, note="another command is in flight on this meter", last_error="busy")
        schedule(command, now + BUSY_RETRY)


def _open_field_job(command: Command, now: dt.datetime) -> None:
    breaker = FieldJob.Breaker.CLOSED if command.target_on else FieldJob.Breaker.OPENED
    try:
        with transaction.atomic():
            _update(
                command,
                status=S.FIELD,
                next_attempt_at=None,
                note="no relay on this meter: a field job is opened",
            )
            job = FieldJob.objects.create(
                command=command,
                meter=command.meter,
                site=command.site,
                breaker=breaker,
                created_at=now,
            )
            audit.record(
                AuditEvent.Action.CREATE,
                job,
                after=job.snapshot(),
                site=command.site_id,
                note=f"field job: {job.get_breaker_display()}",
            )
    except IntegrityError:
        command.status = S.WAITING
        schedule(command, now + BUSY_RETRY)


def _send(command: Command, now: dt.datetime, client: calin.Client) -> None:
    if command.expires_at is not None and now >= command.expires_at and _expire(command, now):
        return
    if command.send_started_at is not None:
        # An earlier send's answer was never recorded: look before switching again.
        _start_read(command, now, client, Command.Read.PRECHECK)
        return
    attempts = command.attempts + 1
    # Conditional: a command superseded meanwhile (services.submit) is not sent.
    started = Command.objects.filter(
        pk=command.pk, status=S.SENDING, send_started_at__isnull=True
    ).update(send_started_at=now, attempts=attempts)
    if not started:
        return
    command.send_started_at, command.attempts = now, attempts
    try:
        task_no = client.remote_control(command.meter.serial, on=command.target_on)
    except calin.Rejected as exc:
        finish(
            command, S.FAILED, f"head-end refused: {exc}"[:300], now=now, last_error=str(exc)[:300]
        )
        return
    except calin.CalinTimeout as exc:
        _retry(command, now, client, str(exc), unknown=True)
        return
    except calin.CalinError as exc:
        # Refused, a gateway error, 5xx, nothing scheduled: the switch surely did not go.
        _retry(command, now, client, str(exc), unknown=False, unreachable=True)
        return
    _update(
        command,
        status=S.SENT,
        task_no=task_no,
        sent_at=now,
        polls=0,
        last_error="",
        fault="",
        poll_until=now + _seconds("CALIN_GIVE_UP_SECONDS"),
        note=f"sent: task {task_no} ({'Switch On' if command.target_on else 'Switch Off'})",
    )
    schedule(command, now + _seconds("CALIN_FIRST_POLL_SECONDS"))


def _retry(
    command: Command,
    now: dt.datetime,
    client: calin.Client,
    error: str,
    *,
    unknown: bool,
    unreachable: bool = False,
) -> None:
    """Try again later, or give up after the last attempt. ``unknown``: it may have happened.

    ``unreachable``: the head-end did not take it; not counted against the attempts, it is
    tried until the command's ``expires_at`` (see :func:`_expire`).
    """
    if not unreachable and command.attempts >= settings.CALIN_MAX_ATTEMPTS:
        if unknown:  # the last try may have worked: the relay says
            _start_read(command, now, client, Command.Read.CONFIRM)
            return
        if command.fault == Command.Fault.METER_OFFLINE:
            error = f"meter offline (the head-end answers, the meter does not): {error}"
        finish(
            command,
            S.FAILED,
            f"gave up after {command.attempts} attempts: {error}"[:300],
            now=now,
            last_error=error[:300],
        )
        return
    at = now + backoff(command.attempts)
    if unreachable:
        error = f"head-end unreachable: {error}"
    _update(
        command,
        status=S.SENDING,
        last_error=error[:300],
        task_no="",
        send_started_at=command.send_started_at if unknown else None,
        fault=Command.Fault.UNREACHABLE if unreachable else command.fault,
        note=f"attempt {command.attempts} failed ({error[:200]}); again at {at:%H:%M:%S}Z",
    )
    schedule(command, at)


def _expire(command: Command, now: dt.datetime) -> bool:
    """The head-end has not taken the command in time. A disconnection expires unsent
    (True: stop here); a reconnection is escalated to staff, once, and goes on trying."""
    hours = _seconds("CALIN_SEND_EXPIRES_SECONDS").total_seconds() / 3600
    doubt = command.send_started_at is not None
    if command.action == Command.Action.DISCONNECT:
        why = (
            f"expired: the head-end could not be reached for {hours:g} h; not sent "
            "(ask again if it is still wanted)"
        )
        if doubt:
            why += "; an earlier attempt may have reached the meter: check its relay"
        finish(
            command,
            S.EXPIRED,
            why[:300],
            now=now,
            last_error=why[:300],
            fault=Command.Fault.UNREACHABLE,
        )
        _tell_staff(command, why)
        return True
    if command.escalated_at is None:
        why = (
            f"escalated: this reconnection could not be sent for {hours:g} h (head-end "
            "unreachable); still trying — send someone to close the breaker if it goes on"
        )
        _update(command, note=why[:300], escalated_at=now)
        _tell_staff(command, why)
    return False


STAFF_TEMPLATE = "steering_command_stuck"
STAFF_TEMPLATE_BODY = (
    "MCOMS {{ site }}: {{ action }} of meter {{ meter }}{% if account %} ({{ account }})"
    "{% endif %}: {{ why }}"
)


def _tell_staff(command: Command, why: str) -> int:
    """Message the site's managers and field supervisors after commit; never raises."""
    from mcoms.core.selectors import staff_of_site
    from metering.watch import NOTIFY_ROLES, tell_staff
    from notifications.models import Channel, Language, MessageTemplate

    def send() -> None:
        try:
            for channel in (Channel.SMS, Channel.EMAIL):
                MessageTemplate.objects.get_or_create(
                    key=STAFF_TEMPLATE,
                    language=Language.ENGLISH,
                    channel=channel,
                    defaults={
                        "subject": "{{ action }} of meter {{ meter }} not carried out",
                        "body": STAFF_TEMPLATE_BODY,
                        "essential": True,
                    },
                )
            context = {
                "site": command.site.name,
                "action": command.get_action_display(),
                "meter": command.meter.serial,
                "account": command.customer.account_number if command.customer_id else "",
                "why": why,
            }
            for user in staff_of_site(command.site, NOTIFY_ROLES):
                tell_staff(
                    user, STAFF_TEMPLATE, context, f"steering.command:{command.pk}", command.site
                )
        except Exception:
            log.exception("could not tell the staff about command %s", command.pk)

    transaction.on_commit(send)
    return 1


def _poll(command: Command, now: dt.datetime, client: calin.Client) -> None:
    try:
        state = client.poll("Control", command.task_no)
    except calin.Rejected as exc:
        finish(
            command,
            S.FAILED,
            f"head-end rejected the task: {exc}"[:300],
            now=now,
            last_error=str(exc)[:300],
        )
        return
    except calin.CalinError as exc:
        state = None
        error = str(exc)
    _update(command, polls=command.polls + 1)
    if state is not None and state.status == "done":
        _start_read(command, now, client, Command.Read.CONFIRM)
        return
    if state is not None and state.status == "failed":
        # Delivered but failed: the relay did not switch; send again (or give up).
        _update(command, send_started_at=None)
        _retry(command, now, client, f"task {command.task_no} failed at the meter", unknown=False)
        return
    if now >= command.poll_until:
        # Still pending at the limit: whether it switched, the relay will tell.
        if state is not None:  # the head-end answers; the meter has not done it
            _update(
                command,
                fault=Command.Fault.METER_OFFLINE,
                last_error=f"meter offline? task {command.task_no} still pending at the limit",
            )
        _start_read(command, now, client, Command.Read.CONFIRM)
        return
    if state is None:
        _update(command, last_error=error[:300])
    schedule(command, now + _seconds("CALIN_POLL_SECONDS"))


def _start_read(command: Command, now: dt.datetime, client: calin.Client, purpose: str) -> None:
    try:
        task_no = client.remote_reading(command.meter.serial, calin.CREDIT_REGISTER)
    except calin.CalinError as exc:
        log.info("read-back of %s could not start: %s", command.meter.serial, exc)
        _resolve(
            command, now, client, purpose, _daily_relay(command, now, client), source="daily data"
        )
        return
    _update(
        command,
        status=S.CONFIRMING,
        read_task_no=task_no,
        read_purpose=purpose,
        polls=0,
        poll_until=now + _seconds("CALIN_GIVE_UP_SECONDS"),
        note=f"reading the relay back: task {task_no} ({Command.Read(purpose).label.lower()})",
    )
    schedule(command, now + _seconds("CALIN_FIRST_POLL_SECONDS"))


def _daily_relay(command: Command, now: dt.datetime, client: calin.Client) -> bool | None:
    """The relay as today's daily data reports it (RelayStatus 1 on, 0 off), if it does."""
    today = now.astimezone(zoneinfo.ZoneInfo(command.site.timezone)).date()
    try:
        row = client.daily_data(command.meter.serial, today)
    except calin.CalinError:
        return None
    value = str((row or {}).get("RelayStatus", "")).strip()
    return {"1": True, "0": False}.get(value)


def _confirm(command: Command, now: dt.datetime, client: calin.Client) -> None:
    try:
        state = client.poll("Reading", command.read_task_no)
    except calin.CalinError as exc:
        state = None
        _update(command, polls=command.polls + 1, last_error=str(exc)[:300])
    if state is not None and state.status == "done":
        reading = calin.parse_credit(state.data)
        if reading.relay_on is not None:
            _resolve(
                command,
                now,
                client,
                command.read_purpose,
                reading.relay_on,
                source="remote reading",
                credit=reading.kwh,
            )
            return
    if (
        (state is not None and state.status == "failed")
        or now >= command.poll_until
        or (state is not None and state.status == "done")
    ):
        _resolve(
            command,
            now,
            client,
            command.read_purpose,
            _daily_relay(command, now, client),
            source="daily data",
        )
        return
    schedule(command, now + _seconds("CALIN_POLL_SECONDS"))


def _resolve(
    command: Command,
    now: dt.datetime,
    client: calin.Client,
    purpose: str,
    relay_on: bool | None,
    *,
    source: str,
    credit=None,
) -> None:
    """Act on the relay state read back (None: it could not be read)."""
    if relay_on is not None:
        note_relay(command.meter_id, relay_on, at=now, source=source, credit=credit)
    if relay_on is command.target_on:
        finish(
            command,
            S.DONE,
            f"confirmed: relay {relay_word(relay_on)} ({source})",
            now=now,
            confirmed_relay=relay_word(relay_on),
            last_error="",
        )
        return
    if purpose == Command.Read.PRECHECK and relay_on is None:
        # The earlier send may have worked and the relay cannot be read (the head-end
        # unreachable): sending blindly could switch twice. Look again later.
        since = now - (command.send_started_at or now)
        wait = min(max(since / 2, _seconds("CALIN_POLL_SECONDS")), dt.timedelta(minutes=30))
        _update(
            command,
            status=S.SENDING,
            fault=Command.Fault.UNREACHABLE,
            last_error="head-end unreachable: the relay could not be read before sending again",
        )
        schedule(command, now + wait)
        return
    if purpose == Command.Read.PRECHECK:
        # Not switched yet: switching is safe to ask for again.
        _update(
            command,
            status=S.SENDING,
            send_started_at=None,
            note=f"relay read {relay_word(relay_on)} before sending again",
        )
        command.next_attempt_at = now  # go on at once (the lease still holds the row)
        return
    if relay_on is None:
        offline = command.fault == Command.Fault.METER_OFFLINE
        finish(
            command,
            S.FAILED,
            "sent, but the relay could not be read back: check on site"
            + (" (the meter did not answer: offline?)" if offline else ""),
            now=now,
            last_error="meter offline: relay state unknown" if offline else "relay state unknown",
        )
        return
    _update(command, send_started_at=None)
    _retry(
        command, now, client, f"relay still {relay_word(relay_on)} after the command", unknown=False
    )


HANDLERS = {S.WAITING: _wait, S.SENDING: _send, S.SENT: _poll, S.CONFIRMING: _confirm}
