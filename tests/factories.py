"""Builders for test data, going through the same services as the pages."""

from __future__ import annotations

import itertools

from customers import services as customer_services
from customers.models import Customer
from mcoms.core.audit import acting_as
from mcoms.core.models import Site
from metering import services as meter_services
from metering.models import Meter

_serials = itertools.count(200322010000)
_phones = itertools.count(7720000)


def customer(site: Site, **fields) -> Customer:
    """A customer on ``site`` with a fresh Ugandan phone number."""
    fields.setdefault("first_name", "Test")
    fields.setdefault("last_name", "Customer")
    fields.setdefault("phone", f"+25677{next(_phones):07d}")
    with acting_as(label="test setup"):
        return customer_services.customer_create(site=site, **fields).customer


def meter(model: str = "DDSU666", **fields) -> Meter:
    """A meter in stock (Unassigned) with a fresh 12-digit serial."""
    with acting_as(label="test setup"):
        return meter_services.meter_create(serial=str(next(_serials)), model=model, **fields)


def assigned_meter(site: Site, address: int, model: str = "DDSU666", **kwargs) -> Meter:
    """A meter planned on ``site`` at ``address``."""
    m = meter(model)
    with acting_as(label="test setup"):
        return meter_services.meter_assign(meter=m, site=site, address=address, **kwargs)
