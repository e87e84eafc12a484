"""The demo data `make run` loads: every role, two sites, ~50 customers with meters, history."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from customers.models import Customer, ServiceRequest
from mcoms import demo
from mcoms.core.models import AuditEvent, Cluster, Site, User
from mcoms.core.roles import Role
from metering.lifecycle import Status
from metering.models import Gateway, Meter, MeterAssignment, MeterEvent
from metering.selectors import overdue_meters

pytestmark = pytest.mark.django_db


def counts() -> dict[str, int]:
    models = [
        Site,
        Cluster,
        User,
        Customer,
        Meter,
        MeterEvent,
        MeterAssignment,
        Gateway,
        ServiceRequest,
        AuditEvent,
    ]
    return {m.__name__: m.objects.count() for m in models}


def test_demo_has_everything_a_newcomer_should_see(capsys):
    call_command("seed_demo")
    assert Site.objects.count() == 2
    assert Cluster.objects.filter(sites__isnull=False).distinct().count() == 1
    assert set(User.objects.values_list("role", flat=True)) == set(Role)
    assert 45 <= Customer.objects.count() <= 60
    assert Customer.objects.filter(status="active").count() >= 30
    assert Meter.objects.filter(status=Status.COMMISSIONED).count() >= 30
    assert MeterAssignment.objects.count() >= 30
    assert overdue_meters(Meter.objects.all()).exists()
    assert Meter.objects.filter(status=Status.UNASSIGNED).exists()
    assert ServiceRequest.objects.exists()
    portal_user = User.objects.get(username="customer")
    assert Customer.objects.filter(user=portal_user).count() == 1
    for login in demo.LOGINS:
        assert User.objects.get(username=login.username).check_password(demo.DEMO_PASSWORD)
    out = capsys.readouterr().out
    assert "Demo logins" in out and "sitemanager" in out and demo.DEMO_PASSWORD in out


def test_loading_twice_changes_nothing(capsys):
    call_command("seed_demo")
    before = counts()
    call_command("seed_demo")
    assert counts() == before
    assert "already present" in capsys.readouterr().out
