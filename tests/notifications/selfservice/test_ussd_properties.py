"""Whatever ``text`` a phone sends, the menu answers ``CON ``/``END `` in 160 characters, never 500.

The answers mix what customers type (menu numbers, the right PIN, wrong PINs,
amounts) with anything at all, so sessions wander through every branch — and
the apology for an internal error must never be what they get.
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.models import ServicePackage
from notifications.selfservice import texts
from tests import factories
from tests.notifications.selfservice.conftest import PIN, SERVICE_CODE, bill, with_pin

pytestmark = pytest.mark.django_db

_ids = itertools.count(1)
APOLOGIES = {texts.text("unavailable", lang) for lang in texts.LANGUAGES}

typed = st.sampled_from(
    ["", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "00", PIN, "0000", "5000", "1,000"]
)
anything = st.text(max_size=30)
answers = st.lists(st.one_of(typed, typed, typed, anything), max_size=12)
raw = st.text(max_size=80)
texts_sent = st.one_of(answers.map("*".join), raw)


@pytest.fixture
def phones(org, templates):
    """A number with one account, a number shared by two, and a number with none."""
    one = factories.customer(org.block_a, first_name="Amina", status="active")
    with_pin(one)
    bill(one, "24500", issued=dt.date(2026, 11, 1), due=dt.date(2026, 11, 15))
    shared = factories.customer(org.block_b, first_name="Duka", language="lg")
    factories.customer(org.block_a, first_name="Mama", phone=shared.phone, language="sw")
    with_pin(shared)
    ServicePackage.objects.create(code="home", name="Home 200 W", load_limit_w=200)
    return [one.phone, shared.phone, "+256772000999", "not a number"]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=texts_sent, which=st.integers(min_value=0, max_value=3))
def test_any_text_gets_a_proper_screen(phones, text, which):
    response = Client().post(
        "/ussd/africastalking/",
        {
            "sessionId": f"ATUid_prop_{next(_ids)}",
            "serviceCode": SERVICE_CODE,
            "phoneNumber": phones[which],
            "networkCode": "63902",
            "text": text,
        },
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.startswith(("CON ", "END "))
    assert len(body) <= 160
    assert body[4:] not in APOLOGIES
