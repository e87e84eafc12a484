"""Fixtures of the steering tests: a fake Calin head-end and meters on Block A."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from customers.models import Customer
from mcoms.core.audit import acting_as
from metering import services as meter_services
from metering.models import Meter
from metering.steering import fake_calin
from metering.steering.models import SiteSteering
from tests import factories

# A Tuesday, 10:00 in Kampala (UTC+3): inside working hours.
T0 = dt.datetime(2026, 4, 7, 7, 0, tzinfo=dt.UTC)


@pytest.fixture
def fake(settings):
    server = fake_calin.FakeCalin(pending_polls=1)
    settings.CALIN_BASE_URL = server.base_url
    settings.CALIN_COMPANY = fake_calin.COMPANY
    settings.CALIN_USER = fake_calin.USER
    settings.CALIN_PASSWORD = fake_calin.PASSWORD
    settings.CALIN_POS_USER = fake_calin.POS_USER
    settings.CALIN_POS_PASSWORD = fake_calin.POS_PASSWORD
    settings.CALIN_POS_VEND_PASSWORD = fake_calin.VEND_PASSWORD
    settings.CALIN_TIMEOUT = 1.5  # generous: the machine may be busy
    settings.CALIN_FIRST_POLL_SECONDS = 15
    settings.CALIN_POLL_SECONDS = 30
    settings.CALIN_GIVE_UP_SECONDS = 900
    settings.CALIN_MAX_ATTEMPTS = 3
    server.slow_seconds = 2.5
    yield server
    server.close()


@dataclass
class Grid:
    calin: Meter
    chint: Meter
    customer: Customer
    chint_customer: Customer


@pytest.fixture
def grid(org) -> Grid:
    customer = factories.customer(org.block_a, first_name="Amina")
    chint_customer = factories.customer(org.block_a, first_name="Bosco")
    calin = factories.assigned_meter(org.block_a, 20, model="CALIN")
    chint = factories.assigned_meter(org.block_a, 21)
    with acting_as(label="test setup"):
        meter_services.meter_serve_customer(
            meter=calin, customer=customer, now=T0 - dt.timedelta(days=30)
        )
        meter_services.meter_serve_customer(
            meter=chint, customer=chint_customer, now=T0 - dt.timedelta(days=30)
        )
    return Grid(calin=calin, chint=chint, customer=customer, chint_customer=chint_customer)


def autonomy(site, level: int, **fields) -> SiteSteering:
    rules = SiteSteering.for_site(site)
    rules.autonomy = level
    for key, value in fields.items():
        setattr(rules, key, value)
    rules.save()
    return rules
