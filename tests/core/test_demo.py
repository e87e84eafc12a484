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


def test_demo_has_reading_history_and_rollups():
    from metering.models import Gateway, HourlyUsage, Reading, SiteDailyUsage

    call_command("seed_demo")
    assert Reading.objects.filter(kind="real").count() > 1000
    assert not Reading.objects.filter(quality="flagged").exists()
    assert HourlyUsage.objects.exists() and SiteDailyUsage.objects.count() >= 3
    assert Gateway.objects.get(name=demo.DEMO_GATEWAY).log_interval_s == demo.DEMO_LOG_INTERVAL_S


def test_demo_edge_writes_the_agents_config_and_a_working_token(settings, tmp_path, capsys):
    import yaml

    from metering import tokens

    settings.VAR_DIR = tmp_path
    call_command("seed_demo")
    call_command("demo_edge", "--port", "8123", "--bus", "socket://127.0.0.1:5999")
    lines = capsys.readouterr().out.strip().splitlines()
    spec = lines[-1].split(",")
    assert "10:DDSU666" in spec and all(":" in entry for entry in spec)
    config = yaml.safe_load((tmp_path / "edge" / "config.yaml").read_text())
    assert config["server"]["url"] == "http://127.0.0.1:8123"
    assert config["bus"]["port"] == "socket://127.0.0.1:5999"
    assert config["clock_sync"] == "always"
    assert config["upload_spread_s"] == 0  # the demo's one gateway sends each reading at once
    token = (tmp_path / "edge" / "token").read_text().strip()
    assert tokens.gateway_for_token(token).name == demo.DEMO_GATEWAY
    # Every `make run` rotates: the previous token keeps its grace period, the new one works.
    call_command("demo_edge", "--port", "8123")
    assert tokens.gateway_for_token((tmp_path / "edge" / "token").read_text().strip())
