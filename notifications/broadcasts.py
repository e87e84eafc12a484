"""Staff messaging: one text to one customer, a site, an arrears group or a site's field agents.

The audience is resolved here (this module sits above the apps and may read customers
and billing; the messaging core does not). :func:`preview` lists who would get the text,
who is skipped and why (opted out, no phone), its SMS segments and an estimated cost.
:func:`broadcast_create` records a :class:`~notifications.models.Broadcast` to send now or
at a time; :func:`send` (the Celery task :func:`send_broadcast`) resolves the audience
again when it runs and queues one ``staff_broadcast`` message per recipient through
:func:`notifications.services.send_message`, counting progress as it goes. Broadcasts are
not essential messages: opted-out numbers are skipped and quiet hours hold them back.

Sending is resumable: a recipient already messaged by the broadcast is not messaged
again, and :func:`send_due` (run every minute) picks up scheduled broadcasts whose time
has come and sends that stalled.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from decimal import Decimal

from celery import shared_task
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Q, Sum

from billing.ledger import minor_unit
from billing.models import LedgerAccount, PostingLine
from customers.models import Customer
from customers.selectors import customers_visible_to
from mcoms.core import audit, clock, outbox
from mcoms.core.models import AuditEvent, Site, User
from mcoms.core.roles import Cap, Role
from mcoms.core.selectors import can_on_site, staff_of_site
from notifications import preferences
from notifications.backends import backend_path_for
from notifications.models import Broadcast, Channel, Language, Message, MessageTemplate
from notifications.segments import segment_info
from notifications.services import render, send_message

log = logging.getLogger(__name__)

TEMPLATE = "staff_broadcast"
MAX_LENGTH = 612  # four GSM-7 segments
PROGRESS_EVERY = 25
STALLED_AFTER = dt.timedelta(minutes=5)
COST_HISTORY = dt.timedelta(days=30)
Audience = Broadcast.Audience


@dataclass(frozen=True)
class Recipient:
    name: str
    phone: str
    language: str
    kind: str  # "customer" or "staff"
    pk: int
    detail: str = ""  # e.g. the amount owed
    skip: str = ""  # why not sent: opted out, no phone


@dataclass
class Preview:
    recipients: list[Recipient]
    segments: int
    encoding: str
    cost_per_segment: Decimal | None
    cost_currency: str
    cost_basis: str
    description: str
    to_send: list[Recipient] = field(init=False)
    skipped: list[Recipient] = field(init=False)

    def __post_init__(self) -> None:
        self.to_send = [r for r in self.recipients if not r.skip]
        self.skipped = [r for r in self.recipients if r.skip]

    @property
    def cost(self) -> Decimal | None:
        if self.cost_per_segment is None:
            return None
        return (self.cost_per_segment * self.segments * len(self.to_send)).quantize(Decimal("0.01"))


# --- Audiences ------------------------------------------------------------------------------


def arrears_balances(site: Site) -> dict[int, Decimal]:
    """What each customer of ``site`` owes by the ledger (receivable balance), if non-zero.

    The same sum as :func:`billing.ledger.customer_balance`, for the whole site in one
    query and without opening accounts for customers who have none.
    """
    rows = (
        PostingLine.objects.filter(
            account__site=site,
            account__currency=site.currency,
            account__kind=LedgerAccount.Kind.RECEIVABLE,
        )
        .values_list("account__customer")
        .annotate(total=Sum("amount"))
    )
    unit = minor_unit(site.currency)
    return {customer: total.quantize(unit) for customer, total in rows if total}


def _customer_recipient(customer: Customer, detail: str = "") -> Recipient:
    skip = ""
    if not customer.phone:
        skip = "no phone number"
    elif preferences.opted_out(customer.phone):
        skip = "opted out"
    return Recipient(
        customer.full_name, customer.phone, customer.language, "customer", customer.pk, detail, skip
    )


def _staff_recipient(user: User) -> Recipient:
    phone = user.phone or ""
    skip = "no phone number" if not phone else ("opted out" if preferences.opted_out(phone) else "")
    name = user.get_full_name() or user.get_username()
    return Recipient(name, phone, Language.ENGLISH, "staff", user.pk, user.get_role_display(), skip)


def audience_recipients(site: Site, audience: str, params: dict) -> list[Recipient]:
    """Everyone the audience names today, with why any of them would be skipped."""
    live = Customer.objects.filter(site=site).exclude(status=Customer.Status.CLOSED)
    if audience == Audience.CUSTOMER:
        customer = live.filter(pk=params.get("customer_id")).first()
        return [_customer_recipient(customer)] if customer else []
    if audience == Audience.SITE:
        return [_customer_recipient(c) for c in live.order_by("account_number")]
    if audience == Audience.ARREARS:
        least = Decimal(str(params.get("min_amount", "0")))
        owing = {pk: owed for pk, owed in arrears_balances(site).items() if owed > least}
        customers = live.filter(pk__in=owing).order_by("account_number")
        return [_customer_recipient(c, f"owes {site.currency} {owing[c.pk]:,}") for c in customers]
    if audience == Audience.AGENTS:
        agents = staff_of_site(site, {Role.FIELD_AGENT}).order_by("username")
        return [_staff_recipient(u) for u in agents]
    raise ValueError(f"Unknown audience {audience!r}")


def describe(site: Site, audience: str, params: dict) -> str:
    """The audience in words, as stored on the broadcast and shown in lists."""
    if audience == Audience.CUSTOMER:
        customer = Customer.objects.filter(pk=params.get("customer_id")).first()
        who = f"{customer.full_name} ({customer.account_number})" if customer else "a customer"
        return f"{who}, {site.name}"
    if audience == Audience.SITE:
        return f"All customers of {site.name}"
    if audience == Audience.ARREARS:
        return f"Customers of {site.name} owing more than {site.currency} {params['min_amount']}"
    return f"Field agents of {site.name}"


# --- Cost -----------------------------------------------------------------------------------


def cost_per_segment(site_id: int, *, now: dt.datetime | None = None):
    """(cost, currency, basis): what one SMS segment costs on the site's backend.

    The average of what the provider charged for the site's messages over the last 30
    days; without that history, the ``SMS_COST_PER_SEGMENT`` setting
    (``SMS_COST_CURRENCY``); else unknown (None).
    """
    at = clock.resolve(now)
    backend = backend_path_for(Channel.SMS, site_id)
    history = (
        Message.objects.filter(
            site_id=site_id,
            backend=backend,
            cost__isnull=False,
            segments__gt=0,
            created_at__gte=at - COST_HISTORY,
        )
        .values("currency")
        .annotate(cost=Sum("cost"), segments=Sum("segments"))
        .order_by("-segments")
        .first()
    )
    if history and history["segments"]:
        per = (history["cost"] / history["segments"]).quantize(Decimal("0.0001"))
        return per, history["currency"], "average charged for this site's messages, 30 days"
    configured = getattr(settings, "SMS_COST_PER_SEGMENT", "")
    if configured not in ("", None):
        currency = getattr(settings, "SMS_COST_CURRENCY", "")
        return Decimal(str(configured)), currency, "configured cost per segment"
    return None, "", "no cost known yet for this site's SMS provider"


# --- Preview and create ---------------------------------------------------------------------


def check_body(body: str) -> str:
    body = (body or "").strip()
    if not body:
        raise ValidationError({"body": "Write the message."})
    if len(body) > MAX_LENGTH:
        raise ValidationError({"body": f"Keep it to {MAX_LENGTH} characters (it has {len(body)})."})
    return body


def _check_audience(user: User, site: Site, audience: str, params: dict) -> dict:
    if not can_on_site(user, Cap.MESSAGES_SEND, site.pk):
        raise PermissionDenied(f"{user} may not message {site}.")
    if audience not in Audience.values:
        raise ValidationError({"audience": "Choose who the message goes to."})
    if audience == Audience.CUSTOMER:
        customer_id = params.get("customer_id")
        if not customers_visible_to(user).filter(pk=customer_id, site=site).exists():
            raise ValidationError({"customer": f"No such customer on {site.name}."})
        return {"customer_id": int(customer_id)}
    if audience == Audience.ARREARS:
        try:
            least = Decimal(str(params.get("min_amount", "")))
        except ArithmeticError:
            least = Decimal(-1)
        if not least.is_finite() or least < 0:
            raise ValidationError({"min_amount": "Give the amount owed, zero or more."})
        return {"min_amount": str(least.quantize(minor_unit(site.currency)))}
    return {}


def preview(*, user: User, site: Site, audience: str, params: dict, body: str, now=None) -> Preview:
    """Who would get ``body`` now, who is skipped, and what it would cost."""
    params = _check_audience(user, site, audience, params)
    body = check_body(body)
    ensure_template()
    text = render(TEMPLATE, language=Language.ENGLISH, channel=Channel.SMS, context={"text": body})
    info = segment_info(text.body)
    per, currency, basis = cost_per_segment(site.pk, now=now)
    return Preview(
        recipients=audience_recipients(site, audience, params),
        segments=info.segments,
        encoding=info.encoding,
        cost_per_segment=per,
        cost_currency=currency,
        cost_basis=basis,
        description=describe(site, audience, params),
    )


def ensure_template() -> MessageTemplate:
    """The ``staff_broadcast`` template: its body is the broadcast's own text."""
    template, _ = MessageTemplate.objects.get_or_create(
        key=TEMPLATE,
        language=Language.ENGLISH,
        channel=Channel.SMS,
        defaults={"body": "{{ text }}", "essential": False},
    )
    return template


