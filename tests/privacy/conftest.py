"""One customer, Zawadi Kyomuhendo, with something in every app: a bill, payments, a
mobile-money request, messages, USSD, portal sign-ins, a PIN, a field visit with a photo,
requests, notes, audit and admin history, and staff having looked her up."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from billing import runs
from billing.payments import services as payments
from billing.payments.models import PaymentRequest
from customers import services as customer_services
from fieldops import services as field_services
from mcoms.core import services as core_services
from mcoms.core.audit import acting_as
from mcoms.core.roles import Role
from metering.models import DailyUsage
from notifications.models import Message, OptOut
from notifications.selfservice.models import (
    CustomerPin,
    InboundSms,
    PortalCode,
    PortalSignIn,
    UssdSession,
)
from tests.billing.test_runs_fixtures import BLOCKS, OCT, RUN_AT, customer, meter_of, package, usage
from tests.billing.test_runs_fixtures import tariff as make_tariff

PHONE, ALT = "+256772555123", "+256701555777"
# Strings of hers that must not survive anonymisation anywhere in the database.
PERSONAL = ["Zawadi", "Kyomuhendo", "772555123", "701555777", "zawadi.k@", "CM90012AB", "Kisenyi"]


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    }
    return tmp_path


@pytest.fixture
def zawadi(org, client_for, media):
    c = customer(
        org.block_a,
        package("res", make_tariff("res", BLOCKS, org)),
        first_name="Zawadi",
        last_name="Kyomuhendo",
        phone=PHONE,
    )
    with acting_as(org.site_manager):
        customer_services.customer_update(
            customer=c,
            alt_phone=ALT,
            email="zawadi.k@example.org",
            id_number="CM90012AB",
            location="Plot 7, Kisenyi",
            latitude=D("0.312"),
            longitude=D("32.571"),
        )
        customer_services.service_request_create(
            customer=c, kind="fault", description="Zawadi Kyomuhendo: no power, call 0772555123"
        )
    meter = meter_of(c)
    usage(meter, "0.1")
    DailyUsage.objects.create(meter=meter, day=dt.date(2026, 10, 5), kwh=D("2.4"), intervals=96)
    with acting_as(org.billing):
        run = runs.run_start(site=org.block_a, month=OCT, now=RUN_AT, queue=False)
        runs.preview(run.pk)
        runs.post(run.pk, by=org.billing, now=RUN_AT)
    with acting_as(org.agent):
        payments.record_cash(
            customer=c, amount=D("5000"), agent=org.agent, note="paid by Zawadi herself"
        )
    PaymentRequest.objects.create(
        provider="mtn", customer=c, amount=D("2000"), currency="UGX",
        phone=PHONE, channel="ussd", status="pending", created_at=RUN_AT, updated_at=RUN_AT,
    )  # fmt: skip
    Message.objects.create(
        channel="sms", to=PHONE, body="Dear Zawadi Kyomuhendo, your bill is ready",
        about=f"customers.customer:{c.pk}", created_at=RUN_AT,
    )  # fmt: skip
    OptOut.objects.create(address=ALT, reason="Zawadi asked: no promotions")
    UssdSession.objects.create(
        session_id="s1", phone=PHONE, memo={"name": "Zawadi"}, started_at=RUN_AT,
        updated_at=RUN_AT,
    )  # fmt: skip
    InboundSms.objects.create(
        provider="africastalking", provider_id="m1", sender=PHONE, text="BAL Zawadi",
        received_at=RUN_AT,
    )  # fmt: skip
    PortalCode.objects.create(phone=PHONE, code_hash="x", created_at=RUN_AT, expires_at=RUN_AT)
    CustomerPin.objects.create(customer=c, pin_hash="x", set_at=RUN_AT)
    user = core_services.user_create(
        username="zawadi.k", password="pw-unused-123", role=Role.CUSTOMER, first_name="Zawadi"
    )
    with acting_as(org.admin):
        customer_services.customer_link_user(customer=c, user=user)
    PortalSignIn.objects.create(customer=c, user=user, method="pin", phone=PHONE, at=RUN_AT)
    with acting_as(org.supervisor):
        task = field_services.task_create(
            site=org.block_a, kind="inspect", title="Visit Zawadi Kyomuhendo", customer=c,
            details="Her number is 0772555123", now=RUN_AT,
        )  # fmt: skip
        field_services.visit_record(
            task=task, by=org.supervisor, visited_at=RUN_AT, outcome="done",
            note="Spoke to Zawadi", latitude="0.3121", longitude="32.5711", accuracy_m="5",
            photo=SimpleUploadedFile("house.jpg", b"jpeg bytes"), now=RUN_AT,
        )  # fmt: skip
    admin = client_for(org.admin)
    admin.get(reverse("customers:list"), {"q": "Kyomuhendo"})  # the access log keeps the query
    admin.post(
        reverse("admin:customers_customer_change", args=[c.pk]),
        {
            "first_name": "Zawadi", "last_name": "Kyomuhendo", "phone": PHONE, "alt_phone": ALT,
            "email": "zawadi.k@example.org", "id_number": "CM90012AB",
            "location": "Plot 7, Kisenyi", "language": "en", "critical_load_note": "",
            "latitude": "0.312", "longitude": "32.571", "package": c.package_id,
            "status_history-TOTAL_FORMS": "0", "status_history-INITIAL_FORMS": "0",
        },
    )  # fmt: skip
    with acting_as(org.site_manager):
        customer_services.customer_set_status(
            customer=c, status="closed", reason="Zawadi Kyomuhendo moved to Mbarara"
        )
    c.refresh_from_db()
    return c
