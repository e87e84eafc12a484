"""Delivery reports: the SMS providers tell us what became of each message.

Both providers POST form fields to an endpoint of ours (see ``notifications/urls.py``):

* Africa's Talking: ``id``, ``status`` (``Sent|Submitted|Buffered`` on the way;
  ``Success`` delivered; ``Rejected|Failed`` final failures), ``failureReason``.
  AT signs nothing, so a deployment can hide the URL behind a secret path
  segment (``NOTIFICATIONS_CALLBACK_SECRET``).
* Twilio: ``MessageSid``, ``MessageStatus`` (``queued|sending|sent`` on the
  way; ``delivered|read`` delivered; ``undelivered|failed|canceled`` failed),
  ``ErrorCode``. Every request must carry a valid ``X-Twilio-Signature`` for
  the exact public URL; anything else gets 403 and changes nothing.

Reports match messages on ``provider_message_id``; a report for an id we do not
know is answered 200 (so the provider stops retrying) and ignored. A delivered
message never goes back to failed or in flight, and reports arriving out of
order do not undo a final state.

A message whose outcome is *unknown* (the provider may have accepted it but its
answer, with the id, never reached us) is settled by the report that names it:
Twilio's callback URL carries our message's id (``?message=<id>``); Africa's
Talking's report carries only its own id and the phone number, so the oldest
unknown AT message to that number without an id takes it. Any report of the
message (on its way, delivered, failed) settles it: it is never sent again by
itself, and a failed one is for staff to send again.
"""

from __future__ import annotations

import hmac
import logging
from datetime import datetime

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.request_validator import RequestValidator

from mcoms.core import clock
from notifications.models import Message, normalise_address

log = logging.getLogger(__name__)

DELIVERED = "delivered"
FAILED = "failed"

AFRICASTALKING_OUTCOMES = {"success": DELIVERED, "rejected": FAILED, "failed": FAILED}
TWILIO_OUTCOMES = {
    "delivered": DELIVERED,
    "read": DELIVERED,
    "undelivered": FAILED,
    "failed": FAILED,
    "canceled": FAILED,
}
_IN_FLIGHT = [Message.Status.SENDING, Message.Status.SENT, Message.Status.UNKNOWN]


def adopt(message_id: int | str | None, provider_message_id: str) -> bool:
    """Give an unknown message (or one still being sent) the provider's id from a report."""
    if not message_id or not provider_message_id:
        return False
    try:
        pk = int(message_id)
    except (TypeError, ValueError):
        return False
    if Message.objects.filter(provider_message_id=provider_message_id).exists():
        return False
    return bool(
        Message.objects.filter(
            pk=pk,
            provider_message_id="",
            status__in=[Message.Status.UNKNOWN, Message.Status.SENDING],
        ).update(provider_message_id=provider_message_id)
    )


def adopt_by_number(phone: str, provider_message_id: str, backend_contains: str) -> bool:
    """The oldest unknown message to ``phone`` sent through that backend takes the id."""
    if not phone or not provider_message_id:
        return False
    if Message.objects.filter(provider_message_id=provider_message_id).exists():
        return False
    candidate = (
        Message.objects.filter(
            to=normalise_address(phone),
            provider_message_id="",
            status=Message.Status.UNKNOWN,
            backend__icontains=backend_contains,
        )
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)
        .first()
    )
    return adopt(candidate, provider_message_id)


