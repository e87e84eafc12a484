"""Remote reads of Calin meters: ask for one value, poll its task, keep the answer.

A read asked while the head-end is unreachable waits: the sweep asks again (every
``CALIN_POLL_SECONDS``) until ``CALIN_GIVE_UP_SECONDS`` after the request, then the
read fails as "head-end unreachable". A task the head-end took but the meter never
answered fails as "the meter did not answer" (offline) at the same limit.

``"Current Credit Register"`` answers ``"<kWh>,ON|OFF"`` and updates the meter's relay
state; the relay status item answers a status code, decoded with the operator's table.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings

from mcoms.core import clock
from mcoms.core.models import User
from metering.models import Meter
from metering.steering import calin, codes, engine
from metering.steering.models import MeterState, RemoteRead

R = RemoteRead.Status
# Not in Calin's public contract (UNVERIFIED): the data item of the relay status code.
STATUS_ITEM = "Relay Status Code"
ITEMS = (calin.CREDIT_REGISTER, "Voltage", "Current", "Power", STATUS_ITEM)


def request(
    meter: Meter,
    data_item: str,
    *,
    by: User | None = None,
    now: dt.datetime | None = None,
    client: calin.Client | None = None,
) -> RemoteRead:
    """Start a read; the answer is collected by :func:`sweep` (first poll after a delay)."""
    if data_item not in ITEMS:
        raise ValueError(f"unknown data item {data_item!r}")
    now = clock.resolve(now)
    client = client or calin.Client()
    read = RemoteRead(meter=meter, data_item=data_item, requested_by=by, requested_at=now)
    read.poll_until = now + dt.timedelta(seconds=settings.CALIN_GIVE_UP_SECONDS)
    _ask(read, now=now, client=client)
    read.save()
    return read


def _ask(read: RemoteRead, *, now: dt.datetime, client: calin.Client) -> None:
    """Create the read's task; an unreachable head-end is asked again by the sweep."""
    try:
        read.task_no = client.remote_reading(read.meter.serial, read.data_item)
    except calin.Rejected as exc:
        read.status, read.error, read.finished_at = R.FAILED, str(exc)[:300], now
        read.next_poll_at = None
    except calin.CalinError as exc:
        read.error = f"head-end unreachable: {exc}"[:300]
        if now >= read.poll_until:
            read.status, read.finished_at, read.next_poll_at = R.FAILED, now, None
        else:
            read.next_poll_at = now + dt.timedelta(seconds=settings.CALIN_POLL_SECONDS)
    else:
        read.error = ""
        read.next_poll_at = now + dt.timedelta(seconds=settings.CALIN_FIRST_POLL_SECONDS)


def _done(read: RemoteRead, value: str, now: dt.datetime) -> None:
    read.status, read.value, read.finished_at, read.next_poll_at = R.DONE, value[:200], now, None
    if read.data_item == calin.CREDIT_REGISTER:
        reading = calin.parse_credit(value)
        if reading.relay_on is not None:
            engine.note_relay(
                read.meter_id, reading.relay_on, at=now, source="remote reading", credit=reading.kwh
            )
    elif read.data_item == STATUS_ITEM and codes.decode(value):
        MeterState.objects.update_or_create(
            meter_id=read.meter_id,
            defaults={"status_code": codes.decode(value).ami_code, "status_code_at": now},
        )


def poll(read: RemoteRead, *, now: dt.datetime, client: calin.Client) -> RemoteRead:
    if not read.task_no:  # the head-end has not taken it yet
        _ask(read, now=now, client=client)
        read.save()
        return read
    try:
        state = client.poll("Reading", read.task_no)
    except calin.Rejected as exc:
        state, read.error = None, str(exc)[:300]
        read.poll_until = now
    except calin.CalinError as exc:
        state, read.error = None, f"head-end unreachable: {exc}"[:300]
    if state is not None and state.status == "done":
        _done(read, state.data, now)
    elif (state is not None and state.status == "failed") or now >= read.poll_until:
        read.status, read.finished_at, read.next_poll_at = R.FAILED, now, None
        if state is not None and state.status == "failed":
            read.error = "failed at the meter"
        elif state is not None:
            read.error = "the meter did not answer in time (offline?)"
        else:
            read.error = read.error or "no answer in time"
    else:
        read.next_poll_at = now + dt.timedelta(seconds=settings.CALIN_POLL_SECONDS)
    read.save()
    return read


def sweep(*, now: dt.datetime | None = None, client: calin.Client | None = None) -> int:
    now = clock.resolve(now)
    client = client or calin.Client()
    due = RemoteRead.objects.filter(status=R.PENDING, next_poll_at__lte=now)
    count = 0
    for read in due[:500]:
        poll(read, now=now, client=client)
        count += 1
    return count
