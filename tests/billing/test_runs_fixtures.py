"""Builders shared by the billing-run, invoice and credit-note tests (no tests here).

October 2026 on Block A (Kampala, UTC+3, UGX): a flat, a block and a time-of-use
tariff, postpaid packages on them, customers with meters and hourly usage.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal

from billing.models import ServicePackage, Tariff, TariffVersion
from customers import services as customer_services
from mcoms.core.audit import acting_as
from metering import services as meter_services
from metering.models import HourlyUsage
from tests import factories

KAMPALA = zoneinfo.ZoneInfo("Africa/Kampala")
OCT = dt.date(2026, 10, 1)
NOV = dt.date(2026, 11, 1)
START = dt.datetime(2026, 10, 1, tzinfo=KAMPALA).astimezone(dt.UTC)
END = dt.datetime(2026, 11, 1, tzinfo=KAMPALA).astimezone(dt.UTC)
HOURS = int((END - START) / dt.timedelta(hours=1))  # 744
# The run moment: 1 November 09:00 in Kampala.
RUN_AT = dt.datetime(2026, 11, 1, 6, 0, tzinfo=dt.UTC)
JOINED = dt.datetime(2026, 8, 1, 8, 0, tzinfo=dt.UTC)

FLAT = {
    "fixed": [{"name": "Monthly standing charge", "amount": "3360"}],
    "energy": {"type": "flat", "rate": "800"},
    "vat_percent": "18",
}
BLOCKS = {
    "fixed": [{"name": "Monthly standing charge", "amount": "3360"}],
    "energy": {
        "type": "blocks",
        "blocks": [{"up_to": "15", "rate": "250", "lifeline": True}, {"rate": "775.7"}],
    },
    "levies": [{"name": "REA levy", "per_kwh": "10"}],
    "vat_percent": "18",
}
TOU = {
    "fixed": [{"name": "Monthly standing charge", "amount": "5000"}],
    "energy": {
        "type": "tou",
        "rates": {"peak": "900", "off_peak": "500"},
        "default": "peak",
        "windows": [
            {"days": ["everyday"], "from": "22:00", "to": "06:00", "period": "off_peak"},
            {"days": ["sunday", "holiday"], "from": "00:00", "to": "24:00", "period": "off_peak"},
        ],
    },
    "vat_percent": "18",
}


def tariff(code: str, terms: dict, org, *, since=dt.date(2026, 1, 1)) -> Tariff:
    """A UGX tariff with one approved version (proposed by the admin, approved by billing)."""
    t = Tariff.objects.create(code=code, name=code.title(), currency="UGX")
    TariffVersion.objects.create(
        tariff=t,
        effective_from=since,
        terms=terms,
        reason="test",
        status=TariffVersion.Status.APPROVED,
        proposed_by=org.admin,
        proposed_at=JOINED,
        decided_by=org.billing,
        decided_at=JOINED,
    )
    return t


def package(code: str, t: Tariff | None, mode=ServicePackage.PaymentMode.POSTPAID):
    return ServicePackage.objects.create(
        code=code, name=code.title(), load_limit_w=2000, payment_mode=mode, tariff=t
    )


_addresses = iter(range(10, 98))


def customer(site, pkg, *, joined=JOINED, meter=True, **fields):
    """An active customer on ``pkg``, served by a new meter from ``joined`` (if ``meter``)."""
    fields.setdefault("now", joined - dt.timedelta(days=1))
    c = factories.customer(site, package=pkg, **fields)
    with acting_as(label="test setup"):
        customer_services.customer_set_status(customer=c, status="active", now=joined)
        if meter:
            m = factories.assigned_meter(site, next(_addresses))
            meter_services.meter_serve_customer(meter=m, customer=c, now=joined)
    c.refresh_from_db()
    return c


def meter_of(c):
    return c.meter_assignments.get(end__isnull=True).meter


def usage(meter, per_hour: str | dict, *, start=START, end=END, estimated=(), skip=()):
    """Hourly rollup rows for ``meter``: ``per_hour`` kWh each hour (or by local hour)."""
    rows = []
    h = start
    while h < end:
        if h not in skip:
            if isinstance(per_hour, dict):
                kwh = Decimal(per_hour[h.astimezone(KAMPALA).hour])
            else:
                kwh = Decimal(per_hour)
            est = kwh if h in estimated else Decimal(0)
            rows.append(HourlyUsage(meter=meter, hour=h, kwh=kwh, estimated_kwh=est, intervals=4))
        h += dt.timedelta(hours=1)
    HourlyUsage.objects.bulk_create(rows)
    return rows


def hours(start=START, end=END):
    out, h = [], start
    while h < end:
        out.append(h)
        h += dt.timedelta(hours=1)
    return out
