"""Payments: requests to providers, recording money received, cash, reversals and refunds.

The public entry points:

- :func:`request_to_pay` — ask a customer's phone (MTN, Airtel) or start a card checkout
  (Pesapal) for an amount; used by the USSD menu, the customer portal and staff pages.
- :func:`handle_callback` / :func:`refresh` — a provider's callback or our poll; the status
  is always fetched from the provider and cross-checked (amount, currency, our
  reference) before anything is credited; a mismatch holds the request for review.
- :func:`record_payment` — the one way money received is recorded, by every channel:
  a receipt number, the ledger posting, fees, allocation to invoices (oldest first),
  prepaid top-up handling and the ``payment_received`` SMS after commit. Idempotent on
  the provider's transaction id.
- :func:`record_cash`, :func:`cash_on_hand`, :func:`cash_handover` — field agents' cash.
- :func:`reverse_payment`, :func:`refund_request`, :func:`refund_approve` — undoing money.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Sum

from billing import ledger
from billing.models import LedgerAccount, MoneyRequest, Posting
from billing.payments import allocation, providers
from billing.payments.models import (
    CashHandover,
    Method,
    Payment,
    PaymentRequest,
    ReceiptSequence,
    Refund,
)
from billing.prepaid import hooks as prepaid_hooks
from customers.models import Customer
from customers.phones import normalise_phone
from mcoms.core import audit, clock
from mcoms.core.models import AuditEvent, Site, User
from mcoms.core.permissions import require
from mcoms.core.roles import Cap

log = logging.getLogger("billing.payments")
ZERO = Decimal(0)
MOBILE = (Method.MTN, Method.AIRTEL)
ONLINE = (Method.MTN, Method.AIRTEL, Method.PESAPAL)
Status = PaymentRequest.Status
AMBIGUOUS_NOTE = "Airtel reports the outcome as ambiguous (TA)"


# --- Amounts and dates -----------------------------------------------------------------------


def to_money(
    value, currency: str, *, what: str = "The amount", allow_zero: bool = False
) -> Decimal:
    """``value`` as an exact Decimal in ``currency``, or a ValidationError saying what is wrong."""
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).replace(",", ""))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationError(f"{what} {value!r} is not a number.") from exc
    if not amount.is_finite():
        raise ValidationError(f"{what} must be a number.")
    if amount != ledger.round_money(amount, currency):
        unit = ledger.minor_unit(currency)
        raise ValidationError(f"{what} must be a whole multiple of {unit} {currency}.")
    if amount < 0 or (amount == 0 and not allow_zero):
        raise ValidationError(f"{what} must be more than zero.")
    return amount.quantize(ledger.minor_unit(currency))


def local_day(site: Site, at: dt.datetime | None = None) -> dt.date:
    """The site's local calendar day at ``at`` (default now)."""
    return clock.resolve(at).astimezone(site.zone).date()


def _posting_date(site: Site, at: dt.datetime) -> dt.date:
    """The day money received at ``at`` is posted on; today when that month is closed."""
    day = local_day(site, at)
    try:
        ledger.check_open(site, day)
    except ledger.PeriodClosedError:
        return local_day(site)
    return day


def customer_fee(method: str, amount: Decimal, currency: str) -> Decimal:
    """The fee the customer pays on top for ``method`` (``PAYMENT_CUSTOMER_FEES``)."""
    for item in settings.PAYMENT_CUSTOMER_FEES:
        name, _, rest = item.partition(":")
        if name.strip() != method:
            continue
        flat, _, percent = rest.partition(":")
        fee = Decimal(flat or "0") + amount * Decimal(percent or "0") / 100
        return ledger.round_money(fee, currency)
    return ZERO


def source_for(method: str, agent: User | None = None) -> ledger.Source:
    """Where money paid by ``method`` lands in the ledger."""
    if method == Method.CASH:
        if agent is None:
            raise ValidationError("A cash payment names the agent who holds the cash.")
        return ledger.Source("cash", agent=agent)
    if method == Method.BANK:
        return ledger.Source("bank")
    return ledger.Source("mobile_money", provider=method)


