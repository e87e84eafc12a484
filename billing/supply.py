"""Disconnect and reconnect requests: billing and collections ask, the steering rules act.

:func:`request` opens a request unless one for the same action is already open (it
returns that one); asking to reconnect cancels an open disconnect and the other way
round. :func:`close` records what became of a request. Every change is audited. A request
closed as done messages the customer (``disconnected`` with what they owe, or
``reconnected``); both are essential messages, delivered after the change commits.

Billing decides *why*; metering's steering rules decide whether and how, and are the
only way to a relay or a field job. Each request is handed to
``metering.steering.services.submit`` with ``source_ref="supplyrequest:<id>"`` in the
same transaction (the relay is touched only after commit). :func:`sync_outcomes`, run
periodically, closes each open request once steering has finished with it: carried out,
refused (critical load, policy, a person's rejection) or cancelled. A request that
steering cannot take (no meter to steer) stays open with the reason in ``outcome``.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from billing import ledger
from billing.models import SupplyRequest
from customers.models import Customer
from mcoms.core import audit, clock
from mcoms.core.models import AuditEvent, User
from metering.steering import services as steering
from notifications import services as messaging

log = logging.getLogger(__name__)

Action = SupplyRequest.Action
Status = SupplyRequest.Status
_OPPOSITE = {Action.DISCONNECT: Action.RECONNECT, Action.RECONNECT: Action.DISCONNECT}
# Billing's reasons in steering's words.
_STEERING_REASON = {
    SupplyRequest.Reason.PREPAID_EMPTY: "prepaid_empty",
    SupplyRequest.Reason.ARREARS: "arrears",
    SupplyRequest.Reason.TOP_UP: "paid",
    SupplyRequest.Reason.MANUAL: "customer_request",
}


def source_ref(req: SupplyRequest) -> str:
    """How steering's commands name the request they carry out."""
    return f"supplyrequest:{req.pk}"


def open_request(customer: Customer, action: str) -> SupplyRequest | None:
    """The customer's open request for ``action``, if any."""
    return SupplyRequest.objects.filter(
        customer=customer, action=action, status=Status.REQUESTED
    ).first()


@transaction.atomic
def request(
    *, customer: Customer, action: str, reason: str, detail: str = "", by: User | None = None
) -> SupplyRequest:
    """Ask for ``action`` on the customer's supply; an open request of the same action is kept."""
    if action not in Action.values:
        raise ValueError(f"Unknown supply action {action!r}.")
    existing = open_request(customer, action)
    if existing is not None:
        return existing
    opposite = open_request(customer, _OPPOSITE[Action(action)])
    if opposite is not None:
        close(request=opposite, status=Status.CANCELLED, outcome=f"Superseded: {reason}", by=by)
    req = SupplyRequest(
        customer=customer,
        action=action,
        reason=reason,
        detail=detail[:300],
        requested_at=clock.now(),
        requested_by=by,
    )
    try:
        with transaction.atomic():
            req.save()
    except IntegrityError:  # opened concurrently: the constraint keeps one
        return open_request(customer, action)
    audit.record(
        AuditEvent.Action.CREATE,
        req,
        after=audit.snapshot(req),
        site=customer.site,
        note=f"{action} requested: {reason}",
    )
    _hand_to_steering(req, by)
    return req


def _hand_to_steering(req: SupplyRequest, by: User | None) -> None:
    """Give the request to the steering rules; what they cannot take is noted, kept open.

    Collections asks for an arrears disconnection only once the notice and the grace
    period have run out, so the notice period has ended when the request is made.
    """
    try:
        with transaction.atomic():
            steering.submit(
                customer_id=req.customer_id,
                meter=None,
                action=req.action,
                reason=_STEERING_REASON[SupplyRequest.Reason(req.reason)],
                source="billing" if by is None else "staff",
                requested_by=by,
                note=req.detail,
                source_ref=source_ref(req),
                notice_ends_at=req.requested_at if req.reason == req.Reason.ARREARS else None,
            )
    except ValidationError as exc:
        note = "; ".join(exc.messages)
        SupplyRequest.objects.filter(pk=req.pk).update(outcome=f"Not steered: {note}"[:300])
        log.warning("supply request %s not steered: %s", req.pk, note)


def sync_outcomes() -> dict[str, int]:
    """Close every open request that steering has finished with; returns counts by status."""
    counts = {Status.DONE: 0, Status.REFUSED: 0, Status.CANCELLED: 0}
    for req in SupplyRequest.objects.filter(status=Status.REQUESTED).select_related("customer"):
        result = steering.outcome_of(source_ref(req))
        if result is None or not result["finished"]:
            continue
        if result["done"]:
            status, outcome = Status.DONE, f"Done: relay {result['relay'] or 'confirmed'}"
        elif result["status"] == "cancelled":
            status, outcome = Status.CANCELLED, result["why"] or "Cancelled by steering"
        else:
            status, outcome = Status.REFUSED, result["why"] or result["status"]
        close(request=req, status=status, outcome=outcome)
        counts[status] += 1
    return counts


@transaction.atomic
def close(*, request: SupplyRequest, status: str, outcome: str = "", by: User | None = None):
    """Record that ``request`` was carried out, cancelled or refused."""
    if status not in (Status.DONE, Status.CANCELLED, Status.REFUSED):
        raise ValueError(f"A request is closed as done, cancelled or refused, not {status!r}.")
    req = SupplyRequest.objects.select_for_update().get(pk=request.pk)
    if req.status != Status.REQUESTED:
        raise ValueError(f"{req} is already closed.")
    before = audit.snapshot(req)
    req.status = status
    req.outcome = outcome[:300]
    req.closed_at = clock.now()
    req.save(update_fields=["status", "outcome", "closed_at"])
    audit.record(
        AuditEvent.Action.UPDATE,
        req,
        before=before,
        after=audit.snapshot(req),
        site=req.customer.site,
        note=f"{req.action} {status}",
    )
    if status == Status.DONE:
        _notify(req)
    return req


def _notify(req: SupplyRequest) -> None:
    """Tell the customer their supply was cut or restored; never blocks the change."""
    customer = req.customer
    context = {"name": customer.first_name, "account": customer.account_number}
    if req.action == Action.DISCONNECT:
        owed = max(ledger.customer_balance(customer), Decimal(0))
        context.update(currency=customer.site.currency, amount=f"{owed:,}")
        template = "disconnected"
    else:
        template = "reconnected"
    try:
        messaging.send_message(
            to=customer.phone,
            template=template,
            context=context,
            language=customer.language,
            about=f"billing.supplyrequest:{req.pk}",
            site_id=customer.site_id,
            timezone=customer.site.timezone,
        )
    except messaging.TemplateMissing:
        log.warning("no %s template: customer %s not told", template, customer.pk)
