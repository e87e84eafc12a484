"""Sending messages: render a template, log the message, deliver after commit."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q
from django.template import Context, Template

from mcoms.core import clock, outbox
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


def deliver(message_id: int) -> bool:
    """Hand one queued message to its backend. Returns False when it should be retried.

    The message is claimed with a conditional update, so two workers never send
    the same message.
    """
    # A message held for quiet hours is not due yet: ``release_due`` sends it later.
    due = Q(not_before__isnull=True) | Q(not_before__lte=clock.now())
    claimed = Message.objects.filter(due, pk=message_id, status=Message.Status.QUEUED).update(
        status=Message.Status.SENDING
    )
    if not claimed:
        return True
    message = Message.objects.get(pk=message_id)
    message.attempts += 1
    try:
        provider_id = backend_for(message.channel, message.site_id).send(message)
    except DeliveryError as exc:
        message.error = str(exc)
        message.status = Message.Status.QUEUED if exc.retry else Message.Status.FAILED
        message.save(update_fields=["error", "status", "attempts", "provider_status"])
        log.warning("message %s not delivered: %s", message_id, exc)
        return not exc.retry
    message.status = Message.Status.SENT
    message.provider_message_id = provider_id
    message.sent_at = clock.now()
    message.error = ""
    fields = ["status", "provider_message_id", "sent_at", "error", "attempts"]
    message.save(update_fields=[*fields, "cost", "currency", "provider_status"])
    return True


def release_due(*, now: datetime | None = None, limit: int = 500) -> int:
    """Hand held messages whose time has come to delivery; returns how many.

    Deferred messages normally go by their task's ETA; this catches the ones whose
    scheduled task was lost (a broker restart) or ran early (tasks run in-process).
    """
    from notifications.tasks import deliver_message

    due = Message.objects.filter(
        status=Message.Status.QUEUED,
        not_before__isnull=False,
        not_before__lte=clock.resolve(now),
    ).values_list("pk", flat=True)[:limit]
    ids = list(due)
    # Their hold is over: lift it, so the worker's claim takes them.
    Message.objects.filter(pk__in=ids, status=Message.Status.QUEUED).update(not_before=None)
    for pk in ids:
        outbox.enqueue(deliver_message, (pk,))
    return len(ids)


def mark_failed(message_id: int, reason: str) -> None:
    """Give up on a message after its retries ran out."""
    Message.objects.filter(pk=message_id).exclude(status=Message.Status.SENT).update(
        status=Message.Status.FAILED, error=reason
    )
