"""A gateway with a token and meters on its bus, for the edge API tests."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import pytest

from mcoms.core.audit import acting_as
from metering import partitions, services, tokens
from metering.lifecycle import Status
from metering.models import Gateway, Meter
from tests import factories

INSTALLED_AT = dt.datetime(2026, 4, 1, 0, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 4, 4, 16, 0, tzinfo=dt.UTC)


@dataclass
class Bus:
    gateway: Gateway
    token: str
    single: Meter  # DDSU666 at address 10
    three: Meter  # DTSU666 at address 100

    def headers(self, token: str | None = None) -> dict:
        return {"HTTP_AUTHORIZATION": f"Bearer {token or self.token}"}


def install(site, gateway, address, model="DDSU666", at=INSTALLED_AT) -> Meter:
    meter = factories.meter(model, now=at - dt.timedelta(days=5))
    with acting_as(label="test setup"):
        services.meter_assign(
            meter=meter, site=site, address=address, now=at - dt.timedelta(days=4)
        )
        for step, day in ((Status.CONVERTED, 3), (Status.SHIPPED, 2)):
            services.meter_move(meter=meter, status=step, now=at - dt.timedelta(days=day))
        return services.meter_move(meter=meter, status=Status.INSTALLED, gateway=gateway, now=at)


@pytest.fixture
def bus(org) -> Bus:
    with acting_as(label="test setup"):
        gateway = services.gateway_create(
            site=org.block_a, name="kla-block-a", now=INSTALLED_AT - dt.timedelta(days=10)
        )
        token = tokens.token_issue(gateway=gateway)
    partitions.ensure_months([dt.date(2026, 3, 1), dt.date(2026, 4, 1), dt.date(2026, 5, 1)])
    single = install(org.block_a, gateway, 10)
    three = install(org.block_a, gateway, 100, model="DTSU666")
    gateway.refresh_from_db()
    return Bus(gateway=gateway, token=token, single=single, three=three)


def reading(address=10, ts="2026-04-04T15:15:00Z", energy=12345.6, **extra) -> dict:
    body = {
        "address": address,
        "ts": ts,
        "energy_kwh": energy,
        "voltage_v": [234.5],
        "current_a": [2.1],
        "power_kw": 0.49,
        "power_factor": 0.98,
        "frequency_hz": 50.01,
    }
    body.update(extra)
    return body


def batch(*readings, batch_id=None, gateway="kla-block-a") -> dict:
    return {
        "batch_id": str(batch_id or uuid.uuid4()),
        "gateway": gateway,
        "sent_at": "2026-04-04T15:15:03Z",
        "readings": list(readings),
    }