@transaction.atomic
def broadcast_create(
    *,
    user: User,
    site: Site,
    audience: str,
    params: dict,
    body: str,
    scheduled_for: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> Broadcast:
    """Record a broadcast; it is sent after commit (at ``scheduled_for`` when given)."""
    at = clock.resolve(now)
    params = _check_audience(user, site, audience, params)
    body = check_body(body)
    if scheduled_for is not None and scheduled_for <= at:
        scheduled_for = None  # a time already past means now
    broadcast = Broadcast.objects.create(
        created_by=user,
        created_at=at,
        site_id=site.pk,
        audience=audience,
        params=params,
        description=describe(site, audience, params)[:300],
        body=body,
        scheduled_for=scheduled_for,
    )
    audit.record(
        AuditEvent.Action.CREATE,
        broadcast,
        after=audit.snapshot(broadcast),
        site=site,
        note="broadcast " + ("scheduled" if scheduled_for else "sent"),
    )
    pk = broadcast.pk
    if scheduled_for is None:
        outbox.publish(send_broadcast, (pk,))  # send_due_broadcasts catches a lost one
    else:
        outbox.publish(send_broadcast, (pk,), eta=scheduled_for)
    return broadcast


@transaction.atomic
def broadcast_cancel(*, broadcast: Broadcast, user: User) -> Broadcast:
    """Call off a broadcast that has not started sending."""
    if not can_on_site(user, Cap.MESSAGES_SEND, broadcast.site_id):
        raise PermissionDenied
    changed = Broadcast.objects.filter(pk=broadcast.pk, status=Broadcast.Status.SCHEDULED).update(
        status=Broadcast.Status.CANCELLED, finished_at=clock.now()
    )
    broadcast.refresh_from_db()
    if not changed:
        raise ValidationError(
            f"This broadcast is already {broadcast.get_status_display().lower()}."
        )
    audit.record(
        AuditEvent.Action.TRANSITION,
        broadcast,
        before={"status": Broadcast.Status.SCHEDULED},
        after={"status": broadcast.status},
        site=broadcast.site_id,
        note="broadcast cancelled",
    )
    return broadcast


# --- Sending --------------------------------------------------------------------------------


def _claim(pk: int, at: dt.datetime) -> bool:
    due = Q(scheduled_for__isnull=True) | Q(scheduled_for__lte=at)
    fresh = Q(status=Broadcast.Status.SCHEDULED) & due
    stalled = Q(status=Broadcast.Status.SENDING) & (
        Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=at - STALLED_AFTER)
    )
    return bool(
        Broadcast.objects.filter(fresh | stalled, pk=pk).update(
            status=Broadcast.Status.SENDING, heartbeat_at=at
        )
    )


