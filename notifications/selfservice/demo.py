"""Demo data for self-service, loaded once by ``seed_demo`` after the base demo.

Installs the self-service SMS templates, gives the demo portal customer's account the
phone number ``+256700123456`` and the USSD PIN ``2580`` (so the portal's sign-in by phone
and PIN works with both) (every other demo account gets a one-time PIN by SMS on first use),
and records two people who asked to be connected.
"""

from __future__ import annotations

import datetime as dt

from customers import services as customer_services
from customers.models import Customer
from mcoms.core.models import Site
from notifications.selfservice import messages, pins
from notifications.selfservice.models import Interest

DEMO_PIN = "2580"
DEMO_PHONE = "+256700123456"


def load(*, now: dt.datetime, rng) -> None:
    messages.install_templates()
    owner = Customer.objects.filter(user__username="customer").first()
    if owner is not None:
        if owner.phone != DEMO_PHONE:
            owner = customer_services.customer_update(customer=owner, phone=DEMO_PHONE).customer
        pins.set_pin(owner, DEMO_PIN, now=now)
    site = Site.objects.order_by("code").first()
    for hours, name, place, phone in (
        (30, "Grace Atim", site.name if site else "Block A", "+256772900101"),
        (4, "Joseph Ssenyonga", "Kikoota village", "+256701900102"),
    ):
        Interest.objects.get_or_create(
            phone=phone,
            defaults={
                "name": name,
                "place": place,
                "site": site if site and place == site.name else None,
                "language": "en",
                "created_at": now - dt.timedelta(hours=hours),
            },
        )