# --- Requests to providers --------------------------------------------------------------------


def request_to_pay(
    *,
    customer: Customer,
    amount,
    phone: str | None = None,
    provider: str | None = None,
    channel: str,
    by: User | None = None,
) -> PaymentRequest:
    """Ask for ``amount`` towards ``customer``'s account; returns the request.

    The provider is ``provider`` when given, else the payer's network (MTN or Airtel by
    the number's prefix, the customer's own number when no ``phone``). ``pesapal``
    starts a card checkout: send the customer to the request's ``redirect_url``. The
    request is ``pending`` until the provider reports; ``failed`` with a reason in
    ``detail`` when the provider refused it. Bad input raises ValidationError.
    """
    site = customer.site
    amount = to_money(amount, site.currency)
    if channel not in PaymentRequest.Channel.values:
        raise ValidationError(f"Unknown channel {channel!r}.")
    if phone:
        phone = normalise_phone(phone)
    method = provider or providers.network_for(phone or customer.phone)
    if method not in ONLINE:
        raise ValidationError(
            f"{method!r} cannot be requested online; choose MTN, Airtel or Pesapal."
        )
    if method in MOBILE:
        phone = phone or customer.phone
        if not phone:
            raise ValidationError("Give the number to ask for the payment.")
    now = clock.now()
    request = PaymentRequest.objects.create(
        provider=method,
        customer=customer,
        amount=amount,
        currency=site.currency,
        phone=phone or "",
        channel=channel,
        fee=customer_fee(method, amount, site.currency),
        requested_by=by if by is not None and by.pk else None,
        created_at=now,
        updated_at=now,
    )
    audit.record(
        AuditEvent.Action.CREATE,
        request,
        after=audit.snapshot(request),
        site=site.pk,
        note=f"{method} payment requested",
    )
    provider_ = providers.get(method)
    try:
        started = provider_.request_payment(request)
    except providers.ProviderRefused as exc:
        return _set_status(request, Status.FAILED, str(exc))
    except providers.ProviderUnavailable as exc:
        # It may or may not have reached them; the poller asks (same reference, no double charge).
        request.detail = f"No answer from the provider yet ({exc}); checking again shortly."[:300]
        request.save(update_fields=["detail"])
        return request
    request.provider_txn_id = started.provider_ref if method == Method.PESAPAL else ""
    request.redirect_url = started.redirect_url
    request.save(update_fields=["provider_txn_id", "redirect_url"])
    if started.state == providers.SUCCESSFUL:  # the console provider pays at once
        return refresh(request)
    return request


def _set_status(request: PaymentRequest, status: str, detail: str = "") -> PaymentRequest:
    fields = ["status", "detail", "updated_at", "provider_txn_id"]
    before = audit.snapshot(request, fields)
    request.status = status
    request.detail = detail[:300]
    request.updated_at = clock.now()
    request.save(update_fields=fields)
    audit.record(
        AuditEvent.Action.TRANSITION,
        request,
        before=before,
        after=audit.snapshot(request, fields),
        site=request.customer.site_id,
        note=f"payment request {status}",
    )
    return request


def _mismatches(request: PaymentRequest, claim) -> list[str]:
    """How what ``claim`` (a status or a callback) says differs from what we asked."""
    wanted = request.amount + request.fee
    ours = {str(request.reference), request.reference.hex}
    found = []
    if claim.amount is not None and claim.amount != wanted:
        found.append(f"amount {claim.amount} instead of {wanted}")
    if claim.currency and claim.currency.upper() != request.currency:
        found.append(f"currency {claim.currency} instead of {request.currency}")
    if claim.account and claim.account not in ours:
        found.append(f"reference {claim.account!r} is not ours")
    return found


