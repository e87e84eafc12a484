"""Self-service demo data: templates, the demo customer's PIN, two people interested."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from customers.models import Customer
from notifications.models import MessageTemplate
from notifications.selfservice import demo, pins
from notifications.selfservice.models import Interest
from tests import factories

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 22, 6, tzinfo=dt.UTC)


def test_demo_loads_templates_the_portal_customers_pin_and_interest(org):
    owner = factories.customer(org.block_a, first_name="Owner")
    Customer.objects.filter(pk=owner.pk).update(user=org.customer)
    demo.load(now=NOW, rng=random.Random(3))
    assert MessageTemplate.objects.filter(key__startswith="selfservice_").count() == 24
    owner.refresh_from_db()
    assert owner.phone == demo.DEMO_PHONE
    assert pins.verify(owner, demo.DEMO_PIN).ok
    assert Interest.objects.count() == 2
    demo.load(now=NOW, rng=random.Random(3))
    assert Interest.objects.count() == 2
