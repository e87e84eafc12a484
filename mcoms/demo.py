"""Demo data for the embedded default: two sites, a cluster, staff of every role,
about fifty customers with meters and some history.

Loaded by ``make run`` through ``manage.py seed_demo``; loading twice changes
nothing (the demo is recognised by its first site). Everything is created
through the apps' services, so the audit trail and histories look as they would
after real use.
"""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
import random
from dataclasses import dataclass

from django.apps import apps
from django.db import transaction

from billing import services as billing_services
from billing.models import ServicePackage
from customers import services as customer_services
from customers.models import Customer, ServiceRequest
from mcoms.core import clock
from mcoms.core import services as core_services
from mcoms.core.audit import acting_as
from mcoms.core.models import Cluster, PublicHoliday, Region, Site
from mcoms.core.roles import Role
from metering import ingest, partitions, rollups, schedules
from metering import services as meter_services
from metering.lifecycle import Status
from metering.models import BusSlot, Gateway
from notifications import catalog as message_catalog
from notifications.models import MessageTemplate

DEMO_PASSWORD = "mcoms-demo"
DEMO_GATEWAY = "kla-a-bus-1"
# The demo's bus logs every minute so that charts fill while someone watches.
DEMO_LOG_INTERVAL_S = 60
HISTORY_DAYS = 3


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: str
    scope: str


LOGINS = [
    DemoLogin("admin", Role.ADMIN, "everything (also the Django admin)"),
    DemoLogin("regional", Role.REGIONAL_MANAGER, "Central region"),
    DemoLogin("cluster", Role.CLUSTER_MANAGER, "Kampala cluster"),
    DemoLogin("sitemanager", Role.SITE_MANAGER, "Kampala Block A"),
    DemoLogin("billing", Role.BILLING_OFFICER, "Kampala cluster"),
    DemoLogin("supervisor", Role.FIELD_SUPERVISOR, "Kampala Block A and B"),
    DemoLogin("agent", Role.FIELD_AGENT, "Kampala Block A"),
    DemoLogin("customer", Role.CUSTOMER, "their own account"),
]

FIRST_NAMES = [
    "Aisha",
    "Brian",
    "Christine",
    "David",
    "Esther",
    "Francis",
    "Grace",
    "Henry",
    "Irene",
    "Joseph",
    "Kevin",
    "Lydia",
    "Moses",
    "Naomi",
    "Okello",
    "Patience",
    "Ronald",
    "Sarah",
    "Tom",
    "Winnie",
    "Juma",
    "Amina",
    "Baraka",
    "Zawadi",
]
LAST_NAMES = [
    "Nakato",
    "Okello",
    "Mugisha",
    "Namubiru",
    "Ssempijja",
    "Atim",
    "Kato",
    "Achieng",
    "Wanjiru",
    "Odongo",
    "Nabirye",
    "Tumusiime",
    "Kiggundu",
    "Auma",
    "Mwangi",
]

TEMPLATES = [
    (
        "customer_registered",
        "en",
        "Welcome to {{ customer.site.name }} power, {{ customer.first_name }}. "
        "Your account number is {{ account }}.",
    ),
    (
        "customer_registered",
        "sw",
        "Karibu {{ customer.first_name }}. Nambari ya akaunti yako ni {{ account }}.",
    ),
    (
        "customer_registered",
        "lg",
        "Tukusanyukidde {{ customer.first_name }}. Ennamba ya akawunti yo eri {{ account }}.",
    ),
]


def demo_loaded() -> bool:
    """True when the demo's first site already exists."""
    return Site.objects.filter(code="kla-a").exists()


@transaction.atomic
def load(*, seed: int = 7, customers_per_site: int = 25, now: dt.datetime | None = None) -> bool:
    """Create the demo data; returns False (and does nothing) when it is already there."""
    if demo_loaded():
        return False
    at = clock.resolve(now)
    rng = random.Random(seed)
    with acting_as(label="demo data", channel="command"):
        schedules.ensure_templates()
        message_catalog.install_defaults()
        for key, language, body in TEMPLATES:
            MessageTemplate.objects.get_or_create(
                key=key, language=language, channel="sms", defaults={"body": body}
            )
        sites, clusters, regions = _organisation()
        packages = _packages()
        _people(sites, clusters, regions)
        partitions.ensure_ahead(now=at, back=2)
        for site in sites:
            gateway = meter_services.gateway_create(
                site=site,
                name=f"{site.code}-bus-1",
                description="Ground floor meter room",
                now=at - dt.timedelta(days=120),
            )
            _customers_with_meters(site, gateway, packages, rng, customers_per_site, at)
            if gateway.name != DEMO_GATEWAY:
                # The demo gateway's meters get their readings live, from the simulated bus.
                _history(gateway, rng, at)
        demo_gateway = Gateway.objects.get(name=DEMO_GATEWAY)
        meter_services.gateway_update(
            gateway=demo_gateway, log_interval_s=DEMO_LOG_INTERVAL_S, poll_interval_s=5
        )
        _stock(rng, at)
        owner = Customer.objects.filter(site=sites[0], status="active").order_by("pk").first()
        portal_user = core_services.user_create(
            username="customer",
            password=DEMO_PASSWORD,
            role=Role.CUSTOMER,
            first_name=owner.first_name,
            last_name=owner.last_name,
        )
        customer_services.customer_link_user(customer=owner, user=portal_user)
        for module in _app_demo_modules():
            module.load(now=at, rng=rng)
    return True


