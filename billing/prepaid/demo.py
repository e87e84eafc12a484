"""Demo data for prepaid accounts, loaded once by ``seed_demo`` after the base demo.

The base demo's "lite" and "home" packages are prepaid account credit. Those without
a tariff get Uganda's domestic tariff (first quarter 2025); their active customers get
a starting credit (a mobile-money payment in the ledger) and their last three days of
hourly consumption drawn from it, so some are low and a few have run out (with a
disconnect request). A token-meter package and one customer on it are added too: a
payment recorded for that customer (by the payments demo or by hand) becomes a token
purchase through the payments hook.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from billing import ledger, services, tariff_services
from billing.models import ServicePackage, Tariff
from billing.prepaid import credit
from customers import services as customer_services
from customers.models import Customer
from mcoms.core.models import Site, User
from metering import services as meter_services
from metering.models import Meter

UGANDA_DOMESTIC = {
    "fixed": [{"name": "Monthly standing charge", "amount": "3360"}],
    "energy": {
        "type": "blocks",
        "blocks": [{"up_to": "15", "rate": "250", "lifeline": True}, {"rate": "775.7"}],
    },
    "vat_percent": "18",
}
HISTORY = dt.timedelta(days=3)


def _tariff(now: dt.datetime) -> Tariff:
    found = Tariff.objects.filter(code="ug-domestic-prepaid").first()
    if found is not None:
        return found
    proposer = User.objects.get(username="billing")
    approver = User.objects.get(username="admin")
    tariff = tariff_services.tariff_create(
        code="ug-domestic-prepaid",
        name="Uganda domestic (prepaid)",
        currency="UGX",
        by=proposer,
        description="ERA schedule, first quarter 2025: lifeline 15 kWh, standing charge",
    )
    version = tariff_services.tariff_version_propose(
        tariff=tariff,
        effective_from=dt.date(now.year - 1, 1, 1),
        terms=UGANDA_DOMESTIC,
        reason="ERA tariff schedule Q1 2025",
        by=proposer,
    )
    tariff_services.tariff_version_approve(version=version, by=approver, note="demo")
    return tariff


def load(*, now: dt.datetime, rng: random.Random) -> None:
    prepaid = ServicePackage.objects.filter(payment_mode=ServicePackage.PaymentMode.PREPAID_CREDIT)
    if not prepaid.exists():
        return
    tariff = _tariff(now)
    for package in prepaid.filter(tariff__isnull=True):
        package.tariff = tariff
        services.package_save(package=package)
    since = now - HISTORY
    customers = Customer.objects.filter(package__in=prepaid, status=Customer.Status.ACTIVE)
    for customer in customers.select_related("site", "package__tariff").order_by("pk"):
        credit.open_account(customer, since=since)
        amount = Decimal(rng.choice([3000, 8000, 15000, 25000, 40000, 60000]))
        ledger.payment_post(
            customer=customer,
            amount=amount,
            date=since.astimezone(customer.site.zone).date(),
            source=ledger.Source("mobile_money", provider="mtn"),
            memo="Demo opening top-up",
            reference=f"demo-prepaid-{customer.account_number}",
        )
        credit.draw(customer, now=now)
    _token_customer(tariff, now)


def _token_customer(tariff: Tariff, now: dt.datetime) -> None:
    package = ServicePackage.objects.filter(code="token").first()
    if package is None:
        package = services.package_save(
            package=ServicePackage(
                code="token",
                name="Token meter (prepaid kWh)",
                load_limit_w=1000,
                payment_mode=ServicePackage.PaymentMode.PREPAID_TOKEN,
                tariff=tariff,
            )
        )
    site = Site.objects.order_by("pk").first()
    if site is None or Customer.objects.filter(package=package).exists():
        return
    saved = customer_services.customer_create(
        site=site,
        first_name="Grace",
        last_name="Nakato",
        phone="+256772000999",
        location="Plot 14, market lane",
        package=package,
        status=Customer.Status.ACTIVE,
        now=now - dt.timedelta(days=30),
    )
    _calin_meter(saved.customer, site, now)


def _calin_meter(customer: Customer, site: Site, now: dt.datetime) -> None:
    """A Calin smart meter serving the token customer: tokens are bought for it."""
    created = now - dt.timedelta(days=40)
    meter = meter_services.meter_create(
        serial="47001234567", model=Meter.Model.CALIN, by_name="Stores", now=created
    )
    meter = meter_services.meter_assign(
        meter=meter, site=site, address=90, by_name="Planner", now=created
    )
    meter_services.meter_serve_customer(
        meter=meter, customer=customer, now=now - dt.timedelta(days=30)
    )