def send(pk: int, *, now: dt.datetime | None = None) -> Broadcast | None:
    """Send broadcast ``pk`` if it is due (or stalled); None when there is nothing to do."""
    at = clock.resolve(now)
    if not _claim(pk, at):
        return None
    broadcast = Broadcast.objects.get(pk=pk)
    site = Site.objects.get(pk=broadcast.site_id)
    ensure_template()
    recipients = audience_recipients(site, broadcast.audience, broadcast.params)
    done = set(Message.objects.filter(about=broadcast.about).values_list("to", flat=True))
    Broadcast.objects.filter(pk=pk).update(
        total=len(recipients), started_at=broadcast.started_at or at
    )
    processed, queued, skipped = 0, 0, 0
    for recipient in recipients:
        if recipient.skip and recipient.skip != "opted out":
            skipped += 1
        elif recipient.phone in done:
            queued += 1  # messaged before a restart: not again
        else:
            with transaction.atomic():
                message = send_message(
                    to=recipient.phone,
                    template=TEMPLATE,
                    context={"text": broadcast.body},
                    language=recipient.language,
                    about=broadcast.about,
                    site_id=site.pk,
                    timezone=site.timezone,
                    now=now,
                )
            done.add(recipient.phone)
            if message.status == Message.Status.SKIPPED:
                skipped += 1
            else:
                queued += 1
        processed += 1
        if processed % PROGRESS_EVERY == 0:
            Broadcast.objects.filter(pk=pk).update(
                processed=processed, queued=queued, skipped=skipped, heartbeat_at=clock.now()
            )
    Broadcast.objects.filter(pk=pk).update(
        processed=processed,
        queued=queued,
        skipped=skipped,
        status=Broadcast.Status.DONE,
        finished_at=clock.now(),
        heartbeat_at=clock.now(),
    )
    return Broadcast.objects.get(pk=pk)