def apply_report(
    provider_message_id: str,
    provider_status: str,
    *,
    outcome: str | None,
    reason: str = "",
    now: datetime | None = None,
) -> bool:
    """Record a provider's report on the message it sent as ``provider_message_id``.

    ``outcome`` is ``"delivered"``, ``"failed"`` or ``None`` (still on its way).
    Returns False when no message has that id. Each change is one conditional
    update, so concurrent or repeated reports cannot move a message backwards.
    """
    messages = Message.objects.filter(provider_message_id=provider_message_id)
    if not provider_message_id or not messages.exists():
        return False
    provider_status = provider_status[:40]
    if outcome == DELIVERED:
        messages.exclude(status=Message.Status.DELIVERED).update(
            status=Message.Status.DELIVERED,
            provider_status=provider_status,
            delivered_at=clock.resolve(now),
            error="",
        )
    elif outcome == FAILED:
        messages.filter(status__in=_IN_FLIGHT).update(
            status=Message.Status.FAILED,
            provider_status=provider_status,
            error=reason or f"provider reported {provider_status}",
        )
    else:
        # On its way: an unknown message is with the provider after all (never resent).
        messages.filter(status=Message.Status.UNKNOWN).update(
            status=Message.Status.SENT, sent_at=clock.resolve(now), error=""
        )
        messages.filter(status__in=_IN_FLIGHT).update(provider_status=provider_status)
    return True


def africastalking_report(data) -> bool:
    """Apply an Africa's Talking delivery report (its POSTed form fields)."""
    status = data.get("status", "")
    outcome = AFRICASTALKING_OUTCOMES.get(status.lower())
    reason = data.get("failureReason", "")
    adopt_by_number(data.get("phoneNumber", ""), data.get("id", ""), "africastalking")
    return apply_report(
        data.get("id", ""),
        status,
        outcome=outcome,
        reason=f"Africa's Talking: {status} ({reason})" if reason else "",
    )


def twilio_report(data, message_id: str | None = None) -> bool:
    """Apply a Twilio status callback (its POSTed form fields; ``message_id`` from its URL)."""
    adopt(message_id, data.get("MessageSid", ""))
    status = data.get("MessageStatus", "")
    outcome = TWILIO_OUTCOMES.get(status.lower())
    code = data.get("ErrorCode", "")
    return apply_report(
        data.get("MessageSid", ""),
        status,
        outcome=outcome,
        reason=f"Twilio: {status} (error {code})" if code else "",
    )


def check_secret(secret: str | None) -> None:
    expected = settings.NOTIFICATIONS_CALLBACK_SECRET
    if not expected:
        if secret is not None:
            raise Http404
        return
    if secret is None or not hmac.compare_digest(secret.encode(), expected.encode()):
        raise Http404


def twilio_signature_valid(request: HttpRequest) -> bool:
    """Whether ``request`` carries Twilio's signature for the URL it was sent to."""
    token = settings.TWILIO_AUTH_TOKEN
    signature = request.headers.get("X-Twilio-Signature", "")
    if not (token and signature):
        return False
    public = settings.NOTIFICATIONS_PUBLIC_URL.rstrip("/")
    url = public + request.get_full_path() if public else request.build_absolute_uri()
    return RequestValidator(token).validate(url, request.POST, signature)


@csrf_exempt
@require_POST
def africastalking_view(request: HttpRequest, secret: str | None = None) -> HttpResponse:
    """Africa's Talking delivery-report endpoint."""
    check_secret(secret)
    if not request.POST.get("id"):
        return HttpResponse("missing id", status=400)
    if not africastalking_report(request.POST):
        log.info("Africa's Talking report for unknown message %s", request.POST.get("id"))
    return HttpResponse("ok")


@csrf_exempt
@require_POST
def twilio_view(request: HttpRequest, secret: str | None = None) -> HttpResponse:
    """Twilio status-callback endpoint; refuses anything not signed by Twilio."""
    check_secret(secret)
    if not twilio_signature_valid(request):
        log.warning("Twilio status callback with a missing or wrong signature refused")
        return HttpResponseForbidden("bad signature")
    if not request.POST.get("MessageSid"):
        return HttpResponse("missing MessageSid", status=400)
    if not twilio_report(request.POST, request.GET.get("message")):
        log.info("Twilio report for unknown message %s", request.POST.get("MessageSid"))
    return HttpResponse("ok")
