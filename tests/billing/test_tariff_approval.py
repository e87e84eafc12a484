"""Maker-checker on tariff changes: one person proposes, another approves, all audited.

People come from ``org``: ``billing`` (billing officer) and ``admin`` may change
tariffs; ``agent`` may not.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal as D

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from billing import services, tariff_services
from billing.models import ServicePackage, TariffVersion
from billing.tariffs import Calendar, TariffError, price_period
from mcoms.core import services as core_services
from mcoms.core.audit import acting_as
from mcoms.core.models import AuditEvent
from mcoms.core.roles import Role
from tests.billing.tariff_fixtures import DC, NAIROBI, SC, one_interval

JAN = dt.date(2018, 1, 1)


@pytest.fixture
def tariff(org):
    with acting_as(org.billing):
        return tariff_services.tariff_create(
            code="ke-sc", name="Small commercial", currency="KES", by=org.billing
        )


def propose(tariff, by, effective_from=JAN, terms=SC, reason="Regulator notice"):
    with acting_as(by):
        return tariff_services.tariff_version_propose(
            tariff=tariff, effective_from=effective_from, terms=terms, reason=reason, by=by
        )


def approve(version, by, note=""):
    with acting_as(by):
        return tariff_services.tariff_version_approve(version=version, by=by, note=note)


def test_the_proposer_cannot_approve_their_own_change(org, tariff):
    version = propose(tariff, org.billing)

    with pytest.raises(PermissionDenied, match="second person"):
        approve(version, org.billing)

    version.refresh_from_db()
    assert version.status == TariffVersion.Status.PROPOSED


def test_a_second_person_approves_and_the_approval_is_audited(org, tariff):
    version = propose(tariff, org.billing)

    approve(version, org.admin, note="Checked against the gazette")

    version.refresh_from_db()
    assert (version.status, version.decided_by) == (TariffVersion.Status.APPROVED, org.admin)
    event = AuditEvent.objects.get(
        object_type="billing.tariffversion", action=AuditEvent.Action.TRANSITION
    )
    assert event.actor == org.admin
    assert event.before["status"] == "proposed"
    assert event.after["status"] == "approved"
    assert event.after["decision_note"] == "Checked against the gazette"
    proposal = AuditEvent.objects.get(
        object_type="billing.tariffversion", action=AuditEvent.Action.CREATE
    )
    assert (proposal.actor, proposal.after["terms"]) == (org.billing, SC)


def test_an_unapproved_version_never_applies(org, tariff):
    approve(propose(tariff, org.billing, dt.date(2017, 1, 1), SC), org.admin)
    pending = propose(tariff, org.billing, JAN, {**SC, "energy": {"type": "flat", "rate": "99"}})
    rejected = propose(tariff, org.admin, JAN, {**SC, "energy": {"type": "flat", "rate": "88"}})
    with acting_as(org.billing):
        tariff_services.tariff_version_reject(version=rejected, by=org.billing, note="Wrong rate")

    bill = price_period(
        starts=JAN,
        ends=dt.date(2018, 2, 1),
        currency="KES",
        schedule=tariff.in_force(),
        calendar=Calendar(NAIROBI),
        usage=one_interval("10", NAIROBI, (2018, 1, 10, 12)),
    )

    assert [x.rate for x in bill.lines if x.kind == "energy"] == [D("13.50")]
    assert pending.status == TariffVersion.Status.PROPOSED
    assert TariffVersion.objects.get(pk=rejected.pk).status == TariffVersion.Status.REJECTED


def test_approval_closes_the_previous_version_on_the_new_date(org, tariff):
    first = approve(propose(tariff, org.billing, dt.date(2017, 1, 1), SC), org.admin)
    approve(propose(tariff, org.admin, JAN, DC), org.billing)

    first.refresh_from_db()
    assert first.effective_to == JAN
    assert [(f.effective_from, f.effective_to) for f in tariff.in_force()] == [
        (dt.date(2017, 1, 1), JAN),
        (JAN, None),
    ]
    closed = AuditEvent.objects.get(
        object_type="billing.tariffversion",
        object_id=str(first.pk),
        action=AuditEvent.Action.UPDATE,
    )
    assert closed.after == {"effective_to": "2018-01-01"}


def test_a_change_must_start_after_the_latest_approved_version(org, tariff):
    approve(propose(tariff, org.billing, JAN, SC), org.admin)

    with pytest.raises(ValidationError, match="after it"):
        propose(tariff, org.billing, JAN, DC)


def test_a_proposal_overtaken_by_a_later_approved_version_cannot_be_approved(org, tariff):
    february = propose(tariff, org.billing, dt.date(2018, 2, 1), SC)
    approve(propose(tariff, org.billing, dt.date(2018, 3, 1), DC), org.admin)

    with pytest.raises(ValidationError, match="after it"):
        approve(february, org.admin)


def test_a_proposed_version_cannot_be_handed_to_the_engine(org, tariff):
    with pytest.raises(TariffError, match="not approved"):
        propose(tariff, org.billing).as_in_force()


def test_a_version_is_decided_once(org, tariff):
    version = approve(propose(tariff, org.billing), org.admin)

    with pytest.raises(ValidationError, match="already approved"), acting_as(org.billing):
        tariff_services.tariff_version_reject(version=version, by=org.billing, note="No")


def test_people_without_the_capability_cannot_propose(org, tariff):
    with pytest.raises(PermissionDenied):
        propose(tariff, org.agent)


def test_terms_are_checked_when_proposed(org, tariff):
    with pytest.raises(ValidationError, match="last block"):
        propose(tariff, org.billing, terms={"energy": {"type": "blocks", "blocks": []}})


def test_a_package_carries_its_tariff(org, tariff):
    with acting_as(org.admin):
        package = services.package_save(
            package=ServicePackage(code="shop", name="Shop", load_limit_w=1000, tariff=tariff)
        )

    assert list(tariff.packages.all()) == [package]


def test_in_the_admin_one_person_proposes_and_another_approves(org, tariff, client_for):
    with acting_as(label="test setup"):
        checker = core_services.user_create(
            username="checker", password="x-long-password", role=Role.ADMIN, is_staff=True
        )
    maker = client_for(org.admin)
    form = {
        "tariff": tariff.pk,
        "effective_from": "2018-01-01",
        "terms": json.dumps(SC),
        "reason": "Gazette notice",
    }
    response = maker.post(reverse("admin:billing_tariffversion_add"), form)
    assert response.status_code == 302
    version = TariffVersion.objects.get()
    assert version.proposed_by == org.admin

    changelist = reverse("admin:billing_tariffversion_changelist")
    action = {"action": "approve", "_selected_action": [version.pk]}
    maker.post(changelist, action, follow=True)
    version.refresh_from_db()
    assert version.status == TariffVersion.Status.PROPOSED

    client_for(checker).post(changelist, action)
    version.refresh_from_db()
    assert (version.status, version.decided_by) == (TariffVersion.Status.APPROVED, checker)
    assert AuditEvent.objects.filter(
        object_type="billing.tariffversion", action="transition", channel="admin"
    ).exists()
    change = reverse("admin:billing_tariffversion_change", args=[version.pk])
    assert maker.get(change).status_code == 200
    assert maker.get(changelist).status_code == 200
    tariff_page = maker.get(reverse("admin:billing_tariff_change", args=[tariff.pk]))
    assert tariff_page.status_code == 200


def test_a_tariff_is_created_in_the_admin(org, client_for):
    form = {"code": "ug-dom", "name": "Domestic", "currency": "UGX", "description": ""}
    response = client_for(org.admin).post(reverse("admin:billing_tariff_add"), form)

    assert response.status_code == 302
    event = AuditEvent.objects.get(object_type="billing.tariff")
    assert (event.action, event.after["code"], event.channel) == ("create", "ug-dom", "admin")


def test_the_admin_refuses_terms_it_cannot_price(org, tariff, client_for):
    form = {
        "tariff": tariff.pk,
        "effective_from": "2018-01-01",
        "terms": json.dumps({"energy": {"type": "flat", "rate": 13.5}}),
        "reason": "Typo",
    }
    response = client_for(org.admin).post(reverse("admin:billing_tariffversion_add"), form)

    assert response.status_code == 200
    assert "string" in response.content.decode()
    assert not TariffVersion.objects.exists()
