"""The steering rules: whether a command may go ahead, must wait for a person, or is refused.

Safety before business, business before optimisation. :func:`decide` is pure: it reads
what the caller gathered (:class:`Facts`) and the site's settings and answers a
:class:`Decision` with the reason in words, which the audit trail keeps. :func:`not_before`
is the second gate, checked when a command is about to be sent: arrears disconnections
only within the site's working hours, and a cap on disconnections per site per hour.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from metering.steering.models import Command, SiteSteering

Action, Reason = Command.Action, Command.Reason
# Who asks without a person deciding there and then.
AUTOMATIC_SOURCES = frozenset({"billing", "collections", "prepaid", "system", "watch", "policy"})
# A payment may undo these disconnections on its own; others (tamper, safety) need a person.
PAYABLE = frozenset({Reason.ARREARS, Reason.PREPAID_EMPTY})
GO, APPROVE, REFUSE = "go", "approve", "refuse"
HOUR = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Facts:
    """What the rules look at for one request."""

    action: str
    reason: str
    source: str
    forced: bool = False
    forced_by: str = ""
    critical_load: bool = False
    automation_blocked: bool = False
    block_note: str = ""
    notice_ends_at: dt.datetime | None = None
    last_disconnect_reason: str | None = None

    @property
    def automatic(self) -> bool:
        return self.source in AUTOMATIC_SOURCES


@dataclass(frozen=True)
class Decision:
    outcome: str  # go / approve / refuse
    why: str


def decide(facts: Facts, rules: SiteSteering, now: dt.datetime) -> Decision:
    """Apply the rules in order; the first that settles the request wins."""
    if facts.action not in Action.values or facts.reason not in Reason.values:
        return Decision(REFUSE, f"unknown action or reason {facts.action}/{facts.reason}")
    if facts.forced:
        return Decision(GO, f"forced by {facts.forced_by or 'a person'} (human override)")
    if facts.automation_blocked and facts.automatic:
        return Decision(REFUSE, f"automation blocked on this meter: {facts.block_note}")
    disconnect = facts.action == Action.DISCONNECT
    if disconnect and facts.critical_load:
        if facts.automatic:
            return Decision(REFUSE, "critical load: never disconnected automatically")
        return Decision(APPROVE, "critical load: a person must decide")
    if disconnect and facts.reason == Reason.ARREARS:
        if facts.notice_ends_at is None:
            return Decision(REFUSE, "arrears disconnection without a notice period stated")
        if now < facts.notice_ends_at:
            return Decision(
                REFUSE, f"notice period runs until {facts.notice_ends_at:%Y-%m-%d %H:%M}Z"
            )
    if facts.action == Action.RECONNECT and facts.reason == Reason.PAID:
        if not rules.reconnect_on_payment:
            return Decision(APPROVE, "this site reconnects on payment only with a person")
        last = facts.last_disconnect_reason
        if last is not None and last not in PAYABLE:
            return Decision(APPROVE, f"last disconnected for {last}: a person must decide")
    if rules.autonomy == SiteSteering.Autonomy.AUTONOMOUS:
        return Decision(GO, "autonomy level 3: the policy acts alone")
    return Decision(APPROVE, "autonomy level 2: a person approves each command")


def in_working_hours(
    at: dt.datetime, rules: SiteSteering, zone: str, holidays: Collection[dt.date]
) -> bool:
    local = at.astimezone(zoneinfo.ZoneInfo(zone))
    if rules.weekdays_only and (local.weekday() >= 5 or local.date() in holidays):
        return False
    return rules.work_from <= local.time() < rules.work_until


def next_working_time(
    at: dt.datetime, rules: SiteSteering, zone: str, holidays: Collection[dt.date]
) -> dt.datetime:
    """``at`` if inside working hours, else the start of the next working window."""
    if in_working_hours(at, rules, zone, holidays):
        return at
    tz = zoneinfo.ZoneInfo(zone)
    day = at.astimezone(tz).date()
    for offset in range(0, 15):
        candidate = dt.datetime.combine(day + dt.timedelta(days=offset), rules.work_from, tz)
        if candidate > at and in_working_hours(candidate, rules, zone, holidays):
            return candidate.astimezone(dt.UTC)
    raise ValueError("no working hours in the next two weeks: check the site's settings")


def rate_limited_until(
    now: dt.datetime, sent: Iterable[dt.datetime], limit: int
) -> dt.datetime | None:
    """When one more disconnection fits in the hourly cap; None when it fits now."""
    recent = sorted(t for t in sent if t > now - HOUR)
    if len(recent) < limit:
        return None
    return recent[len(recent) - limit] + HOUR


def needs_gates(command: Command) -> tuple[bool, bool]:
    """(working hours apply, rate limit applies) to this command."""
    if command.forced or command.action != Action.DISCONNECT:
        return False, False
    return command.reason == Reason.ARREARS, command.reason != Reason.SAFETY


def not_before(
    command: Command,
    rules: SiteSteering,
    *,
    now: dt.datetime,
    zone: str,
    holidays: Collection[dt.date],
    sent_last_hour: Iterable[dt.datetime],
) -> tuple[dt.datetime | None, str]:
    """When the command may be sent (None: now) and why it waits."""
    hours, rate = needs_gates(command)
    if hours:
        start = next_working_time(now, rules, zone, holidays)
        if start > now:
            return start, "outside working hours"
    if rate:
        until = rate_limited_until(now, sent_last_hour, rules.max_disconnections_per_hour)
        if until is not None:
            return until, f"rate limit: {rules.max_disconnections_per_hour} disconnections an hour"
    return None, ""
