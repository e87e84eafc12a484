"""The providers' callbacks and the page a card payer returns to.

``/payments/callback/<method>/`` (or ``/payments/callback/<secret>/<method>/`` when
``PAYMENT_CALLBACK_SECRET`` is set: then only that form answers). A callback only
tells us *which* request to look at: its status is always fetched from the provider
and cross-checked before anything is credited (see :func:`services.handle_callback`).
"""

from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt

from billing.payments import providers, services
from billing.payments.models import PaymentRequest
from mcoms.core import audit
from mcoms.core.models import AuditEvent

log = logging.getLogger("billing.payments")
METHODS = ("mtn", "airtel", "pesapal")


def _check_secret(secret: str | None) -> None:
    expected = settings.PAYMENT_CALLBACK_SECRET
    if not expected:
        if secret is not None:
            raise Http404
        return
    if secret is None or not hmac.compare_digest(secret.encode(), expected.encode()):
        raise Http404


@csrf_exempt
def callback(request: HttpRequest, method: str, secret: str | None = None) -> HttpResponse:
    """A provider's notification: find the request, re-fetch its status, act on it."""
    _check_secret(secret)
    if method not in METHODS:
        raise Http404
    if request.method not in ("POST", "PUT", "GET"):
        return HttpResponse(status=405)
    query = request.GET.dict()
    with audit.acting_as(label=f"{method} callback", channel=AuditEvent.Channel.API):
        try:
            found = services.handle_callback(method, request.body, query)
        except providers.ProviderUnavailable as exc:
            log.warning("%s callback: status unavailable, left for the poller: %s", method, exc)
            return HttpResponse("status unavailable, try again", status=503)
    if method == "pesapal":
        info = providers.get("pesapal").parse_callback(request.body, query)
        return JsonResponse(
            {
                "orderNotificationType": query.get("OrderNotificationType", "IPNCHANGE"),
                "orderTrackingId": info.provider_ref,
                "orderMerchantReference": info.reference,
                "status": 200 if found is not None else 500,
            }
        )
    if found is None:
        return HttpResponse("unknown request", status=404)
    return JsonResponse({"status": found.status})


def payer_return(request: HttpRequest) -> HttpResponse:
    """Where a card payer's browser comes back to: the request's status, checked now."""
    info = providers.Callback(
        reference=request.GET.get("OrderMerchantReference", ""),
        provider_ref=request.GET.get("OrderTrackingId", ""),
    )
    found = services.find_request("pesapal", info)
    if found is None:
        raise Http404
    if found.status == PaymentRequest.Status.PENDING:
        with audit.acting_as(label="pesapal return", channel=AuditEvent.Channel.PORTAL):
            found = services.refresh(found)
    return render(request, "payments/return.html", {"req": found})
