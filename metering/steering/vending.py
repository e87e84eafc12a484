"""Prepaid token vending through Calin's POS: one purchase reference buys one token.

The POS call is not idempotent on Calin's side, so it is made so here:

1. the attempt is written (and committed) *before* the call: a :class:`Vend` row per
   purchase reference, unique in the database;
2. a call that answers records the token; a refusal is final;
3. a call whose answer never came (a timeout, a gateway error, a worker that died
   mid-call) leaves the row ``unknown``: before buying again, the meter's purchase
   history since the first attempt is checked, and a purchase found there of the same
   kWh, not already claimed by another reference, is taken as this one's token.

Each step claims the row with a conditional update, so two workers never call at once
for the same reference. A bought token is then pushed to the meter (COMM_RemoteToken,
polled like every task; ResultCode 99 means the meter already used it: not retried).
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from mcoms.core import audit, clock
from mcoms.core.models import AuditEvent
from metering.models import Meter
from metering.steering import calin
from metering.steering.models import Vend

log = logging.getLogger(__name__)
V, P = Vend.Status, Vend.Push
# Clocks differ: the history is read from a little before the first attempt.
HISTORY_MARGIN = dt.timedelta(minutes=5)
RETRYABLE = (V.CALLING, V.UNKNOWN)


def _audit(vend: Vend, note: str) -> None:
    audit.record(
        AuditEvent.Action.UPDATE,
        vend,
        after=audit.snapshot(vend, ["status", "attempts", "push_status"]),
        site=vend.meter.site_id,
        note=note[:300],
    )


def _save(vend: Vend, note: str = "", **changes) -> None:
    for key, value in changes.items():
        setattr(vend, key, value)
    with transaction.atomic():
        vend.save(update_fields=list(changes))
        if note:
            _audit(vend, note)


def vend(
    meter: Meter,
    kwh: Decimal,
    purchase_ref: str,
    *,
    now: dt.datetime | None = None,
    client: calin.Client | None = None,
) -> Vend:
    """Buy ``kwh`` for ``meter`` once for ``purchase_ref`` and push the token to the meter.

    Calling again with the same reference never buys a second token: it returns the
    recorded vend, or finishes one whose outcome was unknown. Check ``status``
    (``vended`` with ``token``; ``unknown`` is retried by the sweeper; ``failed`` or
    ``rejected`` need a person) and ``push_status``.
    """
    now = clock.resolve(now)
    client = client or calin.Client()
    kwh = Decimal(kwh).quantize(Decimal("0.001"))
    if kwh <= 0:
        raise ValueError("a token buys a positive number of kWh")
    if meter.model != Meter.Model.CALIN:
        raise ValueError(f"meter {meter.serial} is not a Calin token meter")
    row = _record(meter, kwh, purchase_ref, now)
    if row.meter_id != meter.pk or row.kwh != kwh:
        raise ValueError(f"purchase {purchase_ref} was for {row.kwh} kWh on another meter")
    if row.status in RETRYABLE:
        row = _buy(row, now, client)
    if row.status == V.VENDED and not row.push_status:
        push(row, now=now, client=client)
    return row


def _record(meter: Meter, kwh: Decimal, purchase_ref: str, now: dt.datetime) -> Vend:
    """The vend of this reference, written and committed before any call."""
    found = Vend.objects.filter(purchase_ref=purchase_ref).select_related("meter").first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            row = Vend.objects.create(
                purchase_ref=purchase_ref[:80], meter=meter, kwh=kwh, started_at=now
            )
            _audit(row, f"token purchase of {kwh} kWh started for {purchase_ref}")
            return row
    except IntegrityError:  # the same reference, at the same moment, elsewhere
        return Vend.objects.select_related("meter").get(purchase_ref=purchase_ref)


def in_progress(row: Vend, now: dt.datetime) -> bool:
    """A call began so recently that its answer may still come: leave it alone."""
    window = dt.timedelta(seconds=settings.CALIN_TIMEOUT) + HISTORY_MARGIN
    return row.status == V.CALLING and row.called_at is not None and row.called_at > now - window


def _claim(row: Vend, now: dt.datetime) -> bool:
    """Take the next call for this reference; False when another worker took it."""
    if in_progress(row, now):
        return False
    taken = Vend.objects.filter(pk=row.pk, status__in=RETRYABLE, attempts=row.attempts).update(
        attempts=row.attempts + 1, status=V.CALLING, called_at=now
    )
    if taken:
        row.attempts += 1
        row.status = V.CALLING
        row.called_at = now
    return bool(taken)


def _from_history(row: Vend, client: calin.Client) -> str | None:
    """A token Calin sold for this meter and amount since the first attempt, not yet ours."""
    rows = client.pos_history(row.meter.serial, row.started_at - HISTORY_MARGIN)
    ours = set(
        Vend.objects.filter(meter=row.meter)
        .exclude(pk=row.pk)
        .exclude(token="")
        .values_list("token", flat=True)
    )
    for item in rows:
        token = str(item.get("token") or "")
        try:
            amount = Decimal(str(item.get("amount"))).quantize(Decimal("0.001"))
        except (InvalidOperation, ValueError):
            continue
        if token and token not in ours and amount == row.kwh:
            return token
    return None


def _buy(row: Vend, now: dt.datetime, client: calin.Client) -> Vend:
    unsure = row.attempts > 0  # an earlier call's answer was never recorded
    if not _claim(row, now):
        row.refresh_from_db()
        return row
    if unsure:
        try:
            token = _from_history(row, client)
        except calin.CalinError as exc:
            _save(
                row,
                f"purchase history unavailable ({exc}); not buying blind",
                status=V.UNKNOWN,
                last_error=str(exc)[:300],
            )
            return row
        if token:
            _save(
                row,
                "token found in the purchase history: not bought again",
                status=V.VENDED,
                token=token,
                vended_at=now,
                last_error="",
            )
            return row
    try:
        token = client.pos_purchase(row.meter.serial, row.kwh)
    except calin.Rejected as exc:
        _save(row, f"POS refused: {exc}", status=V.REJECTED, last_error=str(exc)[:300])
    except (calin.CalinTimeout, calin.GatewayError) as exc:
        _save(
            row,
            f"no answer from the POS ({exc}): outcome unknown",
            status=V.UNKNOWN,
            last_error=str(exc)[:300],
        )
    except calin.CalinError as exc:
        if "result_code" in str(exc):  # a clean answer: nothing was sold
            _save(row, f"POS refused: {exc}", status=V.FAILED, last_error=str(exc)[:300])
        else:
            _save(
                row,
                f"POS error ({exc}): outcome unknown",
                status=V.UNKNOWN,
                last_error=str(exc)[:300],
            )
    else:
        _save(
            row,
            f"token bought: {row.kwh} kWh",
            status=V.VENDED,
            token=token,
            vended_at=now,
            last_error="",
        )
    return row


def push(row: Vend, *, now: dt.datetime | None = None, client: calin.Client | None = None):
    """Send the token to the meter (COMM_RemoteToken); its task is polled by :func:`sweep`."""
    now = clock.resolve(now)
    client = client or calin.Client()
    try:
        task_no = client.remote_token(row.meter.serial, row.token)
    except calin.Rejected as exc:
        _save(
            row,
            f"meter refused the token: {exc}",
            push_status=P.REJECTED,
            last_error=str(exc)[:300],
        )
        return row
    except calin.CalinError as exc:
        # Not scheduled (or unknown): pushing a token twice is refused by the meter, not
        # charged, so the sweeper may ask again.
        _save(
            row,
            push_status="",
            push_next_at=now + dt.timedelta(seconds=settings.CALIN_POLL_SECONDS),
            last_error=str(exc)[:300],
        )
        return row
    _save(
        row,
        f"token sent to the meter: task {task_no}",
        push_status=P.SENT,
        push_task_no=task_no,
        push_sent_at=now,
        push_next_at=now + dt.timedelta(seconds=settings.CALIN_FIRST_POLL_SECONDS),
        push_until=now + dt.timedelta(seconds=settings.CALIN_GIVE_UP_SECONDS),
    )
    return row


def poll_push(row: Vend, *, now: dt.datetime, client: calin.Client) -> Vend:
    try:
        state = client.poll("Token", row.push_task_no)
    except calin.Rejected as exc:
        _save(
            row,
            f"meter refused the token: {exc}",
            push_status=P.REJECTED,
            push_next_at=None,
            last_error=str(exc)[:300],
        )
        return row
    except calin.CalinError as exc:
        state = None
        row.last_error = str(exc)[:300]
    if state is not None and state.status == "done":
        _save(row, "the meter accepted the token", push_status=P.DONE, push_next_at=None)
    elif (state is not None and state.status == "failed") or now >= row.push_until:
        why = "failed at the meter" if state is not None else "no answer in time"
        _save(
            row,
            f"token push {why}: the customer can enter it by keypad",
            push_status=P.FAILED,
            push_next_at=None,
        )
    else:
        _save(
            row,
            push_next_at=now + dt.timedelta(seconds=settings.CALIN_POLL_SECONDS),
            last_error=row.last_error,
        )
    return row


def sweep(*, now: dt.datetime | None = None, client: calin.Client | None = None) -> int:
    """Finish vends whose outcome is unknown, and poll token pushes that are due."""
    now = clock.resolve(now)
    client = client or calin.Client()
    moved = 0
    with audit.acting_as(label="token vending", channel=AuditEvent.Channel.TASK):
        stale = now - dt.timedelta(seconds=settings.CALIN_TIMEOUT) - HISTORY_MARGIN
        unsure = Vend.objects.filter(
            Q(status=V.UNKNOWN) | Q(status=V.CALLING, called_at__lt=stale)
        ).select_related("meter")
        for row in unsure[:200]:
            _buy(row, now, client)
            if row.status == V.VENDED:
                push(row, now=now, client=client)
            moved += 1
        due = Vend.objects.filter(
            Q(push_status=P.SENT) | Q(push_status="", status=V.VENDED),
            push_next_at__lte=now,
        ).select_related("meter")
        for row in due[:500]:
            if row.push_status == P.SENT:
                poll_push(row, now=now, client=client)
            else:
                push(row, now=now, client=client)
            moved += 1
    return moved