def apply_outcome(
    request: PaymentRequest, outcome: providers.Outcome, claimed: providers.Callback | None = None
) -> PaymentRequest:
    """Act on what the provider says about ``request``: credit, fail, hold, or wait.

    Idempotent: a request that is already paid, failed or held is left as it is, so a
    second callback or a poll after a callback records nothing more.
    """
    with transaction.atomic():
        request = (
            PaymentRequest.objects.select_for_update()
            .select_related("customer__site")
            .get(pk=request.pk)
        )
        if request.status != Status.PENDING:
            return request
        if outcome.state in (providers.PENDING, providers.UNKNOWN):
            if outcome.reason == "TA" and request.detail != AMBIGUOUS_NOTE:
                request.detail = AMBIGUOUS_NOTE
                request.save(update_fields=["detail"])
            return request
        if outcome.state in (providers.FAILED, providers.REVERSED):
            reason = outcome.reason or (
                "Reversed by the provider" if outcome.state == providers.REVERSED else ""
            )
            return _set_status(request, Status.FAILED, reason or "The payer did not pay.")
        problems = _mismatches(request, outcome)
        if claimed is not None:
            problems += [f"callback: {p}" for p in _mismatches(request, claimed)]
        request.provider_txn_id = outcome.provider_txn_id or request.provider_txn_id
        if problems:
            note = "Held for review: the provider reports " + "; ".join(problems)
            return _set_status(request, Status.HELD, note)
        txn = request.provider_txn_id or str(request.reference)
        taken = Payment.objects.filter(method=request.provider, provider_txn_id=txn).first()
        if taken is not None and taken.request_id != request.pk:
            note = f"Held for review: transaction {txn} is already receipt {taken.receipt_number}"
            return _set_status(request, Status.HELD, note)
        record_payment(
            customer=request.customer,
            amount=request.amount,
            fee=request.fee,
            method=request.provider,
            provider_txn_id=txn,
            request=request,
            by=request.requested_by,
        )
        return _set_status(request, Status.SUCCESSFUL, "")


def refresh(request: PaymentRequest) -> PaymentRequest:
    """Ask the provider where ``request`` stands and act on it (a poll)."""
    request.polls += 1
    request.last_polled_at = clock.now()
    request.save(update_fields=["polls", "last_polled_at"])
    try:
        outcome = providers.get(request.provider).status(request)
    except providers.ProviderError as exc:
        log.warning("payment request %s: status unavailable: %s", request.reference, exc)
        return request
    return apply_outcome(request, outcome)


def find_request(method: str, info: providers.Callback) -> PaymentRequest | None:
    """The request a callback is about, by our reference or the provider's id."""
    found = PaymentRequest.objects.filter(provider=method)
    if info.reference:
        try:
            return found.filter(reference=uuid.UUID(info.reference)).first()
        except ValueError:
            return None
    if info.provider_ref:
        return found.filter(provider_txn_id=info.provider_ref).first()
    return None


def handle_callback(method: str, body: bytes, query: dict) -> PaymentRequest | None:
    """A provider's callback: find our request, fetch its status, cross-check, act.

    Raises :class:`~billing.payments.providers.ProviderUnavailable` when the status
    cannot be fetched (the poller will try again). Returns None for a request we
    never made.
    """
    provider = providers.get(method)
    info = provider.parse_callback(body, query)
    request = find_request(method, info)
    if request is None:
        log.warning("%s callback for no request of ours: %s", method, info)
        return None
    request.polls += 1
    request.last_polled_at = clock.now()
    if method == Method.PESAPAL and info.provider_ref and not request.provider_txn_id:
        # Our order call timed out but reached Pesapal: its IPN tells us the tracking id.
        # A wrong one cannot credit anything: the status it gives must name our reference.
        request.provider_txn_id = info.provider_ref
    request.save(update_fields=["polls", "last_polled_at", "provider_txn_id"])
    outcome = provider.status(request)
    return apply_outcome(request, outcome, claimed=info)


