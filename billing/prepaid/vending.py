"""Getting a sold token onto the customer's meter: Calin's POS, then an SMS.

A token sale (:func:`billing.prepaid.tokens.sell`) leaves the purchase *awaiting
token*. :func:`vend_purchase` asks metering's steering (the only way to Calin) to buy
exactly one token for it — the reference ``tokenpurchase:<id>`` makes a retry, a timeout
or a second worker harmless — records the token on the purchase and texts it to the
customer (``token_issued``, essential). The steering side also pushes the token to the
meter remotely, so the customer need not type it in.

It is started after the sale commits and, for anything that did not finish (Calin down,
outcome unknown), again by the periodic :func:`vend_waiting`. A customer without a
Calin meter keeps the purchase waiting with the reason in ``detail``.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction

from billing.prepaid import tokens
from billing.prepaid.models import TokenPurchase
from mcoms.core import audit, clock
from mcoms.core.models import AuditEvent
from metering import selectors as meter_selectors
from metering.models import Meter
from metering.steering import vending as steering_vending
from notifications import services as messaging

log = logging.getLogger(__name__)
WAITING = TokenPurchase.Status.AWAITING_VEND


def purchase_ref(purchase: TokenPurchase) -> str:
    """The reference under which steering buys this purchase's one token."""
    return f"tokenpurchase:{purchase.pk}"


def _calin_meter(purchase: TokenPurchase) -> Meter | None:
    meters = meter_selectors.meters_of_customer(purchase.customer)
    return meters.filter(model=Meter.Model.CALIN).order_by("pk").first()


def _note(purchase: TokenPurchase, detail: str) -> None:
    if purchase.detail != detail[:300]:
        TokenPurchase.objects.filter(pk=purchase.pk).update(detail=detail[:300])


def vend_purchase(purchase_id: int, *, now: dt.datetime | None = None) -> TokenPurchase:
    """Buy and deliver the token of one waiting purchase; safe to call any number of times."""
    now = clock.resolve(now)
    purchase = TokenPurchase.objects.select_related("customer__site").get(pk=purchase_id)
    if purchase.status != WAITING:
        return purchase
    meter = _calin_meter(purchase)
    if meter is None:
        _note(purchase, "No Calin meter serves this customer: the token waits for one.")
        return purchase
    try:
        vend = steering_vending.vend(meter, purchase.kwh, purchase_ref(purchase), now=now)
    except Exception as exc:  # Calin unreachable or refusing: try again later
        log.warning("token purchase %s not vended: %s", purchase.pk, exc)
        _note(purchase, f"Token not yet bought: {exc}")
        return purchase
    if vend.status != vend.Status.VENDED or not vend.token:
        _note(purchase, f"Token not yet bought: Calin says {vend.get_status_display()}.")
        return purchase
    return _issued(purchase.pk, vend.token, meter)


@transaction.atomic
def _issued(purchase_id: int, token: str, meter: Meter) -> TokenPurchase:
    purchase = TokenPurchase.objects.select_for_update().get(pk=purchase_id)
    if purchase.status != WAITING:
        return purchase
    before = audit.snapshot(purchase, ["status", "token", "detail"])
    purchase.status = TokenPurchase.Status.VENDED
    purchase.token = token
    purchase.detail = ""
    purchase.save(update_fields=["status", "token", "detail"])
    audit.record(
        AuditEvent.Action.UPDATE,
        purchase,
        before=before,
        after=audit.snapshot(purchase, ["status", "token", "detail"]),
        site=purchase.customer.site_id,
        note=f"token issued for meter {meter.serial}",
    )
    _text(purchase, meter)
    return purchase


def _text(purchase: TokenPurchase, meter: Meter) -> None:
    customer = purchase.customer
    try:
        messaging.send_message(
            to=customer.phone,
            template="token_issued",
            context={
                "name": customer.first_name,
                "account": customer.account_number,
                "currency": purchase.currency,
                "token": _grouped(purchase.token),
                "kwh": f"{purchase.kwh.normalize():f}",
                "meter": meter.serial,
                "summary": tokens.summary(purchase),
            },
            language=customer.language,
            about=f"prepaid.tokenpurchase:{purchase.pk}",
            site_id=customer.site_id,
        )
    except messaging.TemplateMissing:
        log.warning("no token_issued template: token of purchase %s not texted", purchase.pk)


def _grouped(token: str) -> str:
    """A 20-digit token in groups of four, as people read it out."""
    digits = token.replace(" ", "").replace("-", "")
    return " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))


def vend_waiting(*, now: dt.datetime | None = None, limit: int = 200) -> dict[str, int]:
    """Try every purchase still waiting for its token; returns how many were issued."""
    issued = waiting = 0
    for pk in TokenPurchase.objects.filter(status=WAITING).values_list("pk", flat=True)[:limit]:
        if vend_purchase(pk, now=now).status == TokenPurchase.Status.VENDED:
            issued += 1
        else:
            waiting += 1
    return {"issued": issued, "waiting": waiting}
