"""The providers' webhooks: the USSD callback and inbound SMS.

Africa's Talking signs nothing, so with ``NOTIFICATIONS_CALLBACK_SECRET`` set only
the paths carrying that secret answer (the same setting and check as the delivery
reports). Twilio's requests must carry its signature for the exact public URL;
anything else gets 403 and nothing is done.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from notifications.delivery_reports import check_secret, twilio_signature_valid
from notifications.selfservice import sms, ussd
from notifications.selfservice.models import InboundSms

log = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def ussd_africastalking(request: HttpRequest, secret: str | None = None) -> HttpResponse:
    """Africa's Talking's USSD callback: answers ``CON …`` or ``END …`` as plain text."""
    check_secret(secret)
    data = _fields(request)
    if not data.get("sessionId") or not data.get("phoneNumber"):
        return HttpResponse("missing sessionId or phoneNumber", status=400)
    body = ussd.respond(
        session_id=data["sessionId"],
        phone=data["phoneNumber"],
        text=data.get("text", ""),
        service_code=data.get("serviceCode", ""),
        network_code=data.get("networkCode", ""),
    )
    return HttpResponse(body, content_type="text/plain; charset=utf-8")


@csrf_exempt
@require_POST
def sms_africastalking(request: HttpRequest, secret: str | None = None) -> HttpResponse:
    """Africa's Talking's incoming-message callback."""
    check_secret(secret)
    data = _fields(request)
    if not data.get("from") or not data.get("id"):
        return HttpResponse("missing from or id", status=400)
    sms.handle(
        provider=InboundSms.Provider.AFRICASTALKING,
        provider_id=data["id"],
        sender=data["from"],
        to=data.get("to", ""),
        text=data.get("text", ""),
    )
    return HttpResponse("ok", content_type="text/plain")


@csrf_exempt
@require_POST
def sms_twilio(request: HttpRequest, secret: str | None = None) -> HttpResponse:
    """Twilio's incoming-message webhook; the reply goes as an SMS of ours, not as TwiML."""
    check_secret(secret)
    if not twilio_signature_valid(request):
        log.warning("Twilio inbound SMS with a missing or wrong signature refused")
        return HttpResponseForbidden("bad signature")
    data = _fields(request)
    if not data.get("From") or not data.get("MessageSid"):
        return HttpResponse("missing From or MessageSid", status=400)
    sms.handle(
        provider=InboundSms.Provider.TWILIO,
        provider_id=data["MessageSid"],
        sender=data["From"],
        to=data.get("To", ""),
        text=data.get("Body", ""),
    )
    return HttpResponse("<Response></Response>", content_type="text/xml")


def _fields(request: HttpRequest) -> dict[str, str]:
    """The callback's form fields without NUL characters.

    No provider sends them, PostgreSQL cannot store them in text, and one in any field
    made the callback answer 500 (found by tests/ops/test_parser_fuzz.py).
    """
    return {key: value.replace("\x00", "") for key, value in request.POST.items()}