def _app_demo_modules() -> list:
    """Each app's ``<app>.demo`` module (with ``load(now=, rng=)``), in INSTALLED_APPS order.

    The apps above the core add their own demo data (tariffs, bills, payments) this way;
    the core imports none of them by name.
    """
    found = []
    for config in apps.get_app_configs():
        name = f"{config.name}.demo"
        if config.name.startswith("mcoms") or importlib.util.find_spec(config.name) is None:
            continue
        if importlib.util.find_spec(name) is not None:
            found.append(importlib.import_module(name))
    return found


def _organisation() -> tuple[list[Site], dict[str, Cluster], dict[str, Region]]:
    central = Region.objects.create(name="Central", code="central")
    eastern = Region.objects.create(name="Eastern", code="eastern")
    kampala = Cluster.objects.create(region=central, name="Kampala", code="kampala")
    Cluster.objects.create(region=eastern, name="Jinja", code="jinja")
    sites = [
        core_services.site_save(
            site=Site(
                cluster=kampala,
                name="Kampala Block A",
                code="kla-a",
                latitude="0.347596",
                longitude="32.582520",
            )
        ),
        core_services.site_save(
            site=Site(
                cluster=kampala,
                name="Kampala Block B",
                code="kla-b",
                latitude="0.349100",
                longitude="32.584000",
            )
        ),
    ]
    for site in sites:
        for day, name in [
            ((1, 1), "New Year's Day"),
            ((6, 3), "Martyrs' Day"),
            ((10, 9), "Independence Day"),
            ((12, 25), "Christmas Day"),
        ]:
            PublicHoliday.objects.create(site=site, date=dt.date(2026, *day), name=name)
    return sites, {"kampala": kampala}, {"central": central}


def _packages() -> list[ServicePackage]:
    specs = [
        ("lite", "Lite (lights and phone)", 100, ServicePackage.PaymentMode.PREPAID_CREDIT),
        ("home", "Home (TV, fridge)", 1000, ServicePackage.PaymentMode.PREPAID_CREDIT),
        ("shop", "Shop (postpaid)", 2000, ServicePackage.PaymentMode.POSTPAID),
        ("business", "Business three-phase", 10000, ServicePackage.PaymentMode.POSTPAID),
    ]
    return [
        billing_services.package_save(
            package=ServicePackage(code=c, name=n, load_limit_w=w, payment_mode=m)
        )
        for c, n, w, m in specs
    ]


def _people(sites: list[Site], clusters: dict, regions: dict) -> None:
    scopes = {
        "admin": {"is_staff": True},
        "regional": {"regions": [regions["central"]]},
        "cluster": {"clusters": [clusters["kampala"]]},
        "sitemanager": {"sites": [sites[0]]},
        "billing": {"clusters": [clusters["kampala"]]},
        "supervisor": {"sites": sites},
        "agent": {"sites": [sites[0]]},
    }
    for login in LOGINS:
        if login.role == Role.CUSTOMER:
            continue
        core_services.user_create(
            username=login.username,
            password=DEMO_PASSWORD,
            role=login.role,
            first_name=login.username.title(),
            email=f"{login.username}@demo.mcoms.local",
            phone="",
            **scopes[login.username],
        )