def send_due(*, now: dt.datetime | None = None) -> int:
    """Send the scheduled broadcasts whose time has come and resume stalled ones."""
    at = clock.resolve(now)
    due = Broadcast.objects.filter(
        Q(status=Broadcast.Status.SCHEDULED, scheduled_for__lte=at)
        | Q(status=Broadcast.Status.SCHEDULED, scheduled_for__isnull=True)
        | Q(status=Broadcast.Status.SENDING, heartbeat_at__lt=at - STALLED_AFTER)
    ).values_list("pk", flat=True)
    return sum(send(pk, now=now) is not None for pk in list(due))


def progress(broadcast: Broadcast) -> dict:
    """Where a broadcast stands: recipients handled, and its messages by status."""
    rows = (
        Message.objects.filter(about=broadcast.about)
        .values_list("status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    counts = dict(rows)
    delivered = counts.get(Message.Status.DELIVERED, 0)
    sent = counts.get(Message.Status.SENT, 0) + delivered
    return {
        "total": broadcast.total,
        "processed": broadcast.processed,
        "sent": sent,
        "delivered": delivered,
        "failed": counts.get(Message.Status.FAILED, 0),
        "waiting": counts.get(Message.Status.QUEUED, 0) + counts.get(Message.Status.SENDING, 0),
        "skipped": broadcast.skipped,
        "percent": int(100 * broadcast.processed / broadcast.total) if broadcast.total else 0,
    }


@shared_task(acks_late=True, ignore_result=True)
def send_broadcast(pk: int) -> None:
    """Send one broadcast when its time has come (early runs do nothing)."""
    send(pk)


@shared_task(acks_late=True, ignore_result=True)
def send_due_broadcasts() -> int:
    """Every minute: scheduled broadcasts now due, and sends that stalled."""
    return send_due()