def poll_pending(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Poll every pending request; expire those older than ``PAYMENT_REQUEST_EXPIRY_MINUTES``.

    An Airtel request whose last answer was ambiguous is held for review instead of
    expired: the money may have left the payer's wallet.
    """
    now = clock.resolve(now)
    cutoff = now - dt.timedelta(minutes=settings.PAYMENT_REQUEST_EXPIRY_MINUTES)
    counts = {"polled": 0, "paid": 0, "failed": 0, "expired": 0, "held": 0}
    pending = PaymentRequest.objects.filter(status=Status.PENDING).select_related("customer__site")
    for request in pending.order_by("created_at", "id"):
        request = refresh(request)
        counts["polled"] += 1
        if request.status == Status.PENDING and request.created_at <= cutoff:
            if request.detail == AMBIGUOUS_NOTE:
                request = _set_status(request, Status.HELD, AMBIGUOUS_NOTE + "; never settled.")
            else:
                request = _set_status(
                    request, Status.EXPIRED, "No answer before the request expired."
                )
        key = {
            Status.SUCCESSFUL: "paid",
            Status.FAILED: "failed",
            Status.EXPIRED: "expired",
            Status.HELD: "held",
        }.get(request.status)
        if key:
            counts[key] += 1
    return counts


@transaction.atomic
def resolve_held(
    *, request: PaymentRequest, action: str, by: User, note: str, amount=None
) -> PaymentRequest:
    """A person decides a held request: ``credit`` it (``amount``, default what we asked)
    or ``reject`` it."""
    request = (
        PaymentRequest.objects.select_for_update()
        .select_related("customer__site")
        .get(pk=request.pk)
    )
    require(by, Cap.MONEY_APPROVE, request.customer.site_id)
    if request.status != Status.HELD:
        raise ValidationError("Only a request held for review can be resolved.")
    if not note.strip():
        raise ValidationError("Say why.")
    if action == "credit":
        value = request.amount if amount in (None, "") else to_money(amount, request.currency)
        record_payment(
            customer=request.customer,
            amount=value,
            method=request.provider,
            provider_txn_id=request.provider_txn_id or str(request.reference),
            request=request,
            by=by,
            note=f"Credited after review: {note}",
        )
        return _set_status(request, Status.SUCCESSFUL, f"Credited after review by {by}: {note}")
    if action == "reject":
        return _set_status(request, Status.FAILED, f"Rejected after review by {by}: {note}")
    raise ValidationError(f"Unknown action {action!r}.")


# --- Recording money received ------------------------------------------------------------------


def next_receipt_number(site: Site) -> str:
    """The site's next receipt number, e.g. ``R-KLA-A-000123`` (call inside a transaction)."""
    sequence, _ = ReceiptSequence.objects.select_for_update().get_or_create(site=site)
    sequence.last += 1
    sequence.save(update_fields=["last"])
    return f"R-{site.code.upper()}-{sequence.last:06d}"


@transaction.atomic
def record_payment(
    *,
    customer: Customer,
    amount,
    method: str,
    received_at: dt.datetime | None = None,
    provider_txn_id: str = "",
    fee=ZERO,
    operator_fee=ZERO,
    agent: User | None = None,
    request: PaymentRequest | None = None,
    by: User | None = None,
    note: str = "",
) -> Payment:
    """Record money received from ``customer`` by any channel; returns the payment.

    ``amount`` reaches the account; ``fee`` is what the customer paid on top (shown on
    the receipt, credited to fee revenue); ``operator_fee`` is what the provider
    charged us (posted with :func:`billing.ledger.fee_post`). A payment is recorded once
    per ``(method, provider_txn_id)``: a repeat returns the first one unchanged.
    """
    site = customer.site
    currency = site.currency
    amount = to_money(amount, currency)
    fee = to_money(fee, currency, what="The fee", allow_zero=True)
    operator_fee = to_money(operator_fee, currency, what="The provider's fee", allow_zero=True)
    if method not in Method.values:
        raise ValidationError(f"Unknown payment method {method!r}.")
    source = source_for(method, agent)
    if provider_txn_id:
        existing = Payment.objects.filter(method=method, provider_txn_id=provider_txn_id).first()
        if existing is not None:
            return existing
    received_at = clock.resolve(received_at)
    date = _posting_date(site, received_at)
    number = next_receipt_number(site)
    reference = f"{method}:{provider_txn_id}" if provider_txn_id else number
    memo = f"Receipt {number}" + (f" ({method} {provider_txn_id})" if provider_txn_id else "")
    try:
        posting = ledger.payment_post(
            customer=customer,
            amount=amount,
            date=date,
            source=source,
            by=by,
            memo=memo,
            reference=reference,
        )
    except ledger.DuplicatePostingError as exc:
        existing = Payment.objects.filter(posting=exc.existing).first()
        if existing is not None:
            return existing
        raise
    if fee:
        ledger.post(
            site=site,
            kind=Posting.Kind.FEE,
            date=date,
            lines=[
                ledger.Line(ledger.source_account(site, source), fee),
                ledger.Line(ledger.account(site, LedgerAccount.Kind.REVENUE_FEES), -fee),
            ],
            by=by,
            memo=f"Customer's fee on receipt {number}",
            reference=f"{reference}:fee",
        )
    if operator_fee:
        post_operator_fee(
            site=site,
            method=method,
            txn=provider_txn_id or number,
            amount=operator_fee,
            date=date,
            by=by,
        )
    payment = Payment.objects.create(
        receipt_number=number,
        customer=customer,
        site=site,
        method=method,
        amount=amount,
        fee=fee,
        currency=currency,
        provider_txn_id=provider_txn_id,
        received_at=received_at,
        recorded_by=by if by is not None and by.pk else None,
        agent=agent,
        request=request,
        posting=posting,
        note=note[:300],
    )
    audit.record(
        AuditEvent.Action.CREATE,
        payment,
        after=audit.snapshot(payment),
        site=site,
        note=f"{method} payment recorded",
    )
    allocation.allocate(customer)
    prepaid_hooks.payment_received(payment)
    pk = payment.pk
    transaction.on_commit(lambda: send_receipt_sms(pk))
    return payment


def post_operator_fee(
    *, site: Site, method: str, txn: str, amount: Decimal, date: dt.date, by: User | None = None
) -> Posting | None:
    """The provider's fee on one transaction, posted once (``<method>:<txn>:provider-fee``)."""
    try:
        return ledger.fee_post(
            site=site,
            amount=amount,
            date=date,
            source=source_for(method),
            by=by,
            memo=f"{Method(method).label} fee on {txn}",
            reference=f"{method}:{txn}:provider-fee",
        )
    except ledger.DuplicatePostingError:
        return None


def send_receipt_sms(payment_id: int) -> None:
    """Send the ``payment_received`` SMS for a payment (after its transaction commits)."""
    from billing.payments import receipts

    receipts.send_sms(Payment.objects.select_related("customer", "site").get(pk=payment_id))


# --- Cash taken by field agents ----------------------------------------------------------------


def record_cash(
    *, customer: Customer, amount, agent: User, note: str = "", received_at=None
) -> Payment:
    """A field agent took cash from ``customer``: receipted and on the agent's cash account."""
    require(agent, Cap.PAYMENTS_RECORD, customer.site_id)
    return record_payment(
        customer=customer,
        amount=amount,
        method=Method.CASH,
        agent=agent,
        by=agent,
        note=note,
        received_at=received_at,
    )


def cash_account(site: Site, agent: User) -> LedgerAccount:
    return ledger.account(site, LedgerAccount.Kind.CASH, agent=agent)


def cash_on_hand(agent: User, site: Site) -> Decimal:
    """What the agent holds on ``site`` by the ledger: cash taken less cash handed over."""
    found = LedgerAccount.objects.filter(
        site=site, kind=LedgerAccount.Kind.CASH, agent=agent, currency=site.currency
    ).first()
    return ledger.balance(found) if found is not None else ZERO


def cash_positions(sites) -> list[dict]:
    """Every agent's cash on hand on ``sites``: ``site``, ``agent``, ``balance``, last hand-over."""
    rows = []
    accounts = (
        LedgerAccount.objects.filter(site__in=sites, kind=LedgerAccount.Kind.CASH)
        .select_related("site", "agent")
        .annotate(total=Sum("lines__amount"))
        .order_by("site__name", "agent__username")
    )
    for acct in accounts:
        last = CashHandover.objects.filter(site=acct.site, agent=acct.agent).first()
        rows.append(
            {
                "site": acct.site,
                "agent": acct.agent,
                "currency": acct.currency,
                "balance": (acct.total or ZERO).quantize(ledger.minor_unit(acct.currency)),
                "last": last,
                "account_pk": acct.pk,
            }
        )
    return rows


@transaction.atomic
def cash_handover(
    *,
    agent: User,
    site: Site,
    counted,
    received_by: User,
    destination: str = CashHandover.Destination.BANK,
    note: str = "",
) -> CashHandover:
    """The office receives an agent's cash: counted against the ledger, moved, recorded.

    ``counted`` moves from the agent's cash account to the bank (or the receiver's own
    cash account); any difference stays on the agent's account and is shown.
    """
    require(received_by, Cap.CASH_RECEIVE, site.pk)
    if received_by.pk == agent.pk:
        raise PermissionDenied("Someone else must receive your cash.")
    if destination not in CashHandover.Destination.values:
        raise ValidationError(f"Unknown destination {destination!r}.")
    counted = to_money(counted, site.currency, what="The counted amount", allow_zero=True)
    acct = cash_account(site, agent)
    LedgerAccount.objects.select_for_update().get(pk=acct.pk)
    expected = ledger.balance(acct)
    posting = None
    if counted:
        target = (
            ledger.account(site, LedgerAccount.Kind.BANK)
            if destination == CashHandover.Destination.BANK
            else cash_account(site, received_by)
        )
        posting = ledger.post(
            site=site,
            kind=Posting.Kind.ADJUSTMENT,
            date=local_day(site),
            lines=[ledger.Line(target, counted), ledger.Line(acct, -counted)],
            by=received_by,
            memo=f"Cash hand-over from {agent.get_username()}: counted {counted}, "
            f"expected {expected}",
        )
    handover = CashHandover.objects.create(
        site=site,
        agent=agent,
        received_by=received_by,
        currency=site.currency,
        expected=expected,
        counted=counted,
        difference=counted - expected,
        destination=destination,
        posting=posting,
        received_at=clock.now(),
        note=note[:300],
    )
    audit.record(
        AuditEvent.Action.CREATE,
        handover,
        after=audit.snapshot(handover),
        site=site,
        note="cash handed over"
        + (f", difference {handover.difference}" if handover.difference else ""),
    )
    return handover


# --- Reversals and refunds ---------------------------------------------------------------------


@transaction.atomic
def reverse_payment(*, payment: Payment, reason: str, by: User) -> Payment:
    """Undo a mistaken payment: its postings reversed, its allocations removed, audited.

    Prepaid follows (:func:`billing.prepaid.hooks.payment_reversed`): a token not yet
    issued is cancelled, prepaid credit is looked at again.
    """
    payment = (
        Payment.objects.select_for_update()
        .select_related("customer__site", "posting")
        .get(pk=payment.pk)
    )
    require(by, Cap.MONEY_APPROVE, payment.site_id)
    if payment.status != Payment.Status.COMPLETED or payment.refunded:
        raise ValidationError("Only a completed payment with nothing refunded can be reversed.")
    if not reason.strip():
        raise ValidationError("Say why the payment is reversed.")
    site = payment.site
    day = local_day(site)
    reversal = ledger.reversal_post(original=payment.posting, date=day, reason=reason, by=by)
    base = payment.posting.reference
    for suffix in (":fee", ":provider-fee"):
        linked = Posting.objects.filter(site=site, reference=f"{base}{suffix}").first()
        if linked is not None and not Posting.objects.filter(reverses=linked).exists():
            ledger.reversal_post(original=linked, date=day, reason=reason, by=by)
    for alloc in payment.allocations.all():
        audit.record(
            AuditEvent.Action.DELETE,
            alloc,
            before=audit.snapshot(alloc),
            site=site,
            note=f"allocation undone: receipt {payment.receipt_number} reversed",
        )
        alloc.delete()
    fields = ["status", "reversal", "reversed_reason"]
    before = audit.snapshot(payment, fields)
    payment.status = Payment.Status.REVERSED
    payment.reversal = reversal
    payment.reversed_reason = reason[:300]
    payment.save(update_fields=fields)
    audit.record(
        AuditEvent.Action.TRANSITION,
        payment,
        before=before,
        after=audit.snapshot(payment, fields),
        site=site,
        note=f"payment reversed: {reason}",
    )
    allocation.allocate(payment.customer)
    prepaid_hooks.payment_reversed(payment, reason=reason, by=by)
    return payment


def refundable(payment: Payment) -> Decimal:
    """What of ``payment`` is still unallocated and not already asked back."""
    used = payment.allocations.aggregate(s=Sum("amount"))["s"] or ZERO
    asked = (
        payment.refunds.filter(money_request__status=MoneyRequest.Status.REQUESTED).aggregate(
            s=Sum("amount")
        )["s"]
        or ZERO
    )
    return payment.amount - payment.refunded - used - asked


@transaction.atomic
def refund_request(*, payment: Payment, amount, reason: str, by: User) -> Refund:
    """Ask to pay back unallocated money of ``payment``; a second person approves it."""
    payment = (
        Payment.objects.select_for_update().select_related("customer__site").get(pk=payment.pk)
    )
    require(by, Cap.MONEY_APPROVE, payment.site_id)
    if payment.status != Payment.Status.COMPLETED:
        raise ValidationError("Only a completed payment can be refunded.")
    amount = to_money(amount, payment.currency)
    available = refundable(payment)
    if amount > available:
        raise ValidationError(
            f"Only {available} {payment.currency} of this payment is unallocated credit; "
            "money already set against invoices cannot be refunded."
        )
    money_request = ledger.refund_request(
        customer=payment.customer,
        amount=amount,
        source=source_for(payment.method, payment.agent),
        reason=reason,
        by=by,
    )
    return Refund.objects.create(
        payment=payment, money_request=money_request, amount=amount, created_at=clock.now()
    )


@transaction.atomic
def refund_approve(*, refund: Refund, by: User, note: str = "") -> Refund:
    """A second person approves: the refund is posted and the payment marks it."""
    refund = Refund.objects.select_related("payment__site").get(pk=refund.pk)
    payment = Payment.objects.select_for_update().get(pk=refund.payment_id)
    require(by, Cap.MONEY_APPROVE, payment.site_id)
    ledger.money_request_approve(
        request=refund.money_request, by=by, date=local_day(payment.site), note=note
    )
    fields = ["refunded", "status"]
    before = audit.snapshot(payment, fields)
    payment.refunded += refund.amount
    if payment.refunded >= payment.amount:
        payment.status = Payment.Status.REFUNDED
    payment.save(update_fields=fields)
    audit.record(
        AuditEvent.Action.UPDATE,
        payment,
        before=before,
        after=audit.snapshot(payment, fields),
        site=payment.site_id,
        note=f"refund of {refund.amount} approved",
    )
    return refund


@transaction.atomic
def refund_reject(*, refund: Refund, by: User, note: str) -> Refund:
    """Turn a refund down (or withdraw one's own), saying why."""
    require(by, Cap.MONEY_APPROVE, refund.payment.site_id)
    ledger.money_request_reject(request=refund.money_request, by=by, note=note)
    return refund
