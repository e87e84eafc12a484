"""Sending messages: render a template, log the message, deliver after commit."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.template import Context, Template

from mcoms.core import audit, clock, outbox
from mcoms.core.models import AuditEvent
from notifications import catalog, preferences
from notifications.backends import DeliveryError, backend_for, backend_path_for
from notifications.models import Channel, Language, Message, MessageTemplate
from notifications.segments import count_segments

log = logging.getLogger(__name__)


class TemplateMissing(LookupError):
    """No template exists for this event in any language for the channel."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    language: str


def render(key: str, *, language: str, channel: str, context: dict) -> Rendered:
    """Render the template for ``key`` in ``language``, falling back to English."""
    candidates = MessageTemplate.objects.filter(key=key, channel=channel)
    template = (
        candidates.filter(language=language).first()
        or candidates.filter(language=Language.ENGLISH).first()
    )
    if template is None:
        raise TemplateMissing(f"No {channel} template for {key!r}")
    ctx = Context(context, autoescape=False)
    return Rendered(
        subject=Template(template.subject).render(ctx).strip(),
        body=Template(template.body).render(ctx).strip(),
        language=template.language,
    )


def send_message(
    *,
    to: str,
    template: str,
    context: dict,
    channel: str = Channel.SMS,
    language: str = Language.ENGLISH,
    about: str = "",
    site_id: int | None = None,
    now: datetime | None = None,
    timezone: str | None = None,
) -> Message:
    """Queue a templated message to a phone number or email address.

    The message is logged at once; delivery is a Celery task started after the
    surrounding transaction commits, so a rolled-back change sends nothing.

    A non-essential message (see :mod:`notifications.catalog`) to a recipient who
    opted out is logged as skipped and never sent; one queued during the site's
    quiet hours waits (``not_before``) until they end, in ``timezone`` when given.
    Essential messages always go at once.
    """
    rendered = render(template, language=language, channel=channel, context=context)
    at = clock.resolve(now)
    essential = _essential(template, channel)
    skipped = not essential and preferences.opted_out(to)
    not_before = None
    if not essential and not skipped:
        not_before = preferences.quiet_until(at, site_id=site_id, timezone=timezone)
    message = Message.objects.create(
        channel=channel,
        to=to,
        template_key=template,
        language=rendered.language,
        subject=rendered.subject,
        body=rendered.body,
        about=about,
        site_id=site_id,
        backend=backend_path_for(channel, site_id),
        segments=count_segments(rendered.body) if channel == Channel.SMS else 0,
        created_at=at,
        not_before=not_before,
        status=Message.Status.SKIPPED if skipped else Message.Status.QUEUED,
        error="recipient opted out" if skipped else "",
    )
    if skipped:
        return message
    from notifications.tasks import deliver_message

    if not_before is not None:
        # Held for quiet hours: release_deferred sends it when due if this is lost.
        outbox.publish(deliver_message, (message.pk,), eta=not_before)
    else:
        outbox.enqueue(deliver_message, (message.pk,))  # kept until the broker takes it
    return message


def _essential(key: str, channel: str) -> bool:
    """The catalogue's word on ``key``; for uncatalogued events, the template's flag."""
    known = catalog.is_essential(key)
    if known is not None:
        return known
    return MessageTemplate.objects.filter(key=key, channel=channel, essential=True).exists()


