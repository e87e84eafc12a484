"""Demo data for postpaid billing, loaded once by ``seed_demo`` after the base demo.

The postpaid packages get tariffs, proposed by the billing officer and approved by the
admin (maker-checker): "shop" a flat UGX rate, "business" time of use, and a new
"home-postpaid" package an inclining-block (lifeline) tariff, onto which every third
"shop" customer of Kampala Block A moves. Block A's postpaid meters get last month's
hourly consumption (the live demo bus has no history of its own: its rollups are
written directly, with a few estimated hours and one meter with almost no data, so
the run holds that account for review). Last month's run for Block A is then
previewed and posted by the billing officer, so the demo shows invoices.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from decimal import Decimal

from billing import runs, services, tariff_services
from billing.models import ServicePackage, Tariff
from customers import services as customer_services
from customers.models import Customer
from mcoms.core.audit import acting_as
from mcoms.core.models import Site, User
from metering.models import DailyUsage, HourlyUsage, SiteDailyUsage

KWH = Decimal("0.001")
FLAT = {
    "fixed": [{"name": "Monthly service charge", "amount": "5000"}],
    "energy": {"type": "flat", "rate": "756.2"},
    "vat_percent": "18",
}
BLOCKS = {
    "fixed": [{"name": "Monthly standing charge", "amount": "3360"}],
    "energy": {
        "type": "blocks",
        "blocks": [{"up_to": "15", "rate": "250", "lifeline": True}, {"rate": "775.7"}],
    },
    "vat_percent": "18",
}
TOU = {
    "fixed": [{"name": "Monthly service charge", "amount": "20000"}],
    "energy": {
        "type": "tou",
        "rates": {"peak": "880", "off_peak": "520"},
        "default": "peak",
        "windows": [
            {"days": ["everyday"], "from": "22:00", "to": "06:00", "period": "off_peak"},
            {"days": ["sunday", "holiday"], "from": "00:00", "to": "24:00", "period": "off_peak"},
        ],
    },
    "levies": [{"name": "Rural electrification levy", "percent": "1", "base": "energy"}],
    "vat_percent": "18",
}
SPECS = (
    ("ugx-flat", "Commercial flat (UGX)", FLAT, "shop"),
    ("ugx-domestic", "Domestic inclining block (UGX)", BLOCKS, "home-postpaid"),
    ("ugx-tou", "Business time of use (UGX)", TOU, "business"),
)


def _tariff(code: str, name: str, terms: dict, since: dt.date) -> Tariff:
    proposer = User.objects.get(username="billing")
    approver = User.objects.get(username="admin")
    tariff = tariff_services.tariff_create(code=code, name=name, currency="UGX", by=proposer)
    version = tariff_services.tariff_version_propose(
        tariff=tariff, effective_from=since, terms=terms, reason="Demo price list", by=proposer
    )
    tariff_services.tariff_version_approve(version=version, by=approver, note="demo")
    return tariff


def _packages(since: dt.date) -> None:
    for code, name, terms, package_code in SPECS:
        tariff = _tariff(code, name, terms, since)
        package = ServicePackage.objects.filter(code=package_code).first()
        if package is None:
            package = ServicePackage(
                code=package_code,
                name="Home (postpaid, monthly bill)",
                load_limit_w=1000,
                payment_mode=ServicePackage.PaymentMode.POSTPAID,
            )
        if package.tariff_id is None:
            package.tariff = tariff
            services.package_save(package=package)


def _profile(local_hour: int) -> float:
    """Share of a customer's peak load used in a local hour: evening peak, quiet night."""
    if 18 <= local_hour <= 22:
        return 0.55
    if local_hour < 6:
        return 0.06
    return 0.25


def _usage(site: Site, run_start: dt.date, rng: random.Random) -> None:
    """Last month's hourly and daily rollups for the site's postpaid customers' meters."""
    zone = site.zone
    start = dt.datetime.combine(run_start, dt.time(), tzinfo=zone).astimezone(dt.UTC)
    end_day = runs.month_period(run_start)[1]
    end = dt.datetime.combine(end_day, dt.time(), tzinfo=zone).astimezone(dt.UTC)
    customers = runs.billable_customers(site, start, end)
    spans = runs.served_spans(customers, start, end)
    loads = Customer.objects.filter(pk__in=[c.pk for c in customers]).values_list(
        "pk", "package__load_limit_w"
    )
    limits = {pk: (watts or 1000) / 1000 for pk, watts in loads}
    hourly, days = [], defaultdict(lambda: [Decimal(0), Decimal(0), 0])
    for n, customer in enumerate(customers):
        for meter_id, low, high in spans.get(customer.pk, []):
            if n == 1:
                high = min(high, low + dt.timedelta(days=3))  # a meter that stopped reporting
            gap = low + dt.timedelta(days=rng.randint(3, 25), hours=rng.randint(0, 12))
            h = low
            while h < high:
                local = h.astimezone(zone)
                kwh = Decimal(
                    limits[customer.pk] * 0.5 * _profile(local.hour) * rng.uniform(0.4, 1.0)
                ).quantize(KWH)
                estimated = kwh if n % 4 == 0 and gap <= h < gap + dt.timedelta(hours=6) else 0
                hourly.append(
                    HourlyUsage(
                        meter_id=meter_id, hour=h, kwh=kwh, estimated_kwh=estimated, intervals=4
                    )
                )
                cell = days[(meter_id, local.date())]
                cell[0] += kwh
                cell[1] += estimated
                cell[2] += 4
                h += dt.timedelta(hours=1)
    HourlyUsage.objects.bulk_create(hourly, batch_size=2000, ignore_conflicts=True)
    DailyUsage.objects.bulk_create(
        [
            DailyUsage(meter_id=m, day=d, kwh=v[0], estimated_kwh=v[1], intervals=v[2])
            for (m, d), v in days.items()
        ],
        batch_size=2000,
        ignore_conflicts=True,
    )
    per_day: dict[dt.date, list] = defaultdict(lambda: [Decimal(0), Decimal(0), 0])
    for (_, d), v in days.items():
        per_day[d][0] += v[0]
        per_day[d][1] += v[1]
        per_day[d][2] += 1
    SiteDailyUsage.objects.bulk_create(
        [
            SiteDailyUsage(site=site, day=d, kwh=v[0], estimated_kwh=v[1], meters=v[2])
            for d, v in per_day.items()
        ],
        ignore_conflicts=True,
    )


def load(*, now: dt.datetime, rng: random.Random) -> None:
    site = Site.objects.get(code="kla-a")
    local_today = now.astimezone(site.zone).date()
    month = runs.previous_month(local_today)
    _packages(runs.previous_month(month) - dt.timedelta(days=31))
    home = ServicePackage.objects.get(code="home-postpaid")
    shops = Customer.objects.filter(site=site, package__code="shop").order_by("pk")
    for customer in list(shops)[::3]:
        customer_services.customer_update(customer=customer, package=home)
    _usage(site, month, rng)
    officer = User.objects.get(username="billing")
    with acting_as(officer, channel="command"):
        run = runs.run_start(site=site, month=month, by=officer, now=now, queue=False)
        runs.preview(run.pk)
        runs.post(run.pk, by=officer, now=now)
