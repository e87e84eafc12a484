"""Builders for prepaid tests: tariffs in force, prepaid customers, usage and payments."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

from billing import ledger, services, tariff_services
from billing.models import ServicePackage
from billing.payments.models import Payment
from customers.models import Customer
from mcoms.core.audit import acting_as
from metering.models import HourlyUsage
from tests import factories

Mode = ServicePackage.PaymentMode
_codes = itertools.count(1)
_receipts = itertools.count(1)

UGANDA_DOMESTIC = {
    "fixed": [{"name": "Monthly standing charge", "amount": "3360"}],
    "energy": {
        "type": "blocks",
        "blocks": [{"up_to": "15", "rate": "250", "lifeline": True}, {"rate": "775.7"}],
    },
    "vat_percent": "18",
}
FLAT_UGX = {"energy": {"type": "flat", "rate": "800"}, "vat_percent": "18"}


def tariff_in_force(org, terms: dict, *, currency="UGX", since=dt.date(2020, 1, 1)):
    """A tariff whose terms are approved from ``since`` (billing proposes, admin approves)."""
    n = next(_codes)
    with acting_as(org.billing):
        tariff = tariff_services.tariff_create(
            code=f"pp-{n}", name=f"Prepaid {n}", currency=currency, by=org.billing
        )
        version = tariff_services.tariff_version_propose(
            tariff=tariff, effective_from=since, terms=terms, reason="ERA schedule", by=org.billing
        )
    with acting_as(org.admin):
        tariff_services.tariff_version_approve(version=version, by=org.admin)
    return tariff


def package(tariff, mode: str) -> ServicePackage:
    n = next(_codes)
    with acting_as(label="test setup"):
        return services.package_save(
            package=ServicePackage(
                code=f"pkg-{n}",
                name=f"Package {n}",
                load_limit_w=500,
                payment_mode=mode,
                tariff=tariff,
            )
        )


def prepaid_customer(site, pkg, **fields) -> Customer:
    fields.setdefault("status", Customer.Status.ACTIVE)
    return factories.customer(site, package=pkg, **fields)


def pay(customer: Customer, amount, at: dt.datetime) -> Payment:
    """Record a cash payment the way the payments module does: posted, then a Payment row."""
    amount = Decimal(amount)
    site = customer.site
    number = f"T-{next(_receipts):06d}"
    with acting_as(label="test setup"):
        posting = ledger.payment_post(
            customer=customer,
            amount=amount,
            date=at.astimezone(site.zone).date(),
            source=ledger.Source("bank"),
            reference=number,
        )
        return Payment.objects.create(
            receipt_number=number,
            customer=customer,
            site=site,
            method="bank",
            amount=amount,
            currency=site.currency,
            received_at=at,
            posting=posting,
        )


def hourly(meter, start: dt.datetime, kwhs, estimated=()) -> None:
    """HourlyUsage rows from ``start`` (a UTC hour), one per kWh figure."""
    est = set(estimated)
    for i, kwh in enumerate(kwhs):
        kwh = Decimal(str(kwh))
        HourlyUsage.objects.update_or_create(
            meter=meter,
            hour=start + dt.timedelta(hours=i),
            defaults={"kwh": kwh, "estimated_kwh": kwh if i in est else Decimal(0)},
        )