RETRY_FIRST = timedelta(minutes=1)
RETRY_LONGEST = timedelta(minutes=30)
# A message still "queued" this long after creation without a retry time lost its task.
FIRST_TASK_GRACE = timedelta(minutes=2)


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: 1 min doubling, at most 30 min."""
    return min(RETRY_FIRST * 2 ** max(attempts - 1, 0), RETRY_LONGEST)


def sending_lease() -> timedelta:
    """How long an attempt may take before the sweep takes its worker for dead."""
    return max(timedelta(minutes=5), timedelta(seconds=3 * settings.SMS_PROVIDER_TIMEOUT))


def deliver(message_id: int, *, now: datetime | None = None) -> bool:
    """Hand one queued message to its backend. Returns False when it waits for a retry.

    The message is claimed with a conditional update (``queued`` → ``sending``, the
    attempt counted before the provider is called), so two workers never send the same
    message. What follows a failure:

    * the provider refused it for good (a bad number): ``failed``;
    * the provider could not be reached or said it failed (connection refused, 5xx,
      429, a time-out while connecting): ``queued`` again, the next attempt due at
      ``retry_at`` (1 min doubling to 30 min), until ``SMS_RETRY_HOURS`` after the first
      failure; then ``failed`` ("gave up …"), which staff may send again;
    * the request may have reached the provider (no answer in time, the connection
      dropped after our request went out): ``unknown``. It is never sent again by
      itself: a delivery report settles it, or staff do (:func:`settle_unknown`).
    """
    at = clock.resolve(now)
    due = (Q(not_before__isnull=True) | Q(not_before__lte=at)) & (
        Q(retry_at__isnull=True) | Q(retry_at__lte=at)
    )
    claimed = Message.objects.filter(due, pk=message_id, status=Message.Status.QUEUED).update(
        status=Message.Status.SENDING, claimed_at=at, attempts=F("attempts") + 1
    )
    if not claimed:
        return True
    message = Message.objects.get(pk=message_id)
    try:
        provider_id = backend_for(message.channel, message.site_id).send(message)
    except DeliveryError as exc:
        return _not_delivered(message, exc, at)
    message.status = Message.Status.SENT
    message.provider_message_id = provider_id
    message.sent_at = clock.now() if now is None else at
    message.error = ""
    message.retry_at = None
    fields = ["status", "provider_message_id", "sent_at", "error", "retry_at"]
    message.save(update_fields=[*fields, "cost", "currency", "provider_status"])
    return True


def _not_delivered(message: Message, exc: DeliveryError, at: datetime) -> bool:
    message.error = str(exc)[:1000]
    fields = ["error", "status", "provider_status", "retry_at", "retry_until"]
    waits = False
    if exc.maybe_sent:
        message.status = Message.Status.UNKNOWN
        message.error = (
            f"{exc} — the provider may have accepted it: not sent again until its delivery "
            "report or a person settles it"
        )[:1000]
        message.retry_at = None
        log.error("message %s: outcome unknown (%s); not sent again by itself", message.pk, exc)
    elif exc.retry:
        if message.retry_until is None:
            message.retry_until = at + timedelta(hours=settings.SMS_RETRY_HOURS)
        next_at = at + backoff(message.attempts)
        if next_at > message.retry_until:
            message.status = Message.Status.FAILED
            message.retry_at = None
            message.error = (
                f"gave up after {message.attempts} attempts over "
                f"{settings.SMS_RETRY_HOURS:g} h: {exc}"
            )[:1000]
            log.error("message %s: %s", message.pk, message.error)
        else:
            message.status = Message.Status.QUEUED
            message.retry_at = next_at
            waits = True
            log.warning(
                "message %s not delivered (attempt %s): %s", message.pk, message.attempts, exc
            )
    else:
        message.status = Message.Status.FAILED
        message.retry_at = None
        log.warning("message %s refused: %s", message.pk, exc)
    # Only the attempt's own claim is answered (a report may have settled it meanwhile).
    Message.objects.filter(pk=message.pk, status=Message.Status.SENDING).update(
        **{name: getattr(message, name) for name in fields}
    )
    return not waits


def release_due(*, now: datetime | None = None, limit: int = 500) -> int:
    """The sweep (every minute): hand messages whose time has come to delivery.

    Picks up messages held for quiet hours whose hold is over, retries whose backoff
    is over, and messages whose first task was lost (a broker restart); an attempt
    whose worker died (``sending`` past :func:`sending_lease`) becomes ``unknown``, as
    the provider may have it. Returns how many messages were handed to delivery.
    """
    from notifications.tasks import deliver_message

    at = clock.resolve(now)
    stale = Message.objects.filter(
        status=Message.Status.SENDING, claimed_at__lt=at - sending_lease()
    )
    for pk in stale.values_list("pk", flat=True)[:limit]:
        Message.objects.filter(pk=pk, status=Message.Status.SENDING).update(
            status=Message.Status.UNKNOWN,
            error="the worker sending it stopped mid-attempt: the provider may have it; "
            "not sent again until its delivery report or a person settles it",
        )
        log.error("message %s: attempt abandoned by its worker; outcome unknown", pk)
    queued = Message.objects.filter(status=Message.Status.QUEUED)
    held = queued.filter(not_before__isnull=False, not_before__lte=at)
    retries = queued.filter(not_before__isnull=True, retry_at__isnull=False, retry_at__lte=at)
    orphans = queued.filter(
        not_before__isnull=True, retry_at__isnull=True, created_at__lte=at - FIRST_TASK_GRACE
    )
    ids: list[int] = []
    for rows in (held, retries, orphans):
        ids += list(
            rows.order_by("created_at", "pk").values_list("pk", flat=True)[: limit - len(ids)]
        )
    # Their hold is over: lift it, so the worker's claim takes them.
    Message.objects.filter(pk__in=ids, status=Message.Status.QUEUED).update(not_before=None)
    for pk in ids:
        # At most once: if the broker is down, the next sweep finds the message again.
        outbox.publish(deliver_message, (pk, at.isoformat()))
    return len(ids)


def mark_failed(message_id: int, reason: str) -> None:
    """Give up on a message that is not on its way (staff, or a caller that knows better)."""
    Message.objects.filter(
        pk=message_id, status__in=[Message.Status.QUEUED, Message.Status.UNKNOWN]
    ).update(status=Message.Status.FAILED, error=reason, retry_at=None)


def send_again(message_id: int, *, by, note: str = "", now: datetime | None = None) -> bool:
    """A person sends a failed or unknown message again (their call: an unknown one may
    then arrive twice). Audited. Returns False when the message is in neither state."""
    at = clock.resolve(now)
    with transaction.atomic():
        changed = Message.objects.filter(
            pk=message_id, status__in=[Message.Status.FAILED, Message.Status.UNKNOWN]
        ).update(
            status=Message.Status.QUEUED,
            retry_at=None,
            retry_until=None,
            not_before=None,
            error="",
        )
        if not changed:
            return False
        message = Message.objects.get(pk=message_id)
        audit.record(
            AuditEvent.Action.UPDATE,
            message,
            after={"status": message.status},
            site=message.site_id,
            note=f"sent again by {getattr(by, 'username', by)}: {note}"[:300],
        )
    from notifications.tasks import deliver_message

    # If the broker is down, the sweep finds the queued message as one whose task was lost.
    outbox.publish(deliver_message, (message_id, at.isoformat()))
    return True


def settle_unknown(
    message_id: int, *, delivered: bool, by, note: str = "", now: datetime | None = None
) -> bool:
    """A person settles a message whose outcome was unknown: it arrived (``sent``, so it
    is never sent again) or it did not (``failed``; :func:`send_again` may follow). Audited."""
    at = clock.resolve(now)
    status = Message.Status.SENT if delivered else Message.Status.FAILED
    with transaction.atomic():
        changed = Message.objects.filter(pk=message_id, status=Message.Status.UNKNOWN).update(
            status=status,
            sent_at=at if delivered else None,
            error="" if delivered else f"settled by staff as not sent: {note}"[:1000],
        )
        if not changed:
            return False
        message = Message.objects.get(pk=message_id)
        audit.record(
            AuditEvent.Action.UPDATE,
            message,
            before={"status": Message.Status.UNKNOWN},
            after={"status": status},
            site=message.site_id,
            note=f"outcome settled by {getattr(by, 'username', by)}: {status}. {note}"[:300],
        )
    return True
