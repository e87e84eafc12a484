"""The USSD menu, as Africa's Talking drives it.

Africa's Talking sends the whole session's input on every request (``text``: the
answers so far joined with ``*``). The menu is a small state machine replayed
over those answers from the start: each state takes one answer and gives the
next state; an answer it cannot take keeps the state and adds a hint. The last
state's screen is the reply. Steps that must happen once — checking a PIN,
sending a one-time PIN, creating a request — keep their outcome in the session's
``memo`` under their position in ``text``, so a replay or a repeated request
never does them twice. The menu tree is in docs/ussd.md.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.core.exceptions import ValidationError
from django.db.models import Q

from customers.models import Customer
from customers.phones import normalise_phone
from mcoms.core import clock
from notifications.selfservice.menu import ChooseAccount, Main, UnknownWelcome
from notifications.selfservice.models import UssdSession
from notifications.selfservice.screens import MAX_ACCOUNTS, MAX_SCREEN, Reply, State, Walk

log = logging.getLogger(__name__)

MAX_STEPS = 40

# --- the request ------------------------------------------------------------------------------


def customers_for(phone: str) -> list[Customer]:
    """The open accounts using ``phone`` as their phone or second phone."""
    return list(
        Customer.objects.filter(Q(phone=phone) | Q(alt_phone=phone))
        .exclude(status=Customer.Status.CLOSED)
        .select_related("site")
        .order_by("account_number")[: MAX_ACCOUNTS + 1]
    )


def normalised(phone: str) -> str:
    try:
        return normalise_phone(phone)
    except ValidationError:
        return phone.strip()[:32]


def _session(session_id: str, phone: str, service_code: str, network_code: str, now):
    """The session's record; a new one is only stored once it has something to remember."""
    found = UssdSession.objects.filter(session_id=session_id[:100]).first()
    return found or UssdSession(
        session_id=session_id[:100],
        phone=phone,
        service_code=service_code[:40],
        network_code=network_code[:20],
        started_at=now,
        updated_at=now,
    )


def _store(session: UssdSession, memo_before: dict, now) -> None:
    """Write the session only when its memo changed: most steps read and write nothing."""
    if session.memo == memo_before:
        return
    session.updated_at = now
    if session.pk is None:
        # Africa's Talking waits for each answer before sending the next, so one session
        # is never stored twice at once; ignore_conflicts covers a repeated first request.
        UssdSession.objects.bulk_create([session], ignore_conflicts=True)
    else:
        session.save(update_fields=["memo", "updated_at"])


def walk(w: Walk, parts: list[str]) -> Reply:
    if w.customers:
        if len(w.customers) == 1:
            w.customer, w.lang = w.customers[0], w.customers[0].language
            state: State = Main()
        else:
            w.lang = w.customers[0].language
            state = ChooseAccount()
    else:
        state = UnknownWelcome()
    for at, part in enumerate(parts):
        state = state.answer(w, part.strip(), at)
    w.last = True
    return state.screen(w)


def respond(
    *,
    session_id: str,
    phone: str,
    text: str,
    service_code: str = "",
    network_code: str = "",
    now: dt.datetime | None = None,
) -> str:
    """The reply body (``CON …`` or ``END …``) to one Africa's Talking USSD request."""
    at = clock.resolve(now)
    phone = normalised(phone)
    parts = text.split("*") if text else []
    w = Walk(
        session=_session(session_id, phone, service_code, network_code, at),
        phone=phone,
        customers=customers_for(phone),
        now=at,
    )
    memo_before = dict(w.session.memo)
    if w.customers:
        w.lang = w.customers[0].language
    if len(parts) > MAX_STEPS:
        return Reply(True, w.t("too_long")).body()
    try:
        reply = walk(w, parts)
    except Exception:
        # Each write commits on its own and is remembered only once it has; the
        # customer sees a closing apology rather than an HTTP error.
        log.exception("USSD session %s failed", session_id)
        reply = Reply(True, w.t("unavailable"))
    _store(w.session, memo_before, at)
    body = reply.body()
    if len(body) > MAX_SCREEN:
        log.error("USSD screen too long (%s characters), cut: %r", len(body), body)
    return body[:MAX_SCREEN]