def _customers_with_meters(site, gateway, packages, rng, count, at) -> None:
    start = at - dt.timedelta(days=90)
    for i in range(count):
        created = start + dt.timedelta(days=i, hours=rng.randint(8, 16))
        phone = f"+25677{rng.randint(1000000, 9999999)}"
        three_phase = i % 12 == 11
        saved = customer_services.customer_create(
            site=site,
            first_name=rng.choice(FIRST_NAMES),
            last_name=rng.choice(LAST_NAMES),
            phone=phone,
            location=f"Floor {i // 6 + 1}, unit {i % 6 + 1}",
            package=_package(packages, site, three_phase, rng),
            language=rng.choice(["en", "en", "sw", "lg"]),
            critical_load=(i == 4),
            critical_load_note="Health centre" if i == 4 else "",
            now=created,
        )
        customer = saved.customer
        model = "DTSU666" if three_phase else "DDSU666"
        address = (100 + i) if three_phase else (10 + i)
        meter = _meter_through_lifecycle(site, gateway, model, address, rng, created, i)
        if meter.status == Status.COMMISSIONED:
            meter_services.meter_serve_customer(
                meter=meter, customer=customer, now=meter.status_changed_at
            )
            customer_services.customer_set_status(
                customer=customer, status="active", now=meter.status_changed_at
            )
        if i % 9 == 3:
            customer_services.service_request_create(
                customer=customer,
                kind=ServiceRequest.Kind.FAULT,
                description="Lights flicker in the evening.",
                now=created + dt.timedelta(days=20),
            )
    if count > 10:
        late = Customer.objects.filter(site=site, status="active").order_by("-pk").first()
        customer_services.customer_set_status(
            customer=late, status="suspended", reason="arrears", now=at - dt.timedelta(days=3)
        )


def _meter_through_lifecycle(site, gateway, model, address, rng, created, i):
    serial = f"2003{rng.randint(10**7, 10**8 - 1)}"
    meter = meter_services.meter_create(
        serial=serial, model=model, by_name="Stores", now=created - dt.timedelta(days=10)
    )
    steps = [
        (Status.CONVERTED, "Lab: Jane Doe", 2),
        (Status.SHIPPED, "Stores", 3),
        (Status.INSTALLED, "John Smith", 6),
        (Status.COMMISSIONED, "Alice Johnson", 7),
    ]
    # Most meters are commissioned; a few stop earlier so the overdue flags show.
    stop = len(steps) if i % 10 not in (7, 8) else (1 if i % 10 == 7 else 3)
    meter_services.meter_assign(
        meter=meter,
        site=site,
        address=address,
        by_name="Planner",
        now=created - dt.timedelta(days=9),
    )
    for status, who, day in steps[:stop]:
        meter = meter_services.meter_move(
            meter=meter,
            status=status,
            by_name=who,
            gateway=gateway,
            now=created - dt.timedelta(days=9) + dt.timedelta(days=day),
        )
    return meter


def _package(packages, site, three_phase: bool, rng):
    if three_phase:
        return packages[3]
    # The live simulated bus draws up to about 0.8 kW a meter: no "lite" customers there.
    choices = packages[1:3] if site.code == "kla-a" else packages[:3]
    return rng.choice(choices)


def _history(gateway, rng, at) -> None:
    """A few days of 15-minute readings for the bus's meters, through the ingest path."""
    start = (at - dt.timedelta(days=HISTORY_DAYS)).replace(minute=0, second=0, microsecond=0)
    slots = BusSlot.objects.filter(gateway=gateway, end__isnull=True, start__lt=start)
    registers = {slot.address: rng.uniform(100, 5000) for slot in slots}
    limits = _limits_kw(slots)
    readings = []
    ts = start
    while ts < at - dt.timedelta(minutes=15):
        # Evening peak, a little at night, a middle-of-the-day shop load.
        hour = (ts.hour + 3) % 24
        level = 0.6 if 18 <= hour <= 22 else 0.08 if hour < 6 else 0.3
        for address in registers:
            kwh = limits[address] * level * rng.uniform(0.3, 1.0) / 4
            registers[address] += kwh
            readings.append(
                {
                    "address": address,
                    "ts": ts.isoformat().replace("+00:00", "Z"),
                    "energy_kwh": round(registers[address], 3),
                    "voltage_v": [round(rng.uniform(215, 240), 1)] * (3 if address >= 100 else 1),
                    "current_a": [round(kwh * 4 * 1000 / 230, 2)],
                    "power_kw": round(kwh * 4, 3),
                    "power_factor": 0.95,
                    "frequency_hz": 50.0,
                }
            )
        ts += dt.timedelta(minutes=15)
    for n in range(0, len(readings), 5000):
        outcome = ingest.ingest(gateway=gateway, readings=readings[n : n + 5000], now=at)
        if outcome.meters:
            rollups.refresh(meter_ids=sorted(outcome.meters), start=outcome.start, end=outcome.end)


def _limits_kw(slots) -> dict[int, float]:
    """Each bus address's package load limit in kW (the history stays within it)."""
    limits = {}
    for slot in slots.select_related("meter"):
        customer = slot.meter.assignments.filter(end__isnull=True).first()
        package = customer.customer.package if customer else None
        limits[slot.address] = (package.load_limit_w if package else 1000) / 1000
    return limits


def _stock(rng, at) -> None:
    for _ in range(6):
        meter_services.meter_create(
            serial=f"2004{rng.randint(10**7, 10**8 - 1)}",
            model="DDSU666",
            by_name="Stores",
            now=at - dt.timedelta(days=5),
        )
