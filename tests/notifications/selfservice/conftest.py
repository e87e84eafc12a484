"""Fixtures for the USSD and SMS self-service: customers, and a phone that dials the menu."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from decimal import Decimal as D

import pytest
from django.test import Client

from billing import ledger
from billing.models import Invoice, InvoiceLine
from mcoms.core import clock
from mcoms.core.audit import acting_as
from metering import services as meter_services
from metering.models import DailyUsage
from notifications.selfservice import messages, pins
from tests import factories

USSD = "/ussd/africastalking/"
SERVICE_CODE = "*384*2026#"
PIN = "2580"
_sessions = itertools.count(1)


@dataclass
class Phone:
    """A feature phone in one USSD session: each ``send`` adds an answer to ``text``."""

    number: str
    client: Client
    url: str = USSD
    session_id: str = field(default_factory=lambda: f"ATUid_test_{next(_sessions)}")
    answers: list[str] = field(default_factory=list)
    screens: list[str] = field(default_factory=list)

    def post(self, text: str):
        return self.client.post(
            self.url,
            {
                "sessionId": self.session_id,
                "serviceCode": SERVICE_CODE,
                "phoneNumber": self.number,
                "networkCode": "63902",
                "text": text,
            },
        )

    def dial(self) -> str:
        return self._reply(self.post(""))

    def send(self, answer: str) -> str:
        self.answers.append(answer)
        return self._reply(self.post("*".join(self.answers)))

    def _reply(self, response) -> str:
        assert response.status_code == 200, response.content
        assert response["Content-Type"].startswith("text/plain")
        body = response.content.decode()
        assert body.startswith(("CON ", "END ")), body
        assert len(body) <= 160, (len(body), body)
        self.screens.append(body)
        return body


@pytest.fixture
def templates(db):
    messages.install_templates()


@pytest.fixture
def customer(org, templates):
    c = factories.customer(org.block_a, first_name="Amina", last_name="Nakato", status="active")
    with_pin(c)
    return c


def with_pin(customer, pin: str = PIN):
    pins.set_pin(customer, pin)
    return customer


@pytest.fixture
def phone_of(db):
    def make(number: str, **kwargs) -> Phone:
        return Phone(number=number, client=Client(), **kwargs)

    return make


# --- account data, made the way billing and metering make it ------------------------------------

_bills = itertools.count(1)


def bill(customer, total, *, issued: dt.date, due: dt.date | None = None, kwh="120.5"):
    """A posted bill of ``total`` (energy only) for the month before ``issued``."""
    total, kwh = D(total), D(kwh)
    number = f"INV-{customer.site.code.upper()}-{next(_bills):05d}"
    period_end = issued.replace(day=1)
    with acting_as(label="test billing"):
        posting = ledger.invoice_post(
            customer=customer, date=issued, energy=total, reference=number, memo=f"Bill {number}"
        )
        invoice = Invoice.objects.create(
            number=number,
            customer=customer,
            site=customer.site,
            period_start=(period_end - dt.timedelta(days=1)).replace(day=1),
            period_end=period_end,
            issued_on=issued,
            due_on=due,
            currency=customer.site.currency,
            kwh=kwh,
            subtotal=total,
            total=total,
            amount_due=total,
            posting=posting,
            created_at=dt.datetime.combine(issued, dt.time(8), tzinfo=dt.UTC),
        )
        InvoiceLine.objects.create(
            invoice=invoice,
            position=1,
            kind="energy",
            description="Energy",
            quantity=kwh,
            unit="kWh",
            rate=(total / kwh).quantize(D("0.0001")),
            amount=total,
        )
    return invoice


def local_today(customer) -> dt.date:
    return clock.now().astimezone(customer.site.zone).date()


def months_before(month: dt.date, n: int) -> dt.date:
    for _ in range(n):
        month = (month - dt.timedelta(days=1)).replace(day=1)
    return month


def usage(customer, days: dict[dt.date, str]) -> None:
    """A meter serving the customer for a year, with these daily rollups (kWh)."""
    meter = factories.meter()
    with acting_as(label="test setup"):
        meter_services.meter_serve_customer(
            meter=meter, customer=customer, now=clock.now() - dt.timedelta(days=400)
        )
    DailyUsage.objects.bulk_create(
        [DailyUsage(meter=meter, day=day, kwh=D(kwh), intervals=96) for day, kwh in days.items()]
    )


@pytest.fixture(autouse=True)
def no_screen_cut(caplog):
    """A screen the menu had to cut to 160 characters fails the test that showed it."""
    yield
    cut = [r.getMessage() for r in caplog.records if "USSD screen too long" in r.getMessage()]
    assert not cut, cut
