"""Anonymising a closed account erases the person everywhere and keeps the books intact."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import models

from billing import ledger
from billing.models import Invoice, PostingLine
from billing.payments.models import Payment
from customers import services as customer_services
from customers.models import Customer
from fieldops.models import Visit
from mcoms.core import clock
from mcoms.core.audit import acting_as
from mcoms.core.models import AuditEvent
from mcoms.privacy.anonymise import anonymise
from metering.models import DailyUsage, HourlyUsage
from tests import factories
from tests.privacy.conftest import PERSONAL

AT = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
TEXT_FIELDS = (models.CharField, models.TextField, models.JSONField, models.FileField)


def _texts_mentioning(needle: str) -> list[str]:
    """Every text value, in every table, that contains ``needle`` (case-insensitive)."""
    found = []
    for model in apps.get_models(include_auto_created=True):
        names = [f.attname for f in model._meta.concrete_fields if isinstance(f, TEXT_FIELDS)]
        if not names:
            continue
        for row in model._base_manager.values_list("pk", *names):
            for name, value in zip(names, row[1:], strict=True):
                if value is not None and needle.lower() in str(value).lower():
                    found.append(f"{model._meta.label}#{row[0]}.{name}: {value!r}"[:200])
    return found


def _books(customer: Customer) -> dict:
    return {
        "balance": ledger.customer_balance(customer),
        "invoices": sorted(Invoice.objects.filter(customer=customer).values_list("total")),
        "payments": sorted(
            Payment.objects.filter(customer=customer).values_list(
                "receipt_number", "amount", "received_at", "provider_txn_id"
            )
        ),
        "ledger": sorted(
            PostingLine.objects.filter(account__customer=customer).values_list(
                "posting_id", "amount"
            )
        ),
        "daily": list(DailyUsage.objects.values_list("meter_id", "day", "kwh")),
        "hourly_kwh": sum(HourlyUsage.objects.values_list("kwh", flat=True), Decimal(0)),
    }


@pytest.fixture(autouse=True)
def fixed_time(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: AT)


def test_the_fixture_really_holds_her_data_everywhere(zawadi):
    for needle in PERSONAL:
        assert _texts_mentioning(needle), needle
    assert _texts_mentioning("Zawadi Kyomuhendo")


def test_no_trace_of_her_is_left_in_any_table(zawadi, org):
    with acting_as(org.admin):
        anonymise(customer=zawadi)
    leftovers = {needle: _texts_mentioning(needle) for needle in PERSONAL}
    assert leftovers == {needle: [] for needle in PERSONAL}


def test_the_books_are_unchanged(zawadi, org):
    before = _books(zawadi)
    assert before["invoices"] and before["payments"] and before["ledger"] and before["daily"]
    with acting_as(org.admin):
        anonymise(customer=zawadi)
    assert _books(zawadi) == before


def test_the_account_is_renamed_and_its_login_closed(zawadi, org):
    user = zawadi.user
    with acting_as(org.admin):
        anonymise(customer=zawadi)
    zawadi.refresh_from_db()
    user.refresh_from_db()
    assert zawadi.full_name == f"Anonymised customer #{zawadi.pk}"
    assert (zawadi.phone, zawadi.email, zawadi.latitude, zawadi.anonymised_at) == ("", "", None, AT)
    assert zawadi.status == "closed" and zawadi.account_number.startswith("KLA-")
    assert not user.is_active and not user.has_usable_password()


def test_photos_are_deleted_from_storage(zawadi, org, media):
    visit = Visit.objects.get(task__customer=zawadi)
    path = media / visit.photo.name
    assert path.exists()
    with acting_as(org.admin):
        anonymise(customer=zawadi)
    assert not path.exists()
    assert Visit.objects.get(pk=visit.pk).photo.name == ""


def test_the_audit_trail_keeps_that_changes_happened_without_the_values(zawadi, org):
    kinds_before = list(
        AuditEvent.objects.filter(object_type="customers.customer", object_id=str(zawadi.pk))
        .order_by("id")
        .values_list("action", flat=True)
    )
    with acting_as(org.admin):
        anonymise(customer=zawadi)
    events = AuditEvent.objects.filter(object_type="customers.customer", object_id=str(zawadi.pk))
    assert list(events.order_by("id").values_list("action", flat=True)) == [*kinds_before, "update"]
    edit = events.filter(action="update").order_by("id").first()
    # An email was added: the trail still shows it was set then, not what it was.
    assert (edit.before["email"], edit.after["email"]) == ("", "[removed]")
    assert edit.after["language"] == "en"  # what is not personal stays
    last = events.order_by("-id").first()
    assert last.actor == org.admin and "anonymised" in last.note
    assert last.before == {name: "[removed]" for name in last.before}


def test_an_open_account_is_refused_and_left_alone(org):
    open_account = factories.customer(org.block_a, first_name="Stays", status="active")
    with pytest.raises(ValidationError, match="only a closed account"):
        anonymise(customer=open_account)
    open_account.refresh_from_db()
    assert open_account.first_name == "Stays" and open_account.anonymised_at is None


def test_anonymising_twice_is_refused(zawadi, org):
    with acting_as(org.admin):
        anonymise(customer=zawadi)
        with pytest.raises(ValidationError, match="already anonymised"):
            anonymise(customer=zawadi)


def test_a_relative_sharing_the_phone_keeps_it_and_their_messages(zawadi, org):
    from notifications.models import Message

    relative = factories.customer(org.block_a, first_name="Amos", last_name="Kyomuhendo")
    with acting_as(org.admin):
        customer_services.customer_update(customer=relative, phone=zawadi.phone)
    Message.objects.create(
        channel="sms", to=zawadi.phone, body="Dear Amos, your bill", created_at=AT,
        about=f"customers.customer:{relative.pk}",
    )  # fmt: skip
    with acting_as(org.admin):
        anonymise(customer=zawadi)
    relative.refresh_from_db()
    assert (relative.last_name, relative.phone) == ("Kyomuhendo", "+256772555123")
    assert Message.objects.filter(body="Dear Amos, your bill", to="+256772555123").exists()
