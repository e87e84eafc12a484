"""Demo payments for ``make run``: cash taken by the field agent and mobile money on kla-a.

Runs after the billing demo (which may have posted invoices; allocation handles either
case). Goes through the same services as the pages, so receipts, ledger postings and
allocations are real; no SMS is sent for them (the demo has no templates to spare the
log), and a couple of requests are left pending and held to show those lists.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from billing.payments import services
from billing.payments.models import PaymentRequest
from customers.models import Customer
from mcoms.core.audit import acting_as
from mcoms.core.models import Site, User


def _token_purchase(agent: User | None, now: dt.datetime) -> None:
    """Grace (the prepaid demo's token customer) pays the agent; the sale buys her a token.

    The token itself is bought from Calin by the worker once ``make run`` starts (the
    demo's fake Calin head-end answers), then texted to her and pushed to her meter.
    """
    grace = Customer.objects.filter(package__code="token").order_by("pk").first()
    if grace is None or agent is None:
        return
    services.record_payment(
        customer=grace,
        amount=Decimal(20000),
        method="cash",
        agent=agent,
        by=agent,
        received_at=now - dt.timedelta(hours=2),
    )


def load(*, now: dt.datetime, rng) -> None:
    site = Site.objects.filter(code="kla-a").first()
    agent = User.objects.filter(username="agent").first()
    if site is None:
        return
    customers = list(Customer.objects.filter(site=site, status="active").order_by("pk")[:12])
    if not customers:
        return
    with acting_as(label="demo data", channel="command"):
        _token_purchase(agent, now)
        for i, customer in enumerate(customers):
            amount = Decimal(rng.choice([5000, 10000, 15000, 20000, 30000]))
            when = now - dt.timedelta(days=rng.randint(1, 25), hours=rng.randint(0, 8))
            if i % 3 == 0 and agent is not None:
                services.record_payment(
                    customer=customer,
                    amount=amount,
                    method="cash",
                    agent=agent,
                    by=agent,
                    received_at=when,
                )
            else:
                method = "mtn" if i % 3 == 1 else "airtel"
                services.record_payment(
                    customer=customer,
                    amount=amount,
                    method=method,
                    provider_txn_id=f"DEMO{rng.randint(10**8, 10**9 - 1)}",
                    received_at=when,
                    operator_fee=(amount * Decimal("0.01")).quantize(Decimal(1)),
                )
        for status, detail in (
            (PaymentRequest.Status.PENDING, ""),
            (
                PaymentRequest.Status.HELD,
                "Held for review: the provider reports amount 5000 instead of 50000",
            ),
        ):
            customer = rng.choice(customers)
            PaymentRequest.objects.create(
                reference=uuid.UUID(int=rng.getrandbits(128)),
                provider="mtn",
                customer=customer,
                amount=Decimal(50000),
                currency=site.currency,
                phone=customer.phone,
                channel=PaymentRequest.Channel.USSD,
                status=status,
                detail=detail,
                provider_txn_id="" if status == PaymentRequest.Status.PENDING else "DEMOHELD1",
                created_at=now - dt.timedelta(minutes=5),
                updated_at=now - dt.timedelta(minutes=5),
            )
